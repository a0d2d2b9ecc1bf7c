//! A tiny qwen2-style network (biases on the query, key and value projections, rotation of head
//! halves, grouped key/value heads, a separate output matrix, a padded vocabulary) built through
//! [`WeightSource`] from synthetic weights of every block format, against a plain f64 forward
//! pass over the same weights decoded by [`super::ggml`].

use std::collections::HashMap;

use super::ggml::{self, QuantKind};
use super::kernel_tests::random_ggml_of_size;
use super::ops::RopeStyle;
use super::quant::QMatrix;
use super::{DecoderWeights, NativeDecoder, WeightSource};
use crate::adapter::LoraAdapter;
use crate::architecture::{Architecture, Projection, Shape};
use crate::decoder::Forward;
use crate::engine::EngineError;

const WIDTH: usize = 256;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = WIDTH / HEADS;
const FFN: usize = 512;
const VOCABULARY: usize = 37;
const BLOCKS: usize = 2;
const EPSILON: f32 = 1e-6;
const ROPE_BASE: f32 = 10_000.0;
/// Scales the random blocks' scales to weights of about the size trained ones have.
const WEIGHT_SIZE: f32 = 0.05;

/// Matrices in file form (`kind`, rows, cols, bytes) and vectors, by GGUF name.
struct Synthetic {
    matrices: HashMap<String, (QuantKind, usize, usize, Vec<u8>)>,
    vectors: HashMap<String, Vec<f32>>,
}

impl Synthetic {
    fn new() -> Synthetic {
        let mut model = Synthetic { matrices: HashMap::new(), vectors: HashMap::new() };
        let mut seed = 100;
        let mut matrix = |model: &mut Synthetic, name: String, kind: QuantKind, rows: usize, cols: usize| {
            seed += 1;
            model.matrices.insert(name, (kind, rows, cols, random_ggml_of_size(kind, rows, cols, seed, WEIGHT_SIZE)));
        };
        let kv_width = KV_HEADS * HEAD_DIM;
        for block in 0..BLOCKS {
            let name = |part: &str| format!("blk.{block}.{part}.weight");
            matrix(&mut model, name("attn_q"), QuantKind::Q4_K, WIDTH, WIDTH);
            matrix(&mut model, name("attn_k"), QuantKind::Q5_0, kv_width, WIDTH);
            matrix(&mut model, name("attn_v"), QuantKind::Q6_K, kv_width, WIDTH);
            matrix(&mut model, name("attn_output"), QuantKind::Q8_0, WIDTH, WIDTH);
            matrix(&mut model, name("ffn_gate"), QuantKind::Q4_0, FFN, WIDTH);
            matrix(&mut model, name("ffn_up"), QuantKind::Q4_1, FFN, WIDTH);
            matrix(&mut model, name("ffn_down"), QuantKind::Q6_K, WIDTH, FFN);
            let wave = |length: usize, phase: f32, size: f32| (0..length).map(|i| size * (i as f32 * 0.37 + phase).sin()).collect::<Vec<_>>();
            model.vectors.insert(name("attn_norm"), wave(WIDTH, 0.1, 0.5).iter().map(|v| 1.0 + v).collect());
            model.vectors.insert(name("ffn_norm"), wave(WIDTH, 0.7, 0.5).iter().map(|v| 1.0 + v).collect());
            model.vectors.insert(format!("blk.{block}.attn_q.bias"), wave(WIDTH, 1.3, 2.0));
            model.vectors.insert(format!("blk.{block}.attn_k.bias"), wave(kv_width, 2.1, 2.0));
            model.vectors.insert(format!("blk.{block}.attn_v.bias"), wave(kv_width, 0.4, 1.0));
        }
        matrix(&mut model, "token_embd.weight".into(), QuantKind::Q5_0, VOCABULARY, WIDTH);
        matrix(&mut model, "output.weight".into(), QuantKind::Q8_0, VOCABULARY, WIDTH);
        model.vectors.insert("output_norm.weight".into(), vec![1.0; WIDTH]);
        model
    }

