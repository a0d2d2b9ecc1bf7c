//! The float operations of a llama block: RMS norm, rotary embeddings, causal attention over the
//! key/value cache, SwiGLU, and the parallel quantized matrix product; beside the norm, SwiGLU
//! and the rotation, their backward passes, which training (`ibert-train`) composes.

use rayon::prelude::*;

use super::quant::{MAX_TOKEN_TILE, PANEL, QActivations, QMatrix};

/// Panels (of eight rows) one parallel task computes at least: enough work to pay for the task.
const PANELS_PER_TASK: usize = 4;
/// Activation bytes one pass over the weights keeps in use: a prompt longer than this covers is
/// multiplied in slices of tokens, so each weight panel is reused from cache across a slice.
const ACTIVATION_BYTES_PER_PASS: usize = 1 << 20;

/// `x / rms(x) * weight` for each row of `weight.len()` values.
pub fn rms_norm(rows: &[f32], weight: &[f32], epsilon: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.chunks_exact(weight.len()) {
        let mean_square = dot(row, row) / row.len() as f32;
        let scale = 1.0 / (mean_square + epsilon).sqrt();
        out.extend(row.iter().zip(weight).map(|(x, w)| x * scale * w));
    }
    out
}

/// The gradient of [`rms_norm`]'s input from its output's gradient `d_out` (the weight frozen):
/// with `r = 1 / rms(x)`, `dx = r * w * dy - x * r^3 / n * sum(dy * w * x)`.
pub fn rms_norm_backward(rows: &[f32], weight: &[f32], epsilon: f32, d_out: &[f32]) -> Vec<f32> {
    let width = weight.len();
    let mut d_in = vec![0.0; rows.len()];
    let row = |((x, dy), dx): ((&[f32], &[f32]), &mut [f32])| {
        let mean_square = dot(x, x) / width as f32;
        let r = 1.0 / (mean_square + epsilon).sqrt();
        let weighted: f32 = x.iter().zip(dy).zip(weight).map(|((x, dy), w)| x * dy * w).sum();
        let coefficient = r * r * r / width as f32 * weighted;
        for (((dx, x), dy), w) in dx.iter_mut().zip(x).zip(dy).zip(weight) {
            *dx = r * w * dy - x * coefficient;
        }
    };
    rows.par_chunks_exact(width).zip(d_out.par_chunks_exact(width)).zip(d_in.par_chunks_exact_mut(width)).for_each(row);
    d_in
}

/// `x @ W^T` for each of the `tokens` rows of `x`, with the rows of `parts` taken as one matrix
/// (so query, key and value come out side by side). Returns `tokens x (rows of all parts)`.
pub fn matmul(parts: &[&QMatrix], x: &QActivations, tokens: usize) -> Vec<f32> {
    let total: usize = parts.iter().map(|p| p.rows).sum();
    let panels: usize = parts.iter().map(|p| p.panels()).sum();
    let mut out = vec![0.0; total * tokens];
    let destination = Destination(out.as_mut_ptr());
    // One task per thread and a few more for balance: each task is enough work to pay for it.
    let panels_per_task = panels.div_ceil(rayon::current_num_threads() * 4).max(PANELS_PER_TASK);
    let tokens_per_pass = (ACTIVATION_BYTES_PER_PASS / x.cols().max(1)).max(MAX_TOKEN_TILE) / MAX_TOKEN_TILE * MAX_TOKEN_TILE;
    let mut first = 0;
    while first < tokens {
        let count = (tokens - first).min(tokens_per_pass);
        (0..panels.div_ceil(panels_per_task)).into_par_iter().for_each(|task| {
            let mut tile = [0.0; MAX_TOKEN_TILE * PANEL];
            for panel in task * panels_per_task..((task + 1) * panels_per_task).min(panels) {
                // Which part, which of its panels, and its first row in the output.
                let (mut matrix, mut local, mut row) = (0, panel, 0);
                while local >= parts[matrix].panels() {
                    (local, row) = (local - parts[matrix].panels(), row + parts[matrix].rows);
                    matrix += 1;
                }
                let row = row + local * PANEL;
                let rows = (parts[matrix].rows - local * PANEL).min(PANEL);
                let mut token = first;
                while token < first + count {
                    let tile_tokens = (first + count - token).min(MAX_TOKEN_TILE);
                    parts[matrix].panel_products(local, x, token, tile_tokens, &mut tile);
                    for (t, products) in tile.chunks_exact(PANEL).take(tile_tokens).enumerate() {
                        // SAFETY: `(token + t) * total + row..+rows` lies inside `out`, and no
                        // other task writes it (each panel belongs to one task).
                        unsafe { std::ptr::copy_nonoverlapping(products.as_ptr(), destination.at((token + t) * total + row), rows) };
                    }
                    token += tile_tokens;
                }
            }
        });
        first += count;
    }
    out
}

