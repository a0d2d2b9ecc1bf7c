//! The base network with a LoRA adapter, forward and backward, for training.
//!
//! The forward pass is the inference network's (same weights, same kernels in the quantized
//! form) over a micro-batch of packed sequences; each block keeps what its backward pass needs.
//! Logits are computed only at the rows whose next token is a loss target, in slices, since the
//! output matrix (151,936 rows for Qwen2.5) would otherwise dominate. The backward pass runs
//! from the top block down to the lowest adapted one and no further: below it nothing trains.

use std::ops::Range;

use ibert_model::EngineError;
use ibert_model::adapter::{LoraAdapter, LoraFactors, slot};
use ibert_model::architecture::{Projection, Shape};
use ibert_model::native::DecoderWeights;
use ibert_model::native::ops::{self, RopeTable, Rotation};
use rayon::prelude::*;

use crate::attention::{self, Heads, Projections};
use crate::dense::{Threads, View, ViewMut, matmul};
use crate::frozen::{Frozen, FrozenPrecision, Input};

/// The longest sequence training takes (the rotary table is computed this far once).
pub const MAX_POSITIONS: usize = 8192;
/// Target rows whose logits are computed at once: 64 x 151,936 floats is 39 MB.
const LOGIT_ROWS: usize = 64;

/// Sequences packed one after another, with the rows whose next token the loss scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub tokens: Vec<u32>,
    pub sequences: Vec<Range<usize>>,
    /// `(row, next token)`: the loss is on predicting `next token` from row `row`.
    pub targets: Vec<(usize, u32)>,
}

/// PEFT's `lora_dropout`: each input value of an adapted projection is dropped with probability
/// `rate` (and the kept ones scaled by `1 / (1 - rate)`), by a mask that `seed` determines, so a
/// step's masks are the same when it runs again after a resume.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    pub rate: f32,
    pub seed: u64,
}

impl Dropout {
    fn keeps(&self, block: usize, projection: usize, index: usize) -> bool {
        let key = self.seed ^ ((block as u64) << 56) ^ ((projection as u64) << 48) ^ index as u64;
        (split_mix(key) >> 40) as f32 / (1u64 << 24) as f32 >= self.rate
    }

    /// `x` with the mask of `(block, projection)` applied.
    fn apply(&self, block: usize, projection: usize, x: &[f32]) -> Vec<f32> {
        let keep_scale = 1.0 / (1.0 - self.rate);
        x.par_iter().enumerate().map(|(i, v)| if self.keeps(block, projection, i) { v * keep_scale } else { 0.0 }).collect()
    }
}

/// A 64-bit mix (splitmix64's finalizer): cheap, and every input bit reaches every output bit.
pub fn split_mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The frozen base in training form.
pub struct Network {
    weights: DecoderWeights,
    frozen: Vec<[Frozen; 7]>,
    output: Frozen,
    rope: RopeTable,
}

/// What one block's backward pass needs from its forward pass.
struct Saved {
    input: Vec<f32>,
    normed: Vec<f32>,
    /// Rotated queries and keys, and the values.
    queries: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    attention: attention::Saved,
    attended: Vec<f32>,
    middle: Vec<f32>,
    normed_ffn: Vec<f32>,
    gate_up: Vec<f32>,
    activated: Vec<f32>,
    /// `A x` of each adapted projection (`tokens x rank`).
    lora: [Option<Vec<f32>>; 7],
}

/// The adapter in use for a pass, with its dropout.
#[derive(Clone, Copy)]
struct Adapted<'a> {
    adapter: &'a LoraAdapter,
    dropout: Option<Dropout>,
}

impl Network {
    pub fn new(weights: DecoderWeights, precision: FrozenPrecision) -> Network {
        let frozen = weights.layers.iter().map(|layer| Projection::ALL.map(|projection| Frozen::new(layer.projection(projection), precision))).collect();
        let output = Frozen::new(&weights.output, precision);
        let shape = &weights.shape;
        let mut rope = RopeTable::new(shape.rope_dims, shape.rope_base, shape.rope_style);
        rope.grow(MAX_POSITIONS);
        Network { weights, frozen, output, rope }
    }

