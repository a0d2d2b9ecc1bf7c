//! The AVX2 panel kernels over the records of [`super::quant`], in two forms compiled from one
//! body: plain AVX2 (`vpmaddubsw` pairs summed in 16 bits, then `vpmaddwd`) and AVX-512 VNNI on
//! 256-bit registers (`vpdpbusd`: four byte products summed into each 32-bit lane in one
//! instruction). Both give the same integer sums, and the float work is the same code, so their
//! results agree to the bit.
//!
//! Per block, for each half (16 values: four groups of four), the weight registers are unpacked
//! once and multiplied by each token's four activation bytes broadcast to every lane; lane `r`
//! then holds row `r`'s integer dot product, and the scales of the eight rows are applied with a
//! few float operations.

use std::arch::x86_64::*;

use super::quant::{BLOCK, BlockStats, PANEL, QActivations, QuantKind, record_bytes, scales_at, super_floats};

/// The kinds as constants, to specialize the body per format.
const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q5_0: u8 = 2;
const Q8_0: u8 = 3;
const Q4_K: u8 = 4;
const Q6_K: u8 = 5;

const fn kind_of(code: u8) -> QuantKind {
    match code {
        Q4_0 => QuantKind::Q4_0,
        Q4_1 => QuantKind::Q4_1,
        Q5_0 => QuantKind::Q5_0,
        Q8_0 => QuantKind::Q8_0,
        Q4_K => QuantKind::Q4_K,
        _ => QuantKind::Q6_K,
    }
}

/// One panel's product, as raw pointers for the kernel body.
struct Panel {
    records: *const u8,
    supers: *const f32,
    blocks: usize,
    /// The first token's quants and block statistics; the next token's are a row further.
    quants: *const i8,
    stats: *const BlockStats,
    out: *mut f32,
}

type Kernel = unsafe fn(&Panel);

/// Tokens per call of the plain AVX2 kernels: their 16 vector registers hold the accumulators
/// of four tokens beside the weights.
pub const AVX2_TILE: usize = 4;
/// The VNNI kernels have AVX-512's 32 registers (on 256-bit lanes): eight tokens.
pub const VNNI_TILE: usize = 8;

macro_rules! tiles4 {
    ($entry:ident, $kind:expr, $count:expr) => {
        match $count {
            1 => $entry::<{ $kind }, 1> as Kernel,
            2 => $entry::<{ $kind }, 2> as Kernel,
            3 => $entry::<{ $kind }, 3> as Kernel,
            _ => $entry::<{ $kind }, 4> as Kernel,
        }
    };
}

macro_rules! tiles8 {
    ($entry:ident, $kind:expr, $count:expr) => {
        match $count {
            1 => $entry::<{ $kind }, 1> as Kernel,
            2 => $entry::<{ $kind }, 2> as Kernel,
            3 => $entry::<{ $kind }, 3> as Kernel,
            4 => $entry::<{ $kind }, 4> as Kernel,
            5 => $entry::<{ $kind }, 5> as Kernel,
            6 => $entry::<{ $kind }, 6> as Kernel,
            7 => $entry::<{ $kind }, 7> as Kernel,
            _ => $entry::<{ $kind }, 8> as Kernel,
        }
    };
}

macro_rules! select {
    ($tiles:ident, $entry:ident, $kind:expr, $count:expr) => {
        match $kind {
            QuantKind::Q4_0 => $tiles!($entry, Q4_0, $count),
            QuantKind::Q4_1 => $tiles!($entry, Q4_1, $count),
            QuantKind::Q5_0 => $tiles!($entry, Q5_0, $count),
            QuantKind::Q8_0 => $tiles!($entry, Q8_0, $count),
            QuantKind::Q4_K => $tiles!($entry, Q4_K, $count),
            QuantKind::Q6_K => $tiles!($entry, Q6_K, $count),
        }
    };
}

/// The checks that make the raw-pointer body safe: every record, super-block scale, activation
/// and output it touches is inside the slices.
fn panel_args(kind: QuantKind, records: &[u8], supers: &[f32], x: &QActivations, (first, count, tile): (usize, usize, usize), out: &mut [f32]) -> Panel {
    let blocks = x.cols() / BLOCK;
    assert!((1..=tile).contains(&count) && first + count <= x.tokens(), "tokens {first}..{} of {}", first + count, x.tokens());
    assert!(records.len() >= blocks * record_bytes(kind) && supers.len() >= x.cols() / 256 * super_floats(kind) && out.len() >= count * PANEL);
    let (quants, stats) = x.row(first);
    Panel { records: records.as_ptr(), supers: supers.as_ptr(), blocks, quants: quants.as_ptr(), stats: stats.as_ptr(), out: out.as_mut_ptr() }
}