/// The output of [`matmul`], written by the tasks at disjoint places.
#[derive(Clone, Copy)]
struct Destination(*mut f32);

impl Destination {
    /// The address of value `index` (a method, so closures capture the whole `Destination`).
    ///
    /// # Safety
    /// `index` lies inside the output.
    unsafe fn at(self, index: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(index) }
    }
}

// SAFETY: the tasks write disjoint ranges (see `matmul`), and `out` outlives them.
unsafe impl Send for Destination {}
unsafe impl Sync for Destination {}

pub fn add(into: &mut [f32], other: &[f32]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
}

/// `silu(gate) * up` for each row of `gate_up` (`gate` and `up` side by side, `ffn` values each);
/// a prompt's rows in parallel.
pub fn swiglu(gate_up: &[f32], ffn: usize) -> Vec<f32> {
    let mut out = vec![0.0; gate_up.len() / 2];
    let row = |(gate_up, out): (&[f32], &mut [f32])| {
        for ((g, u), o) in gate_up[..ffn].iter().zip(&gate_up[ffn..]).zip(out) {
            *o = g / (1.0 + (-g).exp()) * u;
        }
    };
    if out.len() > ffn {
        gate_up.par_chunks_exact(2 * ffn).zip(out.par_chunks_exact_mut(ffn)).for_each(row);
    } else {
        gate_up.chunks_exact(2 * ffn).zip(out.chunks_exact_mut(ffn)).for_each(row);
    }
    out
}

/// The gradient of [`swiglu`]'s input (`gate` and `up` side by side) from its output's gradient:
/// with `s = sigmoid(g)`, `dg = dy * u * s * (1 + g * (1 - s))` and `du = dy * g * s`.
pub fn swiglu_backward(gate_up: &[f32], ffn: usize, d_out: &[f32]) -> Vec<f32> {
    let mut d_in = vec![0.0; gate_up.len()];
    let row = |((gate_up, dy), d_in): ((&[f32], &[f32]), &mut [f32])| {
        let (gate, up) = gate_up.split_at(ffn);
        let (d_gate, d_up) = d_in.split_at_mut(ffn);
        for i in 0..ffn {
            let (g, u) = (gate[i], up[i]);
            let sigmoid = 1.0 / (1.0 + (-g).exp());
            d_gate[i] = dy[i] * u * sigmoid * (1.0 + g * (1.0 - sigmoid));
            d_up[i] = dy[i] * g * sigmoid;
        }
    };
    gate_up.par_chunks_exact(2 * ffn).zip(d_out.par_chunks_exact(ffn)).zip(d_in.par_chunks_exact_mut(2 * ffn)).for_each(row);
    d_in
}

/// `a . b`, vectorized with AVX2 where the CPU has it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (float_kernels().dot)(a, b)
}

/// `into += weight * values`, vectorized with AVX2 where the CPU has it.
pub fn add_scaled(into: &mut [f32], weight: f32, values: &[f32]) {
    (float_kernels().add_scaled)(into, weight, values)
}

