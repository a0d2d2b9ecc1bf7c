//! The repacked matrices and every kernel against the plain decoding of [`super::ggml`], on
//! pseudo-random blocks of every format.

use half::f16;

use super::ggml::{self, QuantKind};
use super::quant::{BLOCK, MAX_TOKEN_TILE, PANEL, QActivations, QMatrix, chosen_kernels, portable_kernels};

/// A small deterministic generator (tests need no randomness crate).
struct Noise(u32);

impl Noise {
    fn byte(&mut self) -> u8 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 13) as u8
    }

    /// Uniform in `low..high`.
    fn float(&mut self, low: f32, high: f32) -> f32 {
        let unit = f32::from(u16::from_le_bytes([self.byte(), self.byte()])) / 65_536.0;
        low + (high - low) * unit
    }

    fn half(&mut self, low: f32, high: f32) -> [u8; 2] {
        f16::from_f32(self.float(low, high)).to_le_bytes()
    }
}

/// `rows x cols` values of `kind` in file form, with random quants and plausible scales.
fn random_ggml(kind: QuantKind, rows: usize, cols: usize, seed: u32) -> Vec<u8> {
    random_ggml_of_size(kind, rows, cols, seed, 1.0)
}

/// The same with every scale multiplied by `size`.
pub(super) fn random_ggml_of_size(kind: QuantKind, rows: usize, cols: usize, seed: u32, size: f32) -> Vec<u8> {
    let mut noise = Noise(seed);
    let half = |noise: &mut Noise, low: f32, high: f32| noise.half(low * size, high * size);
    let mut data = Vec::new();
    for _ in 0..rows * cols / kind.block_values() {
        let start = data.len();
        match kind {
            QuantKind::Q4_0 | QuantKind::Q5_0 | QuantKind::Q8_0 => data.extend(half(&mut noise, 0.001, 0.05)),
            QuantKind::Q4_1 => {
                data.extend(half(&mut noise, 0.001, 0.05));
                data.extend(half(&mut noise, -0.4, 0.1));
            }
            QuantKind::Q4_K => {
                data.extend(half(&mut noise, 0.0005, 0.01));
                data.extend(half(&mut noise, 0.0005, 0.01));
            }
            QuantKind::Q6_K => {}
        }
        while data.len() - start < kind.block_bytes() {
            data.push(noise.byte());
        }
        if kind == QuantKind::Q6_K {
            // The block ends with `d`; the 16 scales before it are signed bytes (any value).
            let end = data.len();
            data[end - 2..].copy_from_slice(&half(&mut noise, 0.0001, 0.002));
        }
    }
    data
}

fn activations(tokens: usize, cols: usize, seed: u32) -> Vec<f32> {
    let mut noise = Noise(seed);
    (0..tokens * cols).map(|i| noise.float(-2.0, 2.0) * if i % 7 == 0 { 3.0 } else { 1.0 }).collect()
}

/// The product of reference-decoded weights with the quantized activations as they are (the
/// kernels' own inputs), in f64: what a kernel must reproduce up to float rounding. With it, the
/// size of the terms the kernels add in f32 (the offsets of unsigned quants make them larger
/// than the products), which bounds that rounding.
fn reference_products(kind: QuantKind, data: &[u8], rows: usize, cols: usize, x: &QActivations) -> Vec<Vec<(f64, f64)>> {
    let row_bytes = kind.row_bytes(cols).unwrap();
    let mut weights = vec![0.0; cols];
    (0..rows)
        .map(|row| {
            ggml::dequantize(kind, &data[row * row_bytes..(row + 1) * row_bytes], &mut weights);
            (0..x.tokens())
                .map(|token| {
                    let (quants, stats) = x.row(token);
                    let activation = |e: usize| f64::from(quants[e]) * f64::from(stats[e / BLOCK].d);
                    let product = weights.iter().enumerate().map(|(e, w)| f64::from(*w) * activation(e)).sum();
                    let size = weights
                        .chunks_exact(16)
                        .enumerate()
                        .map(|(half, w)| {
                            let largest = w.iter().fold(0f32, |m, v| m.max(v.abs()));
                            w.iter().enumerate().map(|(i, v)| f64::from(v.abs() + largest) * activation(16 * half + i).abs()).sum::<f64>()
                        })
                        .sum();
                    (product, size)
                })
                .collect()
        })
        .collect()
}