pub fn panel_avx2(kind: QuantKind, records: &[u8], supers: &[f32], x: &QActivations, first: usize, count: usize, out: &mut [f32]) {
    let panel = panel_args(kind, records, supers, x, (first, count, AVX2_TILE), out);
    // SAFETY: chosen only when AVX2, FMA and F16C were detected; `panel_args` checked the bounds.
    unsafe { select!(tiles4, avx2, kind, count)(&panel) }
}

pub fn panel_vnni(kind: QuantKind, records: &[u8], supers: &[f32], x: &QActivations, first: usize, count: usize, out: &mut [f32]) {
    let panel = panel_args(kind, records, supers, x, (first, count, VNNI_TILE), out);
    // SAFETY: chosen only when AVX2, FMA, F16C, AVX512-VNNI and AVX512-VL were detected; as above.
    unsafe { select!(tiles8, vnni, kind, count)(&panel) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2<const K: u8, const T: usize>(panel: &Panel) {
    // SAFETY: the caller's contract.
    unsafe { body::<K, T, false>(panel) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
unsafe fn vnni<const K: u8, const T: usize>(panel: &Panel) {
    // SAFETY: the caller's contract.
    unsafe { body::<K, T, true>(panel) }
}

/// Shifts each 16-bit lane left by `count` bits, or right by `-count`.
#[inline(always)]
unsafe fn shift(value: __m256i, count: i32) -> __m256i {
    // SAFETY: only inlined into the kernels, which have AVX2.
    unsafe { if count >= 0 { _mm256_sll_epi16(value, _mm_cvtsi32_si128(count)) } else { _mm256_srl_epi16(value, _mm_cvtsi32_si128(-count)) } }
}

/// The weight registers of half `half` (groups `4 * half..4 * half + 4`) of a record: unsigned
/// quants, and for Q8_0 the magnitudes with the signed quants beside them (plain AVX2) or the
/// quants plus 128 (VNNI: the sums' extra `128 * sum(x)` comes off in integers afterwards).
#[inline(always)]
unsafe fn weights<const K: u8, const VNNI: bool>(record: *const u8, half: usize) -> ([__m256i; 4], [__m256i; 4]) {
    // SAFETY (all loads): the record is `record_bytes(K)` long (checked by `panel_args`).
    unsafe {
        let load = |at: usize| _mm256_loadu_si256(record.add(at).cast());
        let nibbles = _mm256_set1_epi8(0x0f);
        let mut magnitudes = [_mm256_setzero_si256(); 4];
        let mut signed = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            let group = 4 * half + k;
            if K == Q8_0 {
                signed[k] = load(32 * group);
                magnitudes[k] = if VNNI { _mm256_xor_si256(signed[k], _mm256_set1_epi8(-128)) } else { _mm256_sign_epi8(signed[k], signed[k]) };
                continue;
            }
            let packed = load(32 * k);
            let low = if half == 0 { _mm256_and_si256(packed, nibbles) } else { _mm256_and_si256(_mm256_srli_epi16::<4>(packed), nibbles) };
            // The high bits join the nibble: `mask ? high : low`, bit by bit.
            let join = |high: __m256i, mask: i8| {
                let mask = _mm256_set1_epi8(mask);
                if VNNI { _mm256_ternarylogic_epi32::<0xca>(mask, high, low) } else { _mm256_or_si256(low, _mm256_and_si256(high, mask)) }
            };
            magnitudes[k] = match K {
                // Bit `group` of each byte of the fifth bits moves to bit 4.
                Q5_0 => join(shift(load(128), 4 - group as i32), 0x10),
                // Bits `2k..2k+2` of this half's high pairs move to bits 4..6.
                Q6_K => join(shift(load(128 + 32 * half), 4 - 2 * k as i32), 0x30),
                _ => low,
            };
        }
        (magnitudes, signed)
    }
}

/// `sum` plus the integer dot products (one per lane) of a half's weights with a token's 16
/// activations.
#[inline(always)]
unsafe fn dot_half<const K: u8, const VNNI: bool>(sum: __m256i, magnitudes: &[__m256i; 4], signed: &[__m256i; 4], x: *const i8) -> __m256i {
    // SAFETY: `x` points at 16 activation bytes of the token's block.
    unsafe {
        let mut activations = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            let group = _mm256_set1_epi32(x.add(4 * k).cast::<i32>().read_unaligned());
            // maddubs multiplies unsigned by signed: Q8_0's signs move onto the activations.
            activations[k] = if K == Q8_0 && !VNNI { _mm256_sign_epi8(group, signed[k]) } else { group };
        }
        if VNNI {
            let mut sum = sum;
            for k in 0..4 {
                sum = _mm256_dpbusd_epi32(sum, magnitudes[k], activations[k]);
            }
            return sum;
        }
        let ones = _mm256_set1_epi16(1);
        let mut pairs = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            pairs[k] = _mm256_maddubs_epi16(magnitudes[k], activations[k]);
        }
        let half = match K {
            // Up to 5 bits: four groups' pair sums still fit 16 bits (4 * 2 * 31 * 127 < 2^15).
            Q4_0 | Q4_1 | Q4_K | Q5_0 => _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(pairs[0], pairs[1]), _mm256_add_epi16(pairs[2], pairs[3])), ones),
            // 6 bits: two groups do (2 * 2 * 63 * 127 < 2^15).
            Q6_K => {
                _mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(pairs[0], pairs[1]), ones), _mm256_madd_epi16(_mm256_add_epi16(pairs[2], pairs[3]), ones))
            }
            _ => _mm256_add_epi32(
                _mm256_add_epi32(_mm256_madd_epi16(pairs[0], ones), _mm256_madd_epi16(pairs[1], ones)),
                _mm256_add_epi32(_mm256_madd_epi16(pairs[2], ones), _mm256_madd_epi16(pairs[3], ones)),
            ),
        };
        _mm256_add_epi32(sum, half)
    }
}