    fn shape(style: RopeStyle) -> Shape {
        Shape {
            width: WIDTH,
            heads: HEADS,
            kv_heads: KV_HEADS,
            head_dim: HEAD_DIM,
            rope_dims: HEAD_DIM,
            rope_base: ROPE_BASE,
            rope_style: style,
            epsilon: EPSILON,
            blocks: BLOCKS,
            ffn: FFN,
        }
    }

    fn network(&mut self) -> NativeDecoder {
        NativeDecoder::new(DecoderWeights::build(Architecture::Qwen2, Synthetic::shape(RopeStyle::Halves), self).unwrap())
    }

    /// A projection's matrix decoded to f64 rows, with `scale * B A` of the adapter added.
    fn merged(&self, block: usize, projection: Projection, adapter: Option<&LoraAdapter>) -> Vec<Vec<f64>> {
        let mut rows = self.decoded(&crate::architecture::gguf_tensor(block, projection));
        if let Some(factors) = adapter.and_then(|adapter| adapter.factors(block, projection).map(|f| (adapter.scale(), f))) {
            let (scale, factors) = factors;
            for (o, row) in rows.iter_mut().enumerate() {
                for (i, value) in row.iter_mut().enumerate() {
                    let update: f64 = (0..factors.rank).map(|r| f64::from(factors.b[o * factors.rank + r]) * f64::from(factors.a[r * factors.input + i])).sum();
                    *value += f64::from(scale) * update;
                }
            }
        }
        rows
    }

    /// A matrix decoded to f64 rows.
    fn decoded(&self, name: &str) -> Vec<Vec<f64>> {
        let (kind, rows, cols, data) = &self.matrices[name];
        let row_bytes = kind.row_bytes(*cols).unwrap();
        let mut values = vec![0.0; *cols];
        (0..*rows)
            .map(|row| {
                ggml::dequantize(*kind, &data[row * row_bytes..(row + 1) * row_bytes], &mut values);
                values.iter().map(|v| f64::from(*v)).collect()
            })
            .collect()
    }

    fn vector(&self, name: &str) -> Vec<f64> {
        self.vectors[name].iter().map(|v| f64::from(*v)).collect()
    }

