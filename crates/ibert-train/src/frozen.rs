//! The frozen matrices of the base network, forward (`y = x W^T`) and backward (`dx = dy W`).
//!
//! Two forms, chosen when training starts ([`FrozenPrecision`]):
//! * `Quantized`: the forward product runs on the inference kernels over the file's own blocks,
//!   and the backward one on the same int8 kernels over a transposed Q8_0 copy of each matrix
//!   (built once at load: dequantize, transpose, quantize), with the incoming gradient
//!   quantized per 32-value block as activations are. Memory stays near the file's size.
//! * `Dense`: every matrix dequantized to f32 and multiplied with `gemm`; exact, so the gradient
//!   checks run on it, and four times the file's memory traffic per step.
//!
//! `docs/training.md` gives the measured speed of each; the quantized form is the default.

use std::sync::OnceLock;

use ibert_model::native::ops;
use ibert_model::native::quant::{BLOCK, QActivations, QMatrix};

use crate::dense::{Threads, View, ViewMut, matmul};

/// How the frozen base multiplies in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrozenPrecision {
    #[default]
    Quantized,
    Dense,
}

impl FrozenPrecision {
    pub fn parse(text: &str) -> Option<FrozenPrecision> {
        match text {
            "quantized" => Some(FrozenPrecision::Quantized),
            "dense" | "f32" => Some(FrozenPrecision::Dense),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FrozenPrecision::Quantized => "quantized",
            FrozenPrecision::Dense => "dense",
        }
    }
}

/// Rows of `cols` values, with their Q8 quantization made once when a quantized product first
/// needs it (the query, key and value products share one input).
pub struct Input<'a> {
    pub values: &'a [f32],
    pub cols: usize,
    quantized: OnceLock<QActivations>,
}

impl<'a> Input<'a> {
    pub fn new(values: &'a [f32], cols: usize) -> Input<'a> {
        Input { values, cols, quantized: OnceLock::new() }
    }

    pub fn tokens(&self) -> usize {
        self.values.len() / self.cols
    }

    fn quantized(&self) -> &QActivations {
        self.quantized.get_or_init(|| {
            let mut activations = QActivations::default();
            activations.quantize(self.values, self.cols);
            activations
        })
    }
}

/// One frozen matrix in its training form.
pub enum Frozen {
    /// The transposed Q8_0 copy for the backward product (the forward uses the base's matrix).
    Quantized { transposed: QMatrix },
    /// Row-major `rows x cols` floats.
    Dense { values: Vec<f32>, rows: usize, cols: usize },
}

impl Frozen {
    /// The training form of `matrix`. A quantized matrix whose output width is not a multiple of
    /// the 32-value block (so its transpose cannot be Q8_0) falls back to the dense form.
    pub fn new(matrix: &QMatrix, precision: FrozenPrecision) -> Frozen {
        let (rows, cols) = (matrix.rows, matrix.cols);
        let values = dequantize(matrix);
        if precision == FrozenPrecision::Quantized && rows.is_multiple_of(BLOCK) {
            let transposed = transpose(&values, rows, cols);
            if let Ok(transposed) = QMatrix::quantize_q8_0(cols, rows, &transposed) {
                return Frozen::Quantized { transposed };
            }
        }
        Frozen::Dense { values, rows, cols }
    }

    /// `x W^T`: `tokens x rows`.
    pub fn forward(&self, matrix: &QMatrix, x: &Input) -> Vec<f32> {
        match self {
            Frozen::Quantized { .. } => ops::matmul(&[matrix], x.quantized(), x.tokens()),
            Frozen::Dense { values, rows, cols } => {
                let mut out = vec![0.0; x.tokens() * rows];
                matmul(
                    ViewMut::new(&mut out, x.tokens(), *rows),
                    View::new(x.values, x.tokens(), *cols),
                    View::new(values, *rows, *cols).t(),
                    1.0,
                    false,
                    Threads::Pool,
                );
                out
            }
        }
    }

