//! The native backend's network for inference: [`DecoderWeights`] with a key/value cache, and an
//! optional LoRA adapter applied unmerged (`y += s * B (A x)` after each adapted projection,
//! over all of a prompt's tokens at once), so one base serves with or without it.

use rayon::prelude::*;

use super::ops;
use super::quant::QActivations;
use super::weights::DecoderWeights;
use crate::adapter::{LoraAdapter, LoraFactors, slot};
use crate::architecture::{Projection, Shape};
use crate::decoder::Forward;
use crate::engine::EngineError;
use crate::gguf::Gguf;

/// Keys and values of the positions seen so far, `position x kv_heads x head_dim`.
#[derive(Default)]
struct LayerCache {
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// A llama or qwen2 network on the native kernels.
pub struct NativeDecoder {
    weights: DecoderWeights,
    cache: Vec<LayerCache>,
    rope: ops::RopeTable,
    adapter: Option<AppliedAdapter>,
}

impl NativeDecoder {
    /// The network of a GGUF file, with its panel file in iBERT's cache.
    pub fn load(header: &Gguf) -> Result<NativeDecoder, EngineError> {
        Ok(NativeDecoder::new(DecoderWeights::load(header)?))
    }

    pub fn new(weights: DecoderWeights) -> NativeDecoder {
        let shape = &weights.shape;
        let cache = (0..shape.blocks).map(|_| LayerCache::default()).collect();
        let rope = ops::RopeTable::new(shape.rope_dims, shape.rope_base, shape.rope_style);
        NativeDecoder { weights, cache, rope, adapter: None }
    }

    /// Applies `adapter` from now on (replacing any other); it must fit the network.
    pub fn with_adapter(mut self, adapter: &LoraAdapter) -> Result<NativeDecoder, String> {
        self.set_adapter(adapter)?;
        Ok(self)
    }

    pub fn weights(&self) -> &DecoderWeights {
        &self.weights
    }

    pub fn shape(&self) -> &Shape {
        &self.weights.shape
    }

    /// The logits after `tokens`, from an empty cache (to compare networks).
    pub fn logits_from_start(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.reset();
        self.logits(tokens, 0)
    }

    /// One transformer block over the `tokens` rows of `hidden` at `position` onwards.
    fn block(&mut self, index: usize, hidden: &mut [f32], tokens: usize, position: usize, scratch: &mut QActivations) {
        let Shape { width, heads, kv_heads, head_dim, epsilon, ffn, .. } = self.weights.shape;
        let kv_width = kv_heads * head_dim;
        let layer = &self.weights.layers[index];
        let adapter = self.adapter.as_ref().map(|adapter| (adapter, index));
        let normed = ops::rms_norm(hidden, &layer.attention_norm, epsilon);
        scratch.quantize(&normed, width);
        let mut qkv = ops::matmul(&[&layer.qkv[0], &layer.qkv[1], &layer.qkv[2]], scratch, tokens);
        let row = width + 2 * kv_width;
        if let Some(bias) = &layer.qkv_bias {
            qkv.chunks_exact_mut(row).for_each(|values| ops::add(values, bias));
        }
        apply(adapter, &[(Projection::Query, 0), (Projection::Key, width), (Projection::Value, width + kv_width)], &normed, &mut qkv, row);
        let mut queries = Vec::with_capacity(tokens * width);
        let cache = &mut self.cache[index];
        for (token, values) in qkv.chunks_exact(row).enumerate() {
            let (query, rest) = values.split_at(width);
            let (key, value) = rest.split_at(kv_width);
            let at = queries.len();
            queries.extend_from_slice(query);
            self.rope.apply(&mut queries[at..], head_dim, position + token);
            let at = cache.keys.len();
            cache.keys.extend_from_slice(key);
            self.rope.apply(&mut cache.keys[at..], head_dim, position + token);
            cache.values.extend_from_slice(value);
        }
        let attended = ops::attention(&queries, &cache.keys, &cache.values, ops::Heads { heads, kv_heads, head_dim }, position);
        scratch.quantize(&attended, width);
        let mut projected = ops::matmul(&[&layer.attention_output], scratch, tokens);
        apply(adapter, &[(Projection::Output, 0)], &attended, &mut projected, width);
        ops::add(hidden, &projected);

        let normed = ops::rms_norm(hidden, &layer.ffn_norm, epsilon);
        scratch.quantize(&normed, width);
        let mut gate_up = ops::matmul(&[&layer.gate_up[0], &layer.gate_up[1]], scratch, tokens);
        apply(adapter, &[(Projection::Gate, 0), (Projection::Up, ffn)], &normed, &mut gate_up, 2 * ffn);
        let activated = ops::swiglu(&gate_up, ffn);
        scratch.quantize(&activated, ffn);
        let mut down = ops::matmul(&[&layer.down], scratch, tokens);
        apply(adapter, &[(Projection::Down, 0)], &activated, &mut down, width);
        ops::add(hidden, &down);
    }
}

/// Adds the adapter's updates of block `index` for `parts` (each projection with the column its
/// output starts at in `out`, whose rows are `row` values apart) from the input rows `input`.
fn apply(adapter: Option<(&AppliedAdapter, usize)>, parts: &[(Projection, usize)], input: &[f32], out: &mut [f32], row: usize) {
    let Some((adapter, index)) = adapter else { return };
    for (projection, offset) in parts {
        if let Some(factors) = &adapter.blocks[index][slot(*projection)] {
            factors.add(input, out, row, *offset, adapter.scale);
        }
    }
}

/// An adapter in the form the decoder applies it: `A` as it is, `B` transposed (`rank x
/// output`), so that each rank's column is added to the output with one vector operation.
struct AppliedAdapter {
    scale: f32,
    blocks: Vec<[Option<AppliedFactors>; 7]>,
}

impl AppliedAdapter {
    fn of(adapter: &LoraAdapter) -> AppliedAdapter {
        let blocks = adapter.blocks.iter().map(|factors| std::array::from_fn(|i| factors[i].as_ref().map(AppliedFactors::of))).collect();
        AppliedAdapter { scale: adapter.scale(), blocks }
    }
}

struct AppliedFactors {
    a: Vec<f32>,
    b_transposed: Vec<f32>,
    input: usize,
    output: usize,
}

impl AppliedFactors {
    fn of(factors: &LoraFactors) -> AppliedFactors {
        let LoraFactors { rank, input, output, .. } = *factors;
        let mut b_transposed = vec![0.0; rank * output];
        for o in 0..output {
            for r in 0..rank {
                b_transposed[r * output + o] = factors.b[o * rank + r];
            }
        }
        AppliedFactors { a: factors.a.clone(), b_transposed, input, output }
    }