    /// The logits after `tokens`, computed plainly in f64: what the native network approximates.
    fn reference_logits(&self, tokens: &[u32], style: RopeStyle, biases: bool, adapter: Option<&LoraAdapter>) -> Vec<f64> {
        let apply = |matrix: &[Vec<f64>], x: &[f64]| matrix.iter().map(|row| row.iter().zip(x).map(|(w, v)| w * v).sum()).collect::<Vec<f64>>();
        let norm = |x: &[f64], weight: &[f64]| {
            let scale = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + f64::from(EPSILON)).sqrt();
            x.iter().zip(weight).map(|(v, w)| v * scale * w).collect::<Vec<f64>>()
        };
        let rotate = |head: &mut [f64], position: usize| {
            for pair in 0..HEAD_DIM / 2 {
                let angle = position as f64 * f64::from(ROPE_BASE).powf(-2.0 * pair as f64 / HEAD_DIM as f64);
                let (a, b) = if style == RopeStyle::Halves { (pair, pair + HEAD_DIM / 2) } else { (2 * pair, 2 * pair + 1) };
                let (x, y) = (head[a], head[b]);
                head[a] = x * angle.cos() - y * angle.sin();
                head[b] = x * angle.sin() + y * angle.cos();
            }
        };
        let embeddings = self.decoded("token_embd.weight");
        let mut hidden: Vec<Vec<f64>> = tokens.iter().map(|t| embeddings[*t as usize].clone()).collect();
        for block in 0..BLOCKS {
            let name = |part: &str| format!("blk.{block}.{part}.weight");
            let projections = [Projection::Query, Projection::Key, Projection::Value]
                .map(|projection| (self.merged(block, projection, adapter), self.vector(&format!("blk.{block}.{}.bias", projection.gguf()))));
            let (mut queries, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for (position, state) in hidden.iter().enumerate() {
                let normed = norm(state, &self.vector(&name("attn_norm")));
                let [mut q, mut k, v] = projections.clone().map(|(matrix, bias)| {
                    let mut out = apply(&matrix, &normed);
                    if biases {
                        out.iter_mut().zip(&bias).for_each(|(o, b)| *o += b);
                    }
                    out
                });
                q.chunks_exact_mut(HEAD_DIM).for_each(|head| rotate(head, position));
                k.chunks_exact_mut(HEAD_DIM).for_each(|head| rotate(head, position));
                queries.push(q);
                keys.push(k);
                values.push(v);
            }
            let output = self.merged(block, Projection::Output, adapter);
            let [gate, up, down] = [Projection::Gate, Projection::Up, Projection::Down].map(|projection| self.merged(block, projection, adapter));
            for (position, state) in hidden.iter_mut().enumerate() {
                let mut attended = vec![0.0; WIDTH];
                for head in 0..HEADS {
                    let (query, kv) = (&queries[position][head * HEAD_DIM..][..HEAD_DIM], head / (HEADS / KV_HEADS) * HEAD_DIM);
                    let scores: Vec<f64> =
                        (0..=position).map(|s| query.iter().zip(&keys[s][kv..]).map(|(a, b)| a * b).sum::<f64>() / (HEAD_DIM as f64).sqrt()).collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for (s, weight) in weights.iter().enumerate() {
                        for i in 0..HEAD_DIM {
                            attended[head * HEAD_DIM + i] += weight / total * values[s][kv + i];
                        }
                    }
                }
                state.iter_mut().zip(apply(&output, &attended)).for_each(|(h, a)| *h += a);
                let normed = norm(state, &self.vector(&name("ffn_norm")));
                let (g, u) = (apply(&gate, &normed), apply(&up, &normed));
                let activated: Vec<f64> = g.iter().zip(&u).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
                state.iter_mut().zip(apply(&down, &activated)).for_each(|(h, d)| *h += d);
            }
        }
        apply(&self.decoded("output.weight"), &norm(hidden.last().unwrap(), &self.vector("output_norm.weight")))
    }
}

impl WeightSource for Synthetic {
    fn matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let (kind, rows, cols, data) = self.matrices.get(name).ok_or_else(|| EngineError::Inference(format!("no {name}")))?;
        QMatrix::from_ggml(*kind, *rows, *cols, data).map_err(EngineError::Inference)
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        self.vectors.get(name).cloned().ok_or_else(|| EngineError::Inference(format!("no {name}")))
    }

    fn has(&self, name: &str) -> bool {
        self.matrices.contains_key(name) || self.vectors.contains_key(name)
    }
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let norm_a = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let norm_b = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm_a * norm_b)
}

#[test]
fn a_qwen2_style_network_matches_the_plain_forward_pass_and_the_test_tells_its_parts_apart() {
    let mut weights = Synthetic::new();
    let mut network = weights.network();
    let tokens = [3, 17, 36, 0, 8, 22, 5, 30, 11];
    // The prompt at once (a batch, with a partial token tile), then one token at a time.
    let batched = network.logits(&tokens, 0).unwrap();
    network.reset();
    network.logits(&tokens[..5], 0).unwrap();
    let mut stepped = Vec::new();
    for (offset, token) in tokens[5..].iter().enumerate() {
        stepped = network.logits(&[*token], 5 + offset).unwrap();
    }
    assert_eq!(batched.len(), VOCABULARY);
    let reference = weights.reference_logits(&tokens, RopeStyle::Halves, true, None);
    for (what, ours) in [("batched", &batched), ("token by token", &stepped)] {
        let similarity = cosine(ours, &reference);
        assert!(similarity > 0.999, "{what}: cosine {similarity}\nours {ours:?}\nreference {reference:?}");
    }
    // The comparison is sharp enough to notice the other rotation style or missing biases.
    for (what, other) in [
        ("adjacent pairs", weights.reference_logits(&tokens, RopeStyle::AdjacentPairs, true, None)),
        ("no biases", weights.reference_logits(&tokens, RopeStyle::Halves, false, None)),
    ] {
        let similarity = cosine(&batched, &other);
        assert!(similarity < 0.99, "{what} gives cosine {similarity}: the test would not notice it");
    }
}