    /// `dy W` for `dy` of `tokens x rows`: the gradient of the input, `tokens x cols`.
    pub fn backward(&self, d_out: &[f32], rows: usize) -> Vec<f32> {
        let tokens = d_out.len() / rows;
        match self {
            Frozen::Quantized { transposed } => {
                let mut activations = QActivations::default();
                activations.quantize(d_out, rows);
                ops::matmul(&[transposed], &activations, tokens)
            }
            Frozen::Dense { values, rows, cols } => {
                let mut out = vec![0.0; tokens * cols];
                matmul(ViewMut::new(&mut out, tokens, *cols), View::new(d_out, tokens, *rows), View::new(values, *rows, *cols), 1.0, false, Threads::Pool);
                out
            }
        }
    }

    /// Bytes this form keeps beside the base.
    pub fn bytes(&self) -> usize {
        match self {
            Frozen::Quantized { transposed } => transposed.rows * transposed.cols / BLOCK * 34,
            Frozen::Dense { values, .. } => values.len() * 4,
        }
    }
}

fn dequantize(matrix: &QMatrix) -> Vec<f32> {
    let mut values = vec![0.0; matrix.rows * matrix.cols];
    for (row, out) in values.chunks_exact_mut(matrix.cols).enumerate() {
        matrix.dequantize_row(row, out);
    }
    values
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    // In tiles, so both sides are read and written a cache line at a time.
    const TILE: usize = 32;
    for row_tile in (0..rows).step_by(TILE) {
        for col_tile in (0..cols).step_by(TILE) {
            for row in row_tile..(row_tile + TILE).min(rows) {
                for col in col_tile..(col_tile + TILE).min(cols) {
                    out[col * rows + row] = values[row * cols + col];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wavy(count: usize, seed: f32) -> Vec<f32> {
        crate::synthetic::wavy(count, seed, 0.5)
    }

    fn relative_error(a: &[f32], b: &[f32]) -> f32 {
        let difference: f32 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let size: f32 = b.iter().map(|y| y * y).sum();
        (difference / size).sqrt()
    }

    #[test]
    fn the_quantized_backward_product_agrees_with_the_dense_one() {
        let (rows, cols, tokens) = (64, 96, 5);
        let matrix = QMatrix::quantize_q8_0(rows, cols, &wavy(rows * cols, 0.0)).unwrap();
        let (quantized, dense) = (Frozen::new(&matrix, FrozenPrecision::Quantized), Frozen::new(&matrix, FrozenPrecision::Dense));
        assert!(matches!(quantized, Frozen::Quantized { .. }) && matches!(dense, Frozen::Dense { .. }));
        let d_out = wavy(tokens * rows, 1.0);
        let (q, d) = (quantized.backward(&d_out, rows), dense.backward(&d_out, rows));
        assert_eq!(q.len(), tokens * cols);
        // Two 8-bit roundings (the transposed weights and the gradient): about 1% apart.
        assert!(relative_error(&q, &d) < 0.02, "{}", relative_error(&q, &d));
        let x = wavy(tokens * cols, 2.0);
        let (q, d) = (quantized.forward(&matrix, &Input::new(&x, cols)), dense.forward(&matrix, &Input::new(&x, cols)));
        assert!(relative_error(&q, &d) < 0.02, "{}", relative_error(&q, &d));
        // The dense backward is the exact transpose product.
        let values = match &dense {
            Frozen::Dense { values, .. } => values.clone(),
            Frozen::Quantized { .. } => unreachable!(),
        };
        let exact: Vec<f32> = (0..tokens)
            .flat_map(|t| (0..cols).map(move |c| (t, c)))
            .map(|(t, c)| (0..rows).map(|r| d_out[t * rows + r] * values[r * cols + c]).sum())
            .collect();
        assert!(relative_error(&dense.backward(&d_out, rows), &exact) < 1e-5);
    }

    #[test]
    fn an_output_width_off_the_block_stays_dense() {
        let matrix = QMatrix::quantize_q8_0(40, 64, &wavy(40 * 64, 0.5)).unwrap();
        assert!(matches!(Frozen::new(&matrix, FrozenPrecision::Quantized), Frozen::Dense { .. }));
    }
}