/// A record's scales for its eight rows: `(scale, offset)` of each half (value = `q * scale +
/// offset`); the halves differ only in Q6_K.
#[inline(always)]
unsafe fn scales<const K: u8>(record: *const u8, supers: *const f32, block: usize) -> [(__m256, __m256); 2] {
    // SAFETY: the scales lie inside the record, the super-block scales inside `supers`.
    unsafe {
        let at = record.add(scales_at(kind_of(K)));
        let halves = |offset: usize| _mm256_cvtph_ps(_mm_loadu_si128(at.add(offset).cast()));
        let bytes = |offset: usize| _mm_loadl_epi64(at.add(offset).cast());
        let both = |pair: (__m256, __m256)| [pair, pair];
        match K {
            Q4_0 => both((halves(0), _mm256_mul_ps(halves(0), _mm256_set1_ps(-8.0)))),
            Q4_1 => both((halves(0), halves(16))),
            Q5_0 => both((halves(0), _mm256_mul_ps(halves(0), _mm256_set1_ps(-16.0)))),
            Q8_0 => both((halves(0), _mm256_setzero_ps())),
            Q4_K => {
                let base = supers.add(block / 8 * 2 * PANEL);
                let scale = _mm256_mul_ps(_mm256_loadu_ps(base), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes(0))));
                both((scale, _mm256_mul_ps(_mm256_loadu_ps(base.add(PANEL)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes(PANEL))))))
            }
            _ => {
                let d = _mm256_loadu_ps(supers.add(block / 8 * PANEL));
                let scale = |offset: usize| _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes(offset))));
                let (low, high) = (scale(0), scale(PANEL));
                let offset = _mm256_set1_ps(-32.0);
                [(low, _mm256_mul_ps(low, offset)), (high, _mm256_mul_ps(high, offset))]
            }
        }
    }
}

