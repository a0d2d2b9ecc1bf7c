//! The portable panel kernel: the sums of the vector kernels ([`super::x86`]), one row (lane) at a
//! time, for CPUs without AVX2 and to check the vector kernels against.

use super::quant::{BLOCK, PANEL, QActivations, QuantKind, lane_scales, record_bytes, unpack_lane};

pub fn panel(kind: QuantKind, records: &[u8], supers: &[f32], x: &QActivations, first: usize, count: usize, out: &mut [f32]) {
    let out = &mut out[..count * PANEL];
    out.fill(0.0);
    for (block, record) in records.chunks_exact(record_bytes(kind)).enumerate() {
        for lane in 0..PANEL {
            let quants = unpack_lane(kind, record, lane);
            let [(low_scale, low_offset), (high_scale, high_offset)] = lane_scales(kind, record, supers, block, lane);
            for (token, products) in out.chunks_exact_mut(PANEL).enumerate() {
                let (x_quants, stats) = x.row(first + token);
                let (x_quants, stats) = (&x_quants[block * BLOCK..(block + 1) * BLOCK], stats[block]);
                let half = |h: usize| (16 * h..16 * h + 16).map(|e| i32::from(quants[e]) * i32::from(x_quants[e])).sum::<i32>();
                let (low, high) = (half(0), half(1));
                let total = &mut products[lane];
                if kind == QuantKind::Q6_K {
                    *total += low as f32 * (low_scale * stats.d);
                    *total += high as f32 * (high_scale * stats.d);
                    *total += low_offset * stats.half_sums[0];
                    *total += high_offset * stats.half_sums[1];
                } else {
                    *total += (low + high) as f32 * (low_scale * stats.d);
                    if kind != QuantKind::Q8_0 {
                        *total += low_offset * stats.sum;
                    }
                }
            }
        }
    }
}
