//! A small network of made-up weights for the tests: every matrix Q8_0 from pseudo-random
//! values (full rank, as trained weights are; a smooth pattern would make every product a sum
//! of cancelling terms), different per tensor.

use std::collections::HashMap;

use ibert_model::EngineError;
use ibert_model::adapter::LoraAdapter;
use ibert_model::architecture::{Architecture, Projection, Shape, gguf_tensor};
use ibert_model::native::ops::RopeStyle;
use ibert_model::native::quant::QMatrix;
use ibert_model::native::{DecoderWeights, WeightSource};

pub const VOCABULARY: usize = 64;

pub fn shape(blocks: usize) -> Shape {
    Shape { width: 64, heads: 4, kv_heads: 2, head_dim: 16, rope_dims: 16, rope_base: 10_000.0, rope_style: RopeStyle::Halves, epsilon: 1e-5, blocks, ffn: 96 }
}

/// `count` values uniform in `[-amplitude, amplitude)`, fixed by `seed`.
pub fn wavy(count: usize, seed: f32, amplitude: f32) -> Vec<f32> {
    let seed = u64::from(seed.to_bits()) << 32;
    (0..count).map(|i| amplitude * ((crate::network::split_mix(seed ^ i as u64) >> 40) as f32 / (1u64 << 23) as f32 - 1.0)).collect()
}

struct Source {
    matrices: HashMap<String, (usize, usize, Vec<f32>)>,
    vectors: HashMap<String, Vec<f32>>,
}

impl WeightSource for Source {
    fn matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let (rows, cols, values) = self.matrices.get(name).ok_or_else(|| EngineError::Load(format!("no {name}")))?;
        QMatrix::quantize_q8_0(*rows, *cols, values).map_err(EngineError::Load)
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        self.vectors.get(name).cloned().ok_or_else(|| EngineError::Load(format!("no {name}")))
    }

    fn has(&self, name: &str) -> bool {
        self.matrices.contains_key(name) || self.vectors.contains_key(name)
    }
}

/// A qwen2-style network (biases on query, key and value), untied output.
pub fn weights(blocks: usize) -> DecoderWeights {
    let shape = shape(blocks);
    let mut source = Source { matrices: HashMap::new(), vectors: HashMap::new() };
    let mut seed = 0.0;
    let mut next = || {
        seed += 1.0;
        seed
    };
    for block in 0..blocks {
        for projection in Projection::ALL {
            let (rows, cols) = shape.projection(projection);
            source.matrices.insert(gguf_tensor(block, projection), (rows, cols, wavy(rows * cols, next(), 0.25)));
        }
        for norm in ["attn_norm", "ffn_norm"] {
            source.vectors.insert(format!("blk.{block}.{norm}.weight"), wavy(shape.width, next(), 0.2).iter().map(|v| 1.0 + v).collect());
        }
        let kv = shape.kv_heads * shape.head_dim;
        for (part, size) in [("attn_q", shape.width), ("attn_k", kv), ("attn_v", kv)] {
            source.vectors.insert(format!("blk.{block}.{part}.bias"), wavy(size, next(), 0.1));
        }
    }
    source.matrices.insert("token_embd.weight".into(), (VOCABULARY, shape.width, wavy(VOCABULARY * shape.width, next(), 1.0)));
    source.matrices.insert("output.weight".into(), (VOCABULARY, shape.width, wavy(VOCABULARY * shape.width, next(), 0.5)));
    source.vectors.insert("output_norm.weight".into(), vec![1.0; shape.width]);
    DecoderWeights::build(Architecture::Qwen2, shape, &mut source).expect("the synthetic weights fit their shape")
}

/// An adapter with small non-zero factors on `targets` of every block.
pub fn adapter(blocks: usize, targets: &[Projection], first_block: usize) -> LoraAdapter {
    let mut adapter = LoraAdapter::zeros(Architecture::Qwen2, &shape(blocks), 4, 8.0, targets, first_block);
    for (index, (_, _, factors)) in adapter.iter_mut().enumerate() {
        factors.a = wavy(factors.a.len(), 100.0 + index as f32, 0.2);
        factors.b = wavy(factors.b.len(), 200.0 + index as f32, 0.2);
    }
    adapter
}