#[test]
fn a_tied_network_uses_the_embeddings_as_its_output() {
    let mut weights = Synthetic::new();
    let embeddings = weights.matrices["token_embd.weight"].clone();
    weights.matrices.insert("output.weight".into(), embeddings);
    let mut separate = weights.network();
    weights.matrices.remove("output.weight");
    let mut tied = weights.network();
    let tokens = [1, 2, 3];
    assert_eq!(tied.logits(&tokens, 0).unwrap(), separate.logits(&tokens, 0).unwrap());
}

/// An adapter with every factor filled by a slow wave, on `targets` of the blocks from `first`.
fn wavy_adapter(targets: &[Projection], first: usize) -> LoraAdapter {
    let mut adapter = LoraAdapter::zeros(Architecture::Qwen2, &Synthetic::shape(RopeStyle::Halves), 4, 8.0, targets, first);
    for (index, (_, _, factors)) in adapter.iter_mut().enumerate() {
        let phase = index as f32;
        factors.a.iter_mut().enumerate().for_each(|(i, v)| *v = 0.2 * (i as f32 * 0.013 + phase).sin());
        factors.b.iter_mut().enumerate().for_each(|(i, v)| *v = 0.2 * (i as f32 * 0.029 + phase).cos());
    }
    adapter
}

#[test]
fn an_unmerged_adapter_computes_what_the_merged_weights_compute() {
    let mut weights = Synthetic::new();
    let adapter = wavy_adapter(&Projection::ALL, 0);
    let mut network = weights.network().with_adapter(&adapter).unwrap();
    let tokens = [3, 17, 36, 0, 8, 22, 5];
    let batched = network.logits(&tokens, 0).unwrap();
    network.reset();
    network.logits(&tokens[..4], 0).unwrap();
    let mut stepped = Vec::new();
    for (offset, token) in tokens[4..].iter().enumerate() {
        stepped = network.logits(&[*token], 4 + offset).unwrap();
    }
    let merged = weights.reference_logits(&tokens, RopeStyle::Halves, true, Some(&adapter));
    let base = weights.reference_logits(&tokens, RopeStyle::Halves, true, None);
    for (what, ours) in [("batched", &batched), ("token by token", &stepped)] {
        let similarity = cosine(ours, &merged);
        assert!(similarity > 0.999, "{what}: cosine {similarity} with the merged weights");
    }
    let apart = cosine(&batched, &base);
    assert!(apart < 0.99, "the adapter changes the logits enough for the test to see it: cosine {apart}");
    // One projection of one block only: still exact, and another projection's factors are not used.
    let single = wavy_adapter(&[Projection::Down], 1);
    let mut network = weights.network().with_adapter(&single).unwrap();
    let logits = network.logits(&tokens, 0).unwrap();
    assert!(cosine(&logits, &weights.reference_logits(&tokens, RopeStyle::Halves, true, Some(&single))) > 0.999);
}

#[test]
fn an_adapter_for_another_shape_is_refused() {
    let mut weights = Synthetic::new();
    let mut adapter = wavy_adapter(&[Projection::Query], 0);
    adapter.blocks.pop();
    let error = weights.network().with_adapter(&adapter).err().unwrap();
    assert!(error.contains("1 blocks, the model 2"), "{error}");
    let mut other = LoraAdapter::zeros(Architecture::Llama, &Synthetic::shape(RopeStyle::Halves), 4, 8.0, &[Projection::Query], 0);
    assert!(weights.network().with_adapter(&other).err().unwrap().contains("llama"));
    other.architecture = Architecture::Qwen2;
    other.blocks[0][0].as_mut().unwrap().input = 128;
    assert!(weights.network().with_adapter(&other).err().unwrap().contains("256x128"));
}