struct FloatKernels {
    dot: fn(&[f32], &[f32]) -> f32,
    add_scaled: fn(&mut [f32], f32, &[f32]),
}

fn float_kernels() -> &'static FloatKernels {
    static KERNELS: std::sync::OnceLock<FloatKernels> = std::sync::OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if super::quant::vector_units_allowed() {
            return FloatKernels { dot: avx2::dot_safe, add_scaled: avx2::add_scaled_safe };
        }
        FloatKernels { dot: portable_dot, add_scaled: portable_add_scaled }
    })
}

/// Eight partial sums, so the compiler can keep them in vector registers.
fn portable_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn portable_add_scaled(into: &mut [f32], weight: f32, values: &[f32]) {
    for (o, v) in into.iter_mut().zip(values) {
        *o += weight * v;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    pub fn dot_safe(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: chosen only when AVX2 and FMA were detected; reads stay below `n`.
        unsafe { dot(&a[..n], &b[..n]) }
    }

    pub fn add_scaled_safe(into: &mut [f32], weight: f32, values: &[f32]) {
        let n = into.len().min(values.len());
        // SAFETY: as above.
        unsafe { add_scaled(&mut into[..n], weight, &values[..n]) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut total = _mm256_setzero_ps();
        let chunks = a.len() / 8;
        for i in 0..chunks {
            // SAFETY: `i * 8 + 8 <= len` for both slices (equal lengths).
            let (x, y) = unsafe { (_mm256_loadu_ps(a.as_ptr().add(i * 8)), _mm256_loadu_ps(b.as_ptr().add(i * 8))) };
            total = _mm256_fmadd_ps(x, y, total);
        }
        horizontal_sum(total) + a[chunks * 8..].iter().zip(&b[chunks * 8..]).map(|(x, y)| x * y).sum::<f32>()
    }

    /// The sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn add_scaled(into: &mut [f32], weight: f32, values: &[f32]) {
        let w = _mm256_set1_ps(weight);
        let chunks = into.len() / 8;
        for i in 0..chunks {
            // SAFETY: `i * 8 + 8 <= len` for both slices (equal lengths).
            unsafe {
                let o = into.as_mut_ptr().add(i * 8);
                _mm256_storeu_ps(o, _mm256_fmadd_ps(w, _mm256_loadu_ps(values.as_ptr().add(i * 8)), _mm256_loadu_ps(o)));
            }
        }
        for (o, v) in into[chunks * 8..].iter_mut().zip(&values[chunks * 8..]) {
            *o += weight * v;
        }
    }
}

/// Which values of a head rotate together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// `(2i, 2i+1)`: llama GGUF files (their query and key rows are permuted for it).
    AdjacentPairs,
    /// `(i, i + dims/2)`: Hugging Face checkpoints (`rotate_half`).
    Halves,
}

/// Which way [`RopeTable::rotate`] turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Forward,
    Backward,
}

/// Rotary position embeddings: pairs of the first `dims` values of each head rotated by
/// `position * base^(-2i/dims)`.
pub struct RopeTable {
    dims: usize,
    base: f32,
    style: RopeStyle,
    /// `cos, sin` per position and pair, grown on demand.
    angles: Vec<(f32, f32)>,
}

impl RopeTable {
    pub fn new(dims: usize, base: f32, style: RopeStyle) -> RopeTable {
        RopeTable { dims, base, style, angles: Vec::new() }
    }

    /// Rotates every head of `values` (heads of `head_dim` values) for `position`.
    pub fn apply(&mut self, values: &mut [f32], head_dim: usize, position: usize) {
        self.grow(position + 1);
        self.rotate(values, head_dim, position, Rotation::Forward);
    }

    /// Computes the angles of positions `0..positions` (the others are computed when needed).
    pub fn grow(&mut self, positions: usize) {
        let pairs = self.dims / 2;
        while self.angles.len() < positions * pairs {
            let at = self.angles.len() / pairs;
            for pair in 0..pairs {
                let frequency = self.base.powf(-2.0 * pair as f32 / self.dims as f32);
                let angle = at as f32 * frequency;
                self.angles.push((angle.cos(), angle.sin()));
            }
        }
    }