#[inline(always)]
unsafe fn body<const K: u8, const T: usize, const VNNI: bool>(panel: &Panel) {
    let record_size = record_bytes(kind_of(K));
    let cols = panel.blocks * BLOCK;
    // SAFETY: `panel_args` checked that every block of every token of the tile is in bounds.
    unsafe {
        let mut totals = [_mm256_setzero_ps(); T];
        for block in 0..panel.blocks {
            let record = panel.records.add(block * record_size);
            let x = |t: usize| panel.quants.add(t * cols + block * BLOCK);
            let stats = |t: usize| &*panel.stats.add(t * panel.blocks + block);
            let [(low_scale, low_offset), (high_scale, high_offset)] = scales::<K>(record, panel.supers, block);
            let (magnitudes, signed) = weights::<K, VNNI>(record, 0);
            let mut low = [_mm256_setzero_si256(); T];
            for (t, low) in low.iter_mut().enumerate() {
                *low = dot_half::<K, VNNI>(_mm256_setzero_si256(), &magnitudes, &signed, x(t));
            }
            let (magnitudes, signed) = weights::<K, VNNI>(record, 1);
            for t in 0..T {
                let BlockStats { d, sum, half_sums, quant_sum } = *stats(t);
                let d = _mm256_set1_ps(d);
                if K == Q6_K {
                    // Each half has its own scale.
                    let high = dot_half::<K, VNNI>(_mm256_setzero_si256(), &magnitudes, &signed, x(t).add(16));
                    totals[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(low[t]), _mm256_mul_ps(low_scale, d), totals[t]);
                    totals[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(high), _mm256_mul_ps(high_scale, d), totals[t]);
                    totals[t] = _mm256_fmadd_ps(low_offset, _mm256_set1_ps(half_sums[0]), totals[t]);
                    totals[t] = _mm256_fmadd_ps(high_offset, _mm256_set1_ps(half_sums[1]), totals[t]);
                } else {
                    // The second half adds to the first half's sums: one chain per token.
                    let mut products = dot_half::<K, VNNI>(low[t], &magnitudes, &signed, x(t).add(16));
                    if K == Q8_0 && VNNI {
                        products = _mm256_sub_epi32(products, _mm256_set1_epi32(quant_sum << 7));
                    }
                    let products = _mm256_cvtepi32_ps(products);
                    totals[t] = _mm256_fmadd_ps(products, _mm256_mul_ps(low_scale, d), totals[t]);
                    if K != Q8_0 {
                        totals[t] = _mm256_fmadd_ps(low_offset, _mm256_set1_ps(sum), totals[t]);
                    }
                }
            }
        }
        for (t, total) in totals.iter().enumerate() {
            _mm256_storeu_ps(panel.out.add(t * PANEL), *total);
        }
    }
}

/// [`super::quant::quantize_block`] with AVX2: the same scale, the same quants (rounded half away
/// from zero, as `f32::round` does), the same sums.
pub fn quantize_block(block: &[f32], quants: &mut [i8]) -> (f32, [i32; 2]) {
    assert!(block.len() >= BLOCK && quants.len() >= BLOCK);
    // SAFETY: chosen only when AVX2 and FMA were detected; 32 values and 32 quants are there.
    unsafe { quantize_block_avx2(block.as_ptr(), quants.as_mut_ptr()) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_block_avx2(block: *const f32, quants: *mut i8) -> (f32, [i32; 2]) {
    // SAFETY: the caller's bounds: 32 values in, 32 quants out.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let values: [__m256; 4] = [0, 8, 16, 24].map(|at| _mm256_loadu_ps(block.add(at)));
        let magnitudes = values.map(|v| _mm256_andnot_ps(sign, v));
        let max8 = _mm256_max_ps(_mm256_max_ps(magnitudes[0], magnitudes[1]), _mm256_max_ps(magnitudes[2], magnitudes[3]));
        let max4 = _mm_max_ps(_mm256_castps256_ps128(max8), _mm256_extractf128_ps::<1>(max8));
        let max2 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
        let max = _mm_cvtss_f32(_mm_max_ss(max2, _mm_shuffle_ps::<1>(max2, max2)));
        let scale = max / 127.0;
        let inverse = _mm256_set1_ps(if scale > 0.0 { 1.0 / scale } else { 0.0 });
        let (half, one) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.0));
        let integers = values.map(|v| {
            let x = _mm256_mul_ps(v, inverse);
            // Round half away from zero: truncate, then step away from zero where the dropped
            // fraction is a half or more (x - trunc(x) is exact).
            let truncated = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(x);
            let away = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_andnot_ps(sign, _mm256_sub_ps(x, truncated)), half);
            let step = _mm256_and_ps(away, _mm256_or_ps(_mm256_and_ps(x, sign), one));
            _mm256_cvtps_epi32(_mm256_add_ps(truncated, step))
        });
        // Narrow to bytes (the packs interleave 128-bit lanes; the permutation restores order).
        let words = _mm256_packs_epi16(_mm256_packs_epi32(integers[0], integers[1]), _mm256_packs_epi32(integers[2], integers[3]));
        let bytes = _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(quants.cast(), bytes);
        let sum = |a: __m256i, b: __m256i| {
            let s = _mm256_add_epi32(a, b);
            let s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
            let s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
            _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32::<1>(s2)))
        };
        (scale, [sum(integers[0], integers[1]), sum(integers[2], integers[3])])
    }
}