/// Whether `found` is `expected` up to f32 rounding of terms of size `size`.
fn close(found: f32, (expected, size): (f64, f64)) -> bool {
    (f64::from(found) - expected).abs() <= 1e-5 * size + 1e-6
}

/// Shapes with a padded last panel (13 rows) and more than one super-block per row.
const ROWS: usize = 13;
const TOKENS: usize = 11;

fn cols_for(kind: QuantKind) -> usize {
    if kind.block_values() == 256 { 512 } else { 96 }
}

#[test]
fn repacked_rows_decode_to_the_reference_values() {
    for kind in QuantKind::ALL {
        let cols = cols_for(kind);
        let data = random_ggml(kind, ROWS, cols, 11);
        let matrix = QMatrix::from_ggml(kind, ROWS, cols, &data).unwrap();
        let row_bytes = kind.row_bytes(cols).unwrap();
        let (mut expected, mut found) = (vec![0.0; cols], vec![0.0; cols]);
        for row in 0..ROWS {
            ggml::dequantize(kind, &data[row * row_bytes..(row + 1) * row_bytes], &mut expected);
            matrix.dequantize_row(row, &mut found);
            for (e, (a, b)) in expected.iter().zip(&found).enumerate() {
                assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-3), "{kind:?} row {row} value {e}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn every_kernel_reproduces_the_reference_products_for_every_tile() {
    let kernels = [("chosen", chosen_kernels()), ("portable", (portable_kernels(), MAX_TOKEN_TILE))];
    for kind in QuantKind::ALL {
        let cols = cols_for(kind);
        let data = random_ggml(kind, ROWS, cols, 5);
        let matrix = QMatrix::from_ggml(kind, ROWS, cols, &data).unwrap();
        let mut x = QActivations::default();
        x.quantize(&activations(TOKENS, cols, 9), cols);
        let expected = reference_products(kind, &data, ROWS, cols, &x);
        for (name, (kernel, tile)) in kernels {
            for panel in 0..matrix.panels() {
                let (records, supers) = matrix.panel_data_for_tests(panel);
                for first in 0..TOKENS {
                    for count in 1..=tile.min(TOKENS - first) {
                        let mut out = vec![f32::NAN; count * PANEL];
                        kernel(kind, records, supers, &x, first, count, &mut out);
                        for (t, products) in out.chunks_exact(PANEL).enumerate() {
                            for (lane, found) in products.iter().enumerate().take(ROWS - panel * PANEL) {
                                let want = expected[panel * PANEL + lane][first + t];
                                assert!(close(*found, want), "{name} {kind:?} panel {panel} tokens {first}+{t} of {count}: {found} vs {want:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn products_are_close_to_those_of_the_float_activations() {
    for kind in QuantKind::ALL {
        let cols = cols_for(kind);
        let data = random_ggml(kind, ROWS, cols, 21);
        let matrix = QMatrix::from_ggml(kind, ROWS, cols, &data).unwrap();
        let values = activations(2, cols, 4);
        let mut x = QActivations::default();
        x.quantize(&values, cols);
        let mut weights = vec![0.0; cols];
        for row in 0..ROWS {
            matrix.dequantize_row(row, &mut weights);
            for token in 0..2 {
                let exact: f32 = weights.iter().zip(&values[token * cols..]).map(|(w, a)| w * a).sum();
                let scale: f32 = weights.iter().zip(&values[token * cols..]).map(|(w, a)| (w * a).abs()).sum();
                let found = matrix.dot(row, &x, token);
                assert!((exact - found).abs() <= 0.01 * scale, "{kind:?} row {row} token {token}: {exact} vs {found}");
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_and_vnni_kernels_agree_to_the_bit() {
    let vnni = std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512vl");
    if !super::quant::vector_units_allowed() || !vnni {
        eprintln!("skipped: this CPU has no AVX2 or no AVX512-VNNI");
        return;
    }
    for kind in QuantKind::ALL {
        let cols = cols_for(kind);
        let matrix = QMatrix::from_ggml(kind, ROWS, cols, &random_ggml(kind, ROWS, cols, 8)).unwrap();
        let mut x = QActivations::default();
        let tile = super::x86::AVX2_TILE;
        x.quantize(&activations(tile, cols, 2), cols);
        let (records, supers) = matrix.panel_data_for_tests(1);
        let (mut plain, mut vnni) = (vec![0.0; tile * PANEL], vec![1.0; tile * PANEL]);
        super::x86::panel_avx2(kind, records, supers, &x, 0, tile, &mut plain);
        super::x86::panel_vnni(kind, records, supers, &x, 0, tile, &mut vnni);
        assert_eq!(plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), vnni.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{kind:?}");
    }
}

#[test]
fn extreme_quants_do_not_overflow_the_sixteen_bit_sums() {
    // All quants at their largest, activations at +-127: the AVX2 kernels' 16-bit pair sums are
    // at their limit here.
    for kind in QuantKind::ALL {
        let cols = cols_for(kind);
        let mut data = random_ggml(kind, PANEL, cols, 3);
        for block in data.chunks_exact_mut(kind.block_bytes()) {
            let quants = match kind {
                QuantKind::Q4_0 => 2..18,
                QuantKind::Q4_1 => 4..20,
                QuantKind::Q5_0 => 2..22,
                QuantKind::Q8_0 => 2..34,
                QuantKind::Q4_K => 16..144,
                QuantKind::Q6_K => 0..192,
            };
            let fill = if kind == QuantKind::Q8_0 { 0x81 } else { 0xff };
            block[quants].fill(fill);
        }
        let matrix = QMatrix::from_ggml(kind, PANEL, cols, &data).unwrap();
        let values: Vec<f32> = (0..cols).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let mut x = QActivations::default();
        x.quantize(&values, cols);
        let expected = reference_products(kind, &data, PANEL, cols, &x);
        for (row, expected) in expected.iter().enumerate() {
            let found = matrix.dot(row, &x, 0);
            assert!(close(found, expected[0]), "{kind:?}: {found} vs {:?}", expected[0]);
        }
    }
}

#[test]
fn quantizing_to_q8_0_keeps_values_within_half_a_step() {
    let values: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) / 7.0).collect();
    let matrix = QMatrix::quantize_q8_0(2, 32, &values).unwrap();
    let mut row = vec![0.0; 32];
    matrix.dequantize_row(1, &mut row);
    // The step is the block's f16 scale.
    let step = f16::from_f32(values[32..].iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0).to_f32();
    assert!(row.iter().zip(&values[32..]).all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6), "{row:?}");
}

#[test]
fn a_short_buffer_or_a_partial_block_is_refused() {
    let error = QMatrix::from_ggml(QuantKind::Q8_0, 2, 64, &[0; 100]).unwrap_err();
    assert!(error.contains("136 are needed"), "{error}");
    let error = QMatrix::from_ggml(QuantKind::Q4_K, 2, 96, &[0; 1000]).unwrap_err();
    assert!(error.contains("96 values is not a whole number of 256-value Q4_K blocks"), "{error}");
}

#[test]
fn the_chosen_block_quantizer_gives_the_plain_ones_quants() {
    let mut noise = Noise(77);
    // Random blocks, and blocks with values exactly half way between two quants.
    let mut blocks: Vec<Vec<f32>> = (0..200).map(|_| (0..BLOCK).map(|_| noise.float(-3.0, 3.0)).collect()).collect();
    blocks.push((0..BLOCK).map(|i| (i as f32 - 15.5) * 127.0 / 15.5 / 2.0).collect());
    blocks.push((0..BLOCK).map(|i| if i == 0 { 127.0 } else { i as f32 * 0.5 - 8.0 }).collect());
    blocks.push(vec![0.0; BLOCK]);
    let quantize = super::quant::chosen_quantizer();
    for block in &blocks {
        let (mut plain, mut chosen) = ([0i8; BLOCK], [0i8; BLOCK]);
        let expected = super::quant::quantize_block(block, &mut plain);
        assert_eq!(quantize(block, &mut chosen), expected, "{block:?}");
        assert_eq!(chosen, plain, "{block:?}");
    }
}