    /// Rotates every head of `values` for `position` (which [`RopeTable::grow`] has covered), by
    /// its angles or, for the backward pass, back by them (the rotation is orthogonal, so its
    /// transpose is its inverse).
    pub fn rotate(&self, values: &mut [f32], head_dim: usize, position: usize, rotation: Rotation) {
        let pairs = self.dims / 2;
        let angles = &self.angles[position * pairs..(position + 1) * pairs];
        let sign = if rotation == Rotation::Forward { 1.0 } else { -1.0 };
        for head in values.chunks_exact_mut(head_dim) {
            for (pair, (cos, sin)) in angles.iter().enumerate() {
                let (a, b) = match self.style {
                    RopeStyle::AdjacentPairs => (2 * pair, 2 * pair + 1),
                    RopeStyle::Halves => (pair, pair + pairs),
                };
                let (x, y, sin) = (head[a], head[b], sign * sin);
                head[a] = x * cos - y * sin;
                head[b] = x * sin + y * cos;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Causal attention of each query row (the tokens at `position` onwards) over the cached keys and
/// values, which already hold those tokens. Heads share key/value heads in groups (GQA).
pub fn attention(queries: &[f32], keys: &[f32], values: &[f32], shape: Heads, position: usize) -> Vec<f32> {
    let Heads { heads, kv_heads, head_dim } = shape;
    let kv_width = kv_heads * head_dim;
    let group = heads / kv_heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut out = vec![0.0; queries.len()];
    let attend = |(index, out): (usize, &mut [f32])| {
        let (token, head) = (index / heads, index % heads);
        let query = &queries[index * head_dim..(index + 1) * head_dim];
        let kv_offset = (head / group) * head_dim;
        let seen = position + token + 1;
        let mut weights: Vec<f32> = (0..seen).map(|t| dot(query, &keys[t * kv_width + kv_offset..][..head_dim]) * scale).collect();
        let max = weights.iter().fold(f32::NEG_INFINITY, |m, w| m.max(*w));
        let mut total = 0.0;
        for weight in &mut weights {
            *weight = (*weight - max).exp();
            total += *weight;
        }
        for (t, weight) in weights.iter().enumerate() {
            let value = &values[t * kv_width + kv_offset..][..head_dim];
            add_scaled(out, weight / total, value);
        }
    };
    // One token's heads over a short context are less work than waking the threads.
    if queries.len() / head_dim * (position + queries.len() / (heads * head_dim)) < 512 {
        out.chunks_mut(head_dim).enumerate().for_each(attend);
    } else {
        out.par_chunks_mut(head_dim).enumerate().for_each(attend);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_over_one_position_returns_its_value() {
        let shape = Heads { heads: 2, kv_heads: 1, head_dim: 2 };
        let out = attention(&[1.0, 0.0, 0.0, 1.0], &[0.3, 0.4], &[5.0, -2.0], shape, 0);
        assert_eq!(out, vec![5.0, -2.0, 5.0, -2.0]);
    }

    #[test]
    fn attention_is_causal_and_weighs_by_softmax() {
        let shape = Heads { heads: 1, kv_heads: 1, head_dim: 1 };
        // Two tokens: the first sees only itself; the second weighs both by softmax(q*k).
        let out = attention(&[1.0, 2.0], &[0.0, 1.0], &[10.0, 20.0], shape, 0);
        let (a, b) = (0f32.exp(), 2f32.exp());
        assert_eq!(out[0], 10.0);
        assert!((out[1] - (10.0 * a + 20.0 * b) / (a + b)).abs() < 1e-4, "{out:?}");
    }

    #[test]
    fn rope_keeps_lengths_and_leaves_position_zero_alone() {
        let mut table = RopeTable::new(4, 10_000.0, RopeStyle::AdjacentPairs);
        let mut values = vec![1.0, 2.0, 3.0, 4.0];
        table.apply(&mut values, 4, 0);
        assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0]);
        table.apply(&mut values, 4, 7);
        assert!(((values[0].powi(2) + values[1].powi(2)) - 5.0).abs() < 1e-4, "{values:?}");
        assert!((values[0] - (7f32.cos() - 2.0 * 7f32.sin())).abs() < 1e-4, "the first pair turns by the position: {values:?}");
        let mut halves = RopeTable::new(4, 10_000.0, RopeStyle::Halves);
        let mut values = vec![1.0, 2.0, 3.0, 4.0];
        halves.apply(&mut values, 4, 7);
        assert!((values[0] - (7f32.cos() - 3.0 * 7f32.sin())).abs() < 1e-4, "value 0 turns with value 2: {values:?}");
    }

    #[test]
    fn the_float_kernels_agree_with_plain_loops() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4 && (portable_dot(&a, &b) - plain).abs() < 1e-4);
        let mut into = a.clone();
        add_scaled(&mut into, 0.5, &b);
        assert!(into.iter().zip(a.iter().zip(&b)).all(|(o, (x, y))| (o - (x + 0.5 * y)).abs() < 1e-6));
    }

    /// `sum(weights * f(x))` and the numeric gradient of it, by central differences in f64.
    fn numeric_gradient(x: &[f32], weights: &[f32], f: &dyn Fn(&[f32]) -> Vec<f32>) -> Vec<f64> {
        let objective = |x: &[f32]| f(x).iter().zip(weights).map(|(y, w)| f64::from(*y) * f64::from(*w)).sum::<f64>();
        let step = 1e-2;
        (0..x.len())
            .map(|i| {
                let (mut up, mut down) = (x.to_vec(), x.to_vec());
                up[i] += step;
                down[i] -= step;
                (objective(&up) - objective(&down)) / (2.0 * f64::from(step))
            })
            .collect()
    }

    fn assert_close(analytic: &[f32], numeric: &[f64], what: &str) {
        for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
            assert!((f64::from(*a) - n).abs() < 2e-3 * (1.0 + n.abs()), "{what}, value {i}: {a} against {n}");
        }
    }

