//! Causal self-attention over the sequences of a micro-batch, forward and backward, with the
//! probabilities kept from the forward pass for the backward one. Sequences packed into one
//! micro-batch do not see each other: each is attended over on its own rows. Query heads share
//! key/value heads in groups (GQA); a key/value head's gradient sums over its group.

use std::ops::Range;

use rayon::prelude::*;

use crate::dense::{Threads, View, ViewMut, matmul};

/// Heads of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }
}

/// The rotated queries (`tokens x heads*head_dim`), keys and values (`tokens x kv_heads*head_dim`).
#[derive(Clone, Copy)]
pub struct Projections<'a> {
    pub queries: &'a [f32],
    pub keys: &'a [f32],
    pub values: &'a [f32],
}

/// Head `head`'s columns of rows `rows` of `data` (rows `stride` apart).
fn head_view<'a>(data: &'a [f32], rows: &Range<usize>, stride: usize, head: usize, head_dim: usize) -> View<'a> {
    View { data: &data[rows.start * stride + head * head_dim..], rows: rows.len(), cols: head_dim, row_stride: stride, col_stride: 1 }
}

/// What the backward pass needs of one layer's attention: the softmax probabilities of every
/// sequence, `heads x n x n` each (row `i`, column `j <= i`).
pub struct Saved {
    pub probabilities: Vec<Vec<f32>>,
}

/// The attention output (`tokens x heads*head_dim`) of the rotated projections, each sequence
/// (a range of rows) on its own.
pub fn forward(projections: Projections, shape: Heads, sequences: &[Range<usize>]) -> (Vec<f32>, Saved) {
    let Projections { queries, keys, values } = projections;
    let Heads { heads, head_dim, .. } = shape;
    let (width, kv_width) = (heads * head_dim, shape.kv_heads * head_dim);
    let scale = 1.0 / (head_dim as f32).sqrt();
    let tasks: Vec<(usize, usize)> = (0..sequences.len()).flat_map(|s| (0..heads).map(move |h| (s, h))).collect();
    let results: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .par_iter()
        .map(|&(s, h)| {
            let rows = sequences[s].clone();
            let n = rows.len();
            let kv = h / shape.group();
            let query = head_view(queries, &rows, width, h, head_dim);
            let key = head_view(keys, &rows, kv_width, kv, head_dim);
            let value = head_view(values, &rows, kv_width, kv, head_dim);
            let mut probabilities = vec![0.0; n * n];
            matmul(ViewMut::new(&mut probabilities, n, n), query, key.t(), scale, false, Threads::Caller);
            causal_softmax(&mut probabilities, n);
            let mut out = vec![0.0; n * head_dim];
            matmul(ViewMut::new(&mut out, n, head_dim), View::new(&probabilities, n, n), value, 1.0, false, Threads::Caller);
            (probabilities, out)
        })
        .collect();
    let mut attended = vec![0.0; queries.len()];
    let mut probabilities: Vec<Vec<f32>> = sequences.iter().map(|rows| Vec::with_capacity(heads * rows.len() * rows.len())).collect();
    for (&(s, h), (p, out)) in tasks.iter().zip(results) {
        let rows = sequences[s].clone();
        for (i, values) in out.chunks_exact(head_dim).enumerate() {
            let at = (rows.start + i) * width + h * head_dim;
            attended[at..at + head_dim].copy_from_slice(values);
        }
        probabilities[s].extend_from_slice(&p);
    }
    (attended, Saved { probabilities })
}

/// Row `i` of `n x n` scores turned into probabilities over columns `0..=i`; the rest zero.
fn causal_softmax(scores: &mut [f32], n: usize) {
    for (i, row) in scores.chunks_exact_mut(n).enumerate() {
        let (seen, unseen) = row.split_at_mut(i + 1);
        let max = seen.iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
        let mut total = 0.0;
        for s in seen.iter_mut() {
            *s = (*s - max).exp();
            total += *s;
        }
        seen.iter_mut().for_each(|s| *s /= total);
        unseen.fill(0.0);
    }
}