    pub fn shape(&self) -> &Shape {
        &self.weights.shape
    }

    pub fn weights(&self) -> &DecoderWeights {
        &self.weights
    }

    /// Bytes of the training copies of the frozen matrices (beside the base's own).
    pub fn frozen_bytes(&self) -> usize {
        self.frozen.iter().flatten().map(Frozen::bytes).sum::<usize>() + self.output.bytes()
    }

    /// The summed loss of `batch`'s targets (nats), with the gradients of the adapter's factors
    /// times `loss_scale` added to `gradients` (an adapter of the same shape).
    pub fn train_step(
        &self,
        adapter: &LoraAdapter,
        batch: &Batch,
        dropout: Option<Dropout>,
        loss_scale: f32,
        gradients: &mut LoraAdapter,
    ) -> Result<f64, EngineError> {
        let adapted = Adapted { adapter, dropout: dropout.filter(|d| d.rate > 0.0) };
        let first = adapter.first_block();
        let mut hidden = self.checked_embeddings(batch)?;
        let mut saved = Vec::new();
        for block in 0..self.weights.layers.len() {
            let keep = self.block(block, &mut hidden, &batch.sequences, Some(adapted), block >= first);
            saved.extend(keep);
        }
        let mut d_hidden = vec![0.0; hidden.len()];
        let loss = self.head(&hidden, &batch.targets, Some((loss_scale, &mut d_hidden)));
        for block in (first..self.weights.layers.len()).rev() {
            let activations = saved.pop().expect("one saved block per block from the first adapted one");
            self.block_backward(block, activations, &mut d_hidden, &batch.sequences, adapted, gradients, block > first);
        }
        Ok(loss)
    }

    /// The summed loss of `batch`'s targets, without gradients (validation).
    pub fn loss(&self, adapter: Option<&LoraAdapter>, batch: &Batch) -> Result<f64, EngineError> {
        let mut hidden = self.checked_embeddings(batch)?;
        for block in 0..self.weights.layers.len() {
            self.block(block, &mut hidden, &batch.sequences, adapter.map(|adapter| Adapted { adapter, dropout: None }), false);
        }
        Ok(self.head(&hidden, &batch.targets, None))
    }

    /// The logits after `tokens` (one sequence), as training computes them.
    pub fn last_logits(&self, adapter: Option<&LoraAdapter>, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let batch = Batch { tokens: tokens.to_vec(), sequences: std::iter::once(0..tokens.len()).collect(), targets: Vec::new() };
        let mut hidden = self.checked_embeddings(&batch)?;
        for block in 0..self.weights.layers.len() {
            self.block(block, &mut hidden, &batch.sequences, adapter.map(|adapter| Adapted { adapter, dropout: None }), false);
        }
        let width = self.shape().width;
        let last = ops::rms_norm(&hidden[hidden.len() - width..], &self.weights.output_norm, self.shape().epsilon);
        Ok(self.output.forward(&self.weights.output, &Input::new(&last, width)))
    }

    fn checked_embeddings(&self, batch: &Batch) -> Result<Vec<f32>, EngineError> {
        let covered = batch.sequences.iter().all(|s| s.start <= s.end && s.end <= batch.tokens.len() && s.len() <= MAX_POSITIONS);
        if batch.tokens.is_empty() || !covered || batch.targets.iter().any(|(row, _)| *row >= batch.tokens.len()) {
            return Err(EngineError::Inference(format!("a malformed batch of {} tokens (sequences {:?})", batch.tokens.len(), batch.sequences)));
        }
        self.weights.embed_all(&batch.tokens)
    }

    /// Each row's position in its sequence.
    fn positions(sequences: &[Range<usize>], rows: usize) -> Vec<usize> {
        let mut positions = vec![0; rows];
        for sequence in sequences {
            for (position, row) in sequence.clone().enumerate() {
                positions[row] = position;
            }
        }
        positions
    }

    fn rotate(&self, values: &mut [f32], row_width: usize, positions: &[usize], rotation: Rotation) {
        let head_dim = self.shape().head_dim;
        values.par_chunks_exact_mut(row_width).zip(positions).for_each(|(row, position)| self.rope.rotate(row, head_dim, *position, rotation));
    }