    #[test]
    fn the_backward_passes_match_finite_differences() {
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin() * 2.0).collect();
        let weights: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).cos()).collect();
        let norm: Vec<f32> = (0..4).map(|i| 0.5 + i as f32 * 0.25).collect();
        let analytic = rms_norm_backward(&x, &norm, 1e-5, &weights);
        assert_close(&analytic, &numeric_gradient(&x, &weights, &|x| rms_norm(x, &norm, 1e-5)), "rms norm");
        // Two rows of gate (3 values) and up (3 values); the output has 3 values per row.
        let analytic = swiglu_backward(&x, 3, &weights[..6]);
        assert_close(&analytic, &numeric_gradient(&x, &weights[..6], &|x| swiglu(x, 3)), "swiglu");
        for style in [RopeStyle::AdjacentPairs, RopeStyle::Halves] {
            let mut table = RopeTable::new(4, 10_000.0, style);
            table.grow(8);
            let rotate = |x: &[f32]| {
                let mut y = x.to_vec();
                table.rotate(&mut y, 4, 7, Rotation::Forward);
                y
            };
            let mut analytic = weights.clone();
            table.rotate(&mut analytic, 4, 7, Rotation::Backward);
            assert_close(&analytic, &numeric_gradient(&x, &weights, &rotate), "rope");
        }
    }

    #[test]
    fn rms_norm_scales_each_row_to_unit_rms() {
        let out = rms_norm(&[3.0, 4.0, 0.0, 2.0], &[1.0, 2.0], 0.0);
        let rms = (12.5f32).sqrt();
        assert!((out[0] - 3.0 / rms).abs() < 1e-6 && (out[1] - 8.0 / rms).abs() < 1e-6 && (out[3] - 2.0 * 2.0 / 2f32.sqrt()).abs() < 1e-6, "{out:?}");
    }
}