/// Gradients of the rotated queries, keys and values from the gradient of the attention output
/// (`d_attended`); `attended` is the forward output.
pub fn backward(
    projections: Projections,
    attended: &[f32],
    saved: &Saved,
    d_attended: &[f32],
    shape: Heads,
    sequences: &[Range<usize>],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Projections { queries, keys, values } = projections;
    let Heads { heads, head_dim, .. } = shape;
    let (width, kv_width) = (heads * head_dim, shape.kv_heads * head_dim);
    let scale = 1.0 / (head_dim as f32).sqrt();
    let tasks: Vec<(usize, usize)> = (0..sequences.len()).flat_map(|s| (0..heads).map(move |h| (s, h))).collect();
    let results: Vec<[Vec<f32>; 3]> = tasks
        .par_iter()
        .map(|&(s, h)| {
            let rows = sequences[s].clone();
            let n = rows.len();
            let kv = h / shape.group();
            let (query, key, value) = (
                head_view(queries, &rows, width, h, head_dim),
                head_view(keys, &rows, kv_width, kv, head_dim),
                head_view(values, &rows, kv_width, kv, head_dim),
            );
            let (out, d_out) = (head_view(attended, &rows, width, h, head_dim), head_view(d_attended, &rows, width, h, head_dim));
            let probabilities = &saved.probabilities[s][h * n * n..(h + 1) * n * n];
            // dP = dO V^T; dS = P * (dP - rowsum(dO * O)) (the softmax's Jacobian), times the scale.
            let mut d_scores = vec![0.0; n * n];
            matmul(ViewMut::new(&mut d_scores, n, n), d_out, value.t(), 1.0, false, Threads::Caller);
            for i in 0..n {
                let row_dot: f32 = (0..head_dim).map(|d| d_out.data[i * width + d] * out.data[i * width + d]).sum();
                let (d_row, p_row) = (&mut d_scores[i * n..(i + 1) * n], &probabilities[i * n..(i + 1) * n]);
                for (d, p) in d_row.iter_mut().zip(p_row) {
                    *d = p * (*d - row_dot) * scale;
                }
            }
            let d_scores_view = View::new(&d_scores, n, n);
            let mut d_query = vec![0.0; n * head_dim];
            matmul(ViewMut::new(&mut d_query, n, head_dim), d_scores_view, key, 1.0, false, Threads::Caller);
            let mut d_key = vec![0.0; n * head_dim];
            matmul(ViewMut::new(&mut d_key, n, head_dim), d_scores_view.t(), query, 1.0, false, Threads::Caller);
            let mut d_value = vec![0.0; n * head_dim];
            matmul(ViewMut::new(&mut d_value, n, head_dim), View::new(probabilities, n, n).t(), d_out, 1.0, false, Threads::Caller);
            [d_query, d_key, d_value]
        })
        .collect();
    let (mut d_queries, mut d_keys, mut d_values) = (vec![0.0; queries.len()], vec![0.0; keys.len()], vec![0.0; values.len()]);
    // In task order, so that the sums over a group come out the same every run.
    for (&(s, h), [d_query, d_key, d_value]) in tasks.iter().zip(results) {
        let rows = sequences[s].clone();
        let kv = h / shape.group();
        for i in 0..rows.len() {
            let (q_at, kv_at) = ((rows.start + i) * width + h * head_dim, (rows.start + i) * kv_width + kv * head_dim);
            d_queries[q_at..q_at + head_dim].copy_from_slice(&d_query[i * head_dim..(i + 1) * head_dim]);
            for d in 0..head_dim {
                d_keys[kv_at + d] += d_key[i * head_dim + d];
                d_values[kv_at + d] += d_value[i * head_dim + d];
            }
        }
    }
    (d_queries, d_keys, d_values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect()
    }

    /// The sum of `weights * attention(...)`: a scalar whose gradient the backward pass gives.
    fn objective(q: &[f32], k: &[f32], v: &[f32], weights: &[f32], shape: Heads, sequences: &[Range<usize>]) -> f64 {
        let (out, _) = forward(Projections { queries: q, keys: k, values: v }, shape, sequences);
        out.iter().zip(weights).map(|(o, w)| f64::from(*o) * f64::from(*w)).sum()
    }

    #[test]
    fn the_backward_pass_matches_finite_differences_over_packed_sequences_and_groups() {
        let shape = Heads { heads: 4, kv_heads: 2, head_dim: 3 };
        let sequences = [0..3, 3..7];
        let tokens = 7;
        let (q, k, v) = (values(tokens * 12, 0.0), values(tokens * 6, 5.0), values(tokens * 6, 9.0));
        let weights = values(tokens * 12, 2.0);
        let projections = Projections { queries: &q, keys: &k, values: &v };
        let (out, saved) = forward(projections, shape, &sequences);
        let (dq, dk, dv) = backward(projections, &out, &saved, &weights, shape, &sequences);
        let step = 1e-3;
        for (which, analytic) in [(0, &dq), (1, &dk), (2, &dv)] {
            for index in (0..analytic.len()).step_by(5) {
                let mut inputs = [q.clone(), k.clone(), v.clone()];
                inputs[which][index] += step;
                let up = objective(&inputs[0], &inputs[1], &inputs[2], &weights, shape, &sequences);
                inputs[which][index] -= 2.0 * step;
                let down = objective(&inputs[0], &inputs[1], &inputs[2], &weights, shape, &sequences);
                let numeric = (up - down) / (2.0 * f64::from(step));
                assert!((numeric - f64::from(analytic[index])).abs() < 2e-3, "input {which}, index {index}: {numeric} against {}", analytic[index]);
            }
        }
    }

    #[test]
    fn packed_sequences_do_not_see_each_other() {
        let shape = Heads { heads: 1, kv_heads: 1, head_dim: 2 };
        let (q, k, mut v) = (values(8, 0.0), values(8, 1.0), values(8, 2.0));
        let (before, _) = forward(Projections { queries: &q, keys: &k, values: &v }, shape, &[0..2, 2..4]);
        // Changing the second sequence's values leaves the first sequence's output alone.
        v[6] += 10.0;
        let (after, _) = forward(Projections { queries: &q, keys: &k, values: &v }, shape, &[0..2, 2..4]);
        assert_eq!(before[..4], after[..4]);
        assert_ne!(before[4..], after[4..]);
        // The first row of a sequence attends only to itself: its output is its value.
        assert!((after[4] - v[4]).abs() < 1e-6 && (after[5] - v[5]).abs() < 1e-6);
    }
}