    /// One block over `hidden`; returns what its backward pass needs when `save`.
    fn block(&self, block: usize, hidden: &mut [f32], sequences: &[Range<usize>], adapted: Option<Adapted>, save: bool) -> Option<Saved> {
        let Shape { width, heads, kv_heads, head_dim, epsilon, ffn, .. } = *self.shape();
        let kv_width = kv_heads * head_dim;
        let tokens = hidden.len() / width;
        let layer = &self.weights.layers[block];
        let frozen = &self.frozen[block];
        let mut lora: [Option<Vec<f32>>; 7] = Default::default();
        let project = |projection: Projection, x: &Input, lora: &mut [Option<Vec<f32>>; 7]| {
            let mut out = frozen[slot(projection)].forward(layer.projection(projection), x);
            if let Some(Adapted { adapter, dropout }) = adapted
                && let Some(factors) = adapter.factors(block, projection)
            {
                let dropped = dropout.map(|d| d.apply(block, slot(projection), x.values));
                lora[slot(projection)] = Some(lora_forward(factors, dropped.as_deref().unwrap_or(x.values), &mut out, adapter.scale()));
            }
            out
        };

        let input = save.then(|| hidden.to_vec());
        let normed = ops::rms_norm(hidden, &layer.attention_norm, epsilon);
        let x = Input::new(&normed, width);
        let mut queries = project(Projection::Query, &x, &mut lora);
        let mut keys = project(Projection::Key, &x, &mut lora);
        let mut values = project(Projection::Value, &x, &mut lora);
        if let Some(bias) = &layer.qkv_bias {
            queries.par_chunks_exact_mut(width).for_each(|row| ops::add(row, &bias[..width]));
            keys.par_chunks_exact_mut(kv_width).for_each(|row| ops::add(row, &bias[width..width + kv_width]));
            values.par_chunks_exact_mut(kv_width).for_each(|row| ops::add(row, &bias[width + kv_width..]));
        }
        let positions = Network::positions(sequences, tokens);
        self.rotate(&mut queries, width, &positions, Rotation::Forward);
        self.rotate(&mut keys, kv_width, &positions, Rotation::Forward);
        let heads_shape = Heads { heads, kv_heads, head_dim };
        let (attended, attention) = attention::forward(Projections { queries: &queries, keys: &keys, values: &values }, heads_shape, sequences);
        let projected = project(Projection::Output, &Input::new(&attended, width), &mut lora);
        ops::add(hidden, &projected);

        let middle = save.then(|| hidden.to_vec());
        let normed_ffn = ops::rms_norm(hidden, &layer.ffn_norm, epsilon);
        let x = Input::new(&normed_ffn, width);
        let gate = project(Projection::Gate, &x, &mut lora);
        let up = project(Projection::Up, &x, &mut lora);
        let gate_up = side_by_side(&gate, &up, ffn);
        let activated = ops::swiglu(&gate_up, ffn);
        let down = project(Projection::Down, &Input::new(&activated, ffn), &mut lora);
        ops::add(hidden, &down);
        save.then(|| Saved {
            input: input.unwrap_or_default(),
            normed,
            queries,
            keys,
            values,
            attention,
            attended,
            middle: middle.unwrap_or_default(),
            normed_ffn,
            gate_up,
            activated,
            lora,
        })
    }