    /// `out[t][offset..offset + output] += scale * B (A x_t)` for every token row `x_t`.
    fn add(&self, input: &[f32], out: &mut [f32], row: usize, offset: usize, scale: f32) {
        let token = |(x, out): (&[f32], &mut [f32])| {
            let out = &mut out[offset..offset + self.output];
            for (a, b) in self.a.chunks_exact(self.input).zip(self.b_transposed.chunks_exact(self.output)) {
                ops::add_scaled(out, scale * ops::dot(x, a), b);
            }
        };
        if input.len() > self.input {
            input.par_chunks_exact(self.input).zip(out.par_chunks_exact_mut(row)).for_each(token);
        } else {
            input.chunks_exact(self.input).zip(out.chunks_exact_mut(row)).for_each(token);
        }
    }
}

impl Forward for NativeDecoder {
    fn set_adapter(&mut self, adapter: &LoraAdapter) -> Result<(), String> {
        adapter.check_fits(self.weights.architecture, &self.weights.shape)?;
        self.adapter = Some(AppliedAdapter::of(adapter));
        self.reset();
        Ok(())
    }

    fn reset(&mut self) {
        for cache in &mut self.cache {
            cache.keys.clear();
            cache.values.clear();
        }
    }

    fn truncate(&mut self, positions: usize) -> bool {
        let kv_width = self.weights.shape.kv_heads * self.weights.shape.head_dim;
        for cache in &mut self.cache {
            cache.keys.truncate(positions * kv_width);
            cache.values.truncate(positions * kv_width);
        }
        true
    }

    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError> {
        // Only the last position's logits are needed to pick the next token.
        Ok(self.logits_rows(tokens, position, 1)?.pop().unwrap_or_default())
    }

    fn logits_rows(&mut self, tokens: &[u32], position: usize, rows: usize) -> Result<Vec<Vec<f32>>, EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::Inference("no tokens to run".to_string()));
        }
        let width = self.weights.shape.width;
        let rows = rows.clamp(1, tokens.len());
        let mut hidden = self.weights.embed_all(tokens)?;
        let mut scratch = QActivations::default();
        for index in 0..self.weights.layers.len() {
            self.block(index, &mut hidden, tokens.len(), position, &mut scratch);
        }
        // The output matrix (the largest) runs over the rows asked for only.
        let last = &hidden[hidden.len() - rows * width..];
        scratch.quantize(&ops::rms_norm(last, &self.weights.output_norm, self.weights.shape.epsilon), width);
        let logits = ops::matmul(&[&self.weights.output], &scratch, rows);
        let vocabulary = logits.len() / rows;
        Ok(logits.chunks_exact(vocabulary).map(<[f32]>::to_vec).collect())
    }

    fn checks_drafts_in_one_pass(&self) -> bool {
        true
    }
}