    /// The backward pass of one block: `d_hidden` holds the gradient of the block's output and
    /// becomes that of its input (when `input_gradient`; the lowest adapted block needs none).
    #[allow(clippy::too_many_arguments)]
    fn block_backward(
        &self,
        block: usize,
        saved: Saved,
        d_hidden: &mut [f32],
        sequences: &[Range<usize>],
        adapted: Adapted,
        gradients: &mut LoraAdapter,
        input_gradient: bool,
    ) {
        let Shape { width, heads, kv_heads, head_dim, epsilon, ffn, .. } = *self.shape();
        let kv_width = kv_heads * head_dim;
        let tokens = d_hidden.len() / width;
        let layer = &self.weights.layers[block];
        let frozen = &self.frozen[block];
        let scale = adapted.adapter.scale();
        // The gradient of a projection's input from that of its output, added to `d_input`, and
        // its factors' gradients; without `d_input`, the factors' gradients only.
        let mut through = |projection: Projection, x: &[f32], d_out: &[f32], d_input: Option<&mut Vec<f32>>| {
            let index = slot(projection);
            let rows = self.shape().projection(projection).0;
            let d_x = d_input.map(|into| {
                let base = frozen[index].backward(d_out, rows);
                if into.is_empty() {
                    *into = base;
                } else {
                    ops::add(into, &base);
                }
                into
            });
            if let (Some(factors), Some(u)) = (adapted.adapter.factors(block, projection), saved.lora[index].as_deref()) {
                let gradient = gradients.blocks[block][index].as_mut().expect("the gradients have the adapter's shape");
                let dropped = adapted.dropout.map(|d| d.apply(block, index, x));
                let lora_input = dropped.as_deref().unwrap_or(x);
                let d_lora = lora_backward(factors, gradient, lora_input, u, d_out, scale, d_x.is_some());
                if let (Some(d_x), Some(mut d_lora)) = (d_x, d_lora) {
                    if let Some(dropout) = adapted.dropout {
                        d_lora = dropout.apply(block, index, &d_lora);
                    }
                    ops::add(d_x, &d_lora);
                }
            }
        };

        let mut d_activated = Vec::new();
        through(Projection::Down, &saved.activated, d_hidden, Some(&mut d_activated));
        let d_gate_up = ops::swiglu_backward(&saved.gate_up, ffn, &d_activated);
        let (d_gate, d_up) = split_side_by_side(&d_gate_up, ffn);
        let mut d_normed_ffn = Vec::new();
        through(Projection::Gate, &saved.normed_ffn, &d_gate, Some(&mut d_normed_ffn));
        through(Projection::Up, &saved.normed_ffn, &d_up, Some(&mut d_normed_ffn));
        let d_middle = ops::rms_norm_backward(&saved.middle, &layer.ffn_norm, epsilon, &d_normed_ffn);
        ops::add(d_hidden, &d_middle);

        let mut d_attended = Vec::new();
        through(Projection::Output, &saved.attended, d_hidden, Some(&mut d_attended));
        let projections = Projections { queries: &saved.queries, keys: &saved.keys, values: &saved.values };
        let (mut d_queries, mut d_keys, d_values) =
            attention::backward(projections, &saved.attended, &saved.attention, &d_attended, Heads { heads, kv_heads, head_dim }, sequences);
        let positions = Network::positions(sequences, tokens);
        self.rotate(&mut d_queries, width, &positions, Rotation::Backward);
        self.rotate(&mut d_keys, kv_width, &positions, Rotation::Backward);
        let mut d_normed = Vec::new();
        for (projection, d_out) in [(Projection::Query, &d_queries), (Projection::Key, &d_keys), (Projection::Value, &d_values)] {
            through(projection, &saved.normed, d_out, if input_gradient { Some(&mut d_normed) } else { None });
        }
        if input_gradient {
            let d_input = ops::rms_norm_backward(&saved.input, &layer.attention_norm, epsilon, &d_normed);
            ops::add(d_hidden, &d_input);
        }
    }

    /// The loss of the targets (summed, nats); with `gradient = (scale, d_hidden)`, the
    /// gradient of `scale` times the loss is added to `d_hidden`'s target rows.
    fn head(&self, hidden: &[f32], targets: &[(usize, u32)], mut gradient: Option<(f32, &mut Vec<f32>)>) -> f64 {
        let Shape { width, epsilon, .. } = *self.shape();
        let vocabulary = self.weights.vocabulary();
        let mut loss = 0.0;
        for slice in targets.chunks(LOGIT_ROWS) {
            let rows: Vec<f32> = slice.iter().flat_map(|(row, _)| &hidden[row * width..(row + 1) * width]).copied().collect();
            let normed = ops::rms_norm(&rows, &self.weights.output_norm, epsilon);
            let mut logits = self.output.forward(&self.weights.output, &Input::new(&normed, width));
            let scale = gradient.as_ref().map(|(scale, _)| *scale);
            // Each row's loss; with a gradient wanted, its logits become `scale * (softmax - onehot)`.
            let losses: Vec<f64> = logits
                .par_chunks_exact_mut(vocabulary)
                .zip(slice)
                .map(|(logits, (_, target))| {
                    let max = logits.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
                    let sum: f64 = logits.iter().map(|v| f64::from((v - max).exp())).sum();
                    let log_sum = f64::from(max) + sum.ln();
                    let row_loss = log_sum - f64::from(logits[*target as usize]);
                    if let Some(scale) = scale {
                        for value in logits.iter_mut() {
                            *value = ((f64::from(*value) - log_sum).exp() as f32) * scale;
                        }
                        logits[*target as usize] -= scale;
                    }
                    row_loss
                })
                .collect();
            loss += losses.iter().sum::<f64>();
            if let Some((_, d_hidden)) = gradient.as_mut() {
                let d_normed = self.output.backward(&logits, vocabulary);
                let d_rows = ops::rms_norm_backward(&rows, &self.weights.output_norm, epsilon, &d_normed);
                for ((row, _), d_row) in slice.iter().zip(d_rows.chunks_exact(width)) {
                    ops::add(&mut d_hidden[row * width..(row + 1) * width], d_row);
                }
            }
        }
        loss
    }
}

/// `out += scale * (x A^T) B^T`; returns `x A^T` (`tokens x rank`) for the backward pass.
fn lora_forward(factors: &LoraFactors, x: &[f32], out: &mut [f32], scale: f32) -> Vec<f32> {
    let LoraFactors { rank, input, output, .. } = *factors;
    let tokens = x.len() / input;
    let mut u = vec![0.0; tokens * rank];
    matmul(ViewMut::new(&mut u, tokens, rank), View::new(x, tokens, input), View::new(&factors.a, rank, input).t(), 1.0, false, Threads::Pool);
    matmul(ViewMut::new(out, tokens, output), View::new(&u, tokens, rank), View::new(&factors.b, output, rank).t(), scale, true, Threads::Pool);
    u
}

/// Adds the factors' gradients for the output gradient `d_out` to `gradient`
/// (`dB += s dy^T u`, `dA += (s dy B)^T x`); returns the input's gradient `s dy B A` when asked.
fn lora_backward(factors: &LoraFactors, gradient: &mut LoraFactors, x: &[f32], u: &[f32], d_out: &[f32], scale: f32, input: bool) -> Option<Vec<f32>> {
    let LoraFactors { rank, input: cols, output, .. } = *factors;
    let tokens = x.len() / cols;
    let d_out = View::new(d_out, tokens, output);
    matmul(ViewMut::new(&mut gradient.b, output, rank), d_out.t(), View::new(u, tokens, rank), scale, true, Threads::Pool);
    let mut d_u = vec![0.0; tokens * rank];
    matmul(ViewMut::new(&mut d_u, tokens, rank), d_out, View::new(&factors.b, output, rank), scale, false, Threads::Pool);
    matmul(ViewMut::new(&mut gradient.a, rank, cols), View::new(&d_u, tokens, rank).t(), View::new(x, tokens, cols), 1.0, true, Threads::Pool);
    input.then(|| {
        let mut d_x = vec![0.0; tokens * cols];
        matmul(ViewMut::new(&mut d_x, tokens, cols), View::new(&d_u, tokens, rank), View::new(&factors.a, rank, cols), 1.0, false, Threads::Pool);
        d_x
    })
}

/// Rows of `a` and `b` (`width` values each) side by side: rows of `2 * width`.
fn side_by_side(a: &[f32], b: &[f32], width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(a.len() * 2);
    for (a, b) in a.chunks_exact(width).zip(b.chunks_exact(width)) {
        out.extend_from_slice(a);
        out.extend_from_slice(b);
    }
    out
}

fn split_side_by_side(joined: &[f32], width: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut a, mut b) = (Vec::with_capacity(joined.len() / 2), Vec::with_capacity(joined.len() / 2));
    for row in joined.chunks_exact(2 * width) {
        a.extend_from_slice(&row[..width]);
        b.extend_from_slice(&row[width..]);
    }
    (a, b)
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
