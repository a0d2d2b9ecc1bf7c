//! Our own CPU inference for llama-architecture GGUF models whose matrices are Q4_0, Q4_1 or Q8_0
//! (the default model is Q4_1).
//!
//! Why it exists: candle has no vectorized Q4_1 kernel and, in a build without `target-cpu`
//! flags, no vectorized kernel at all, which left it at a quarter of llama.cpp's speed on the
//! default model. Here the block kernels are picked at run time ([`quant`]), the projections of
//! one input run as one parallel product, and the prompt is processed as a batch. Files this
//! module cannot serve (other architectures or block types) go to the candle backend.

pub mod ops;
pub mod quant;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use half::f16;

use crate::decoder::Forward;
use crate::engine::EngineError;
use crate::gguf::{Gguf, TensorInfo};
use quant::{GGML_F16, GGML_F32, QActivations, QMatrix, QuantKind};

/// The shape of the network, from GGUF metadata or a Hugging Face `config.json`.
#[derive(Debug, Clone)]
pub struct Shape {
    pub width: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_dims: usize,
    pub rope_base: f32,
    pub rope_style: ops::RopeStyle,
    pub epsilon: f32,
    pub blocks: usize,
}

/// Where the weights come from, by their GGUF names (`blk.0.attn_q.weight`).
pub trait WeightSource {
    fn matrix(&mut self, name: &str) -> Result<QMatrix, EngineError>;
    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError>;
    fn has(&self, name: &str) -> bool;
}

struct Layer {
    attention_norm: Vec<f32>,
    /// Query, key and value projections, in that order.
    qkv: [QMatrix; 3],
    attention_output: QMatrix,
    ffn_norm: Vec<f32>,
    /// Gate and up projections.
    gate_up: [QMatrix; 2],
    down: QMatrix,
}

/// Keys and values of the positions seen so far, `position x kv_heads x head_dim`.
#[derive(Default)]
struct LayerCache {
    keys: Vec<f32>,
    values: Vec<f32>,
}

pub struct NativeLlama {
    shape: Shape,
    embeddings: QMatrix,
    /// `output.weight`, or the embeddings when the file ties them.
    output: Option<QMatrix>,
    output_norm: Vec<f32>,
    layers: Vec<Layer>,
    cache: Vec<LayerCache>,
    rope: ops::RopeTable,
}

impl NativeLlama {
    /// Why this backend cannot run `header`'s model, or `None` when it can.
    pub fn unsupported_reason(header: &Gguf) -> Option<String> {
        if header.architecture() != Some("llama") {
            return Some(format!("architecture {}", header.architecture().unwrap_or("unknown")));
        }
        for tensor in &header.tensors {
            let is_vector = tensor.dimensions.len() == 1;
            let known = if is_vector { [GGML_F32, GGML_F16].contains(&tensor.kind) } else { QuantKind::from_ggml(tensor.kind).is_some() };
            if !known {
                return Some(format!("tensor {} of ggml type {}", tensor.name, tensor.kind));
            }
            if tensor.name == "rope_freqs.weight" || tensor.name.ends_with(".bias") {
                return Some(format!("tensor {}", tensor.name));
            }
        }
        None
    }

    pub fn load(header: &Gguf) -> Result<NativeLlama, EngineError> {
        let path = &header.path;
        let fail = |what: String| EngineError::Inference(format!("loading {}: {what}", path.display()));
        let required = |key: &str| header.architecture_integer(key).map(|v| v as usize).ok_or_else(|| fail(format!("the metadata has no llama.{key}")));
        let width = required("embedding_length")?;
        let heads = required("attention.head_count")?;
        let kv_heads = header.architecture_integer("attention.head_count_kv").map_or(heads, |v| v as usize);
        let float = |key: &str| header.architecture_float(key).map(|v| v as f32);
        let head_dim = width.checked_div(heads).unwrap_or(0);
        let shape = Shape {
            width,
            heads,
            kv_heads,
            head_dim,
            rope_dims: header.architecture_integer("rope.dimension_count").map_or(head_dim, |v| v as usize).min(head_dim),
            rope_base: float("rope.freq_base").unwrap_or(10_000.0),
            // GGUF llama files store the query and key rows permuted for adjacent-pair rotation.
            rope_style: ops::RopeStyle::AdjacentPairs,
            epsilon: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            blocks: required("block_count")?,
        };
        let mut reader = TensorReader { file: File::open(path).map_err(|e| fail(e.to_string()))?, header };
        NativeLlama::build(shape, &mut reader).map_err(|error| match error {
            EngineError::Inference(what) => fail(what),
            other => other,
        })
    }

    /// The network from any weight source.
    pub fn build(shape: Shape, weights: &mut dyn WeightSource) -> Result<NativeLlama, EngineError> {
        let Shape { width, heads, kv_heads, .. } = shape;
        if heads == 0 || kv_heads == 0 || width % heads != 0 || heads % kv_heads != 0 {
            return Err(EngineError::Inference(format!("{heads} heads and {kv_heads} key/value heads do not divide a width of {width}")));
        }
        let mut layers = Vec::with_capacity(shape.blocks);
        for block in 0..shape.blocks {
            let name = |part: &str| format!("blk.{block}.{part}.weight");
            layers.push(Layer {
                attention_norm: weights.vector(&name("attn_norm"))?,
                qkv: [weights.matrix(&name("attn_q"))?, weights.matrix(&name("attn_k"))?, weights.matrix(&name("attn_v"))?],
                attention_output: weights.matrix(&name("attn_output"))?,
                ffn_norm: weights.vector(&name("ffn_norm"))?,
                gate_up: [weights.matrix(&name("ffn_gate"))?, weights.matrix(&name("ffn_up"))?],
                down: weights.matrix(&name("ffn_down"))?,
            });
        }
        let embeddings = weights.matrix("token_embd.weight")?;
        let output = if weights.has("output.weight") { Some(weights.matrix("output.weight")?) } else { None };
        let output_norm = weights.vector("output_norm.weight")?;
        check_shapes(&shape, &layers, &embeddings, output.as_ref(), &output_norm)?;
        let cache = (0..shape.blocks).map(|_| LayerCache::default()).collect();
        let rope = ops::RopeTable::new(shape.rope_dims, shape.rope_base, shape.rope_style);
        Ok(NativeLlama { shape, embeddings, output, output_norm, layers, cache, rope })
    }

    /// One transformer block over the `tokens` rows of `hidden` at `position` onwards.
    fn block(&mut self, index: usize, hidden: &mut [f32], tokens: usize, position: usize, scratch: &mut QActivations) {
        let Shape { width, heads, kv_heads, head_dim, epsilon, .. } = self.shape;
        let kv_width = kv_heads * head_dim;
        let layer = &self.layers[index];
        let normed = ops::rms_norm(hidden, &layer.attention_norm, epsilon);
        scratch.quantize(&normed, width);
        let qkv = ops::matmul(&[&layer.qkv[0], &layer.qkv[1], &layer.qkv[2]], scratch, tokens);
        let row = width + 2 * kv_width;
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
        let projected = ops::matmul(&[&layer.attention_output], scratch, tokens);
        ops::add(hidden, &projected);

        let normed = ops::rms_norm(hidden, &layer.ffn_norm, epsilon);
        scratch.quantize(&normed, width);
        let gate_up = ops::matmul(&[&layer.gate_up[0], &layer.gate_up[1]], scratch, tokens);
        let ffn = layer.gate_up[0].rows;
        let activated: Vec<f32> = gate_up.chunks_exact(2 * ffn).flat_map(|row| ops::swiglu(&row[..ffn], &row[ffn..])).collect();
        scratch.quantize(&activated, ffn);
        let down = ops::matmul(&[&layer.down], scratch, tokens);
        ops::add(hidden, &down);
    }
}

/// Every matrix and vector has the size the shape implies, so a bad file is refused at load and
/// not computed on.
fn check_shapes(shape: &Shape, layers: &[Layer], embeddings: &QMatrix, output: Option<&QMatrix>, output_norm: &[f32]) -> Result<(), EngineError> {
    let (width, kv_width) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
    let bad = |what: String| Err(EngineError::Inference(format!("the weights do not fit the model's shape: {what}")));
    if width != shape.width || embeddings.cols != width || output_norm.len() != width || output.is_some_and(|o| o.cols != width || o.rows != embeddings.rows) {
        return bad(format!("width {}, embeddings {}x{}", shape.width, embeddings.rows, embeddings.cols));
    }
    for (index, layer) in layers.iter().enumerate() {
        let ffn = layer.gate_up[0].rows;
        let fits = layer.attention_norm.len() == width
            && layer.ffn_norm.len() == width
            && [(&layer.qkv[0], width), (&layer.qkv[1], kv_width), (&layer.qkv[2], kv_width), (&layer.attention_output, width)]
                .iter()
                .all(|(m, rows)| m.rows == *rows && m.cols == width)
            && layer.gate_up[1].rows == ffn
            && layer.gate_up.iter().all(|m| m.cols == width)
            && layer.down.rows == width
            && layer.down.cols == ffn;
        if !fits {
            return bad(format!("block {index}"));
        }
    }
    Ok(())
}

impl Forward for NativeLlama {
    fn reset(&mut self) {
        for cache in &mut self.cache {
            cache.keys.clear();
            cache.values.clear();
        }
    }

    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::Inference("no tokens to run".to_string()));
        }
        let width = self.shape.width;
        let vocabulary = self.embeddings.rows;
        let mut hidden = vec![0.0; tokens.len() * width];
        for (token, row) in tokens.iter().zip(hidden.chunks_exact_mut(width)) {
            if *token as usize >= vocabulary {
                return Err(EngineError::Inference(format!("token {token} is outside the vocabulary of {vocabulary}")));
            }
            self.embeddings.dequantize_row(*token as usize, row);
        }
        let mut scratch = QActivations::default();
        for index in 0..self.layers.len() {
            self.block(index, &mut hidden, tokens.len(), position, &mut scratch);
        }
        // Only the last position's logits are needed to pick the next token.
        let last = &hidden[hidden.len() - width..];
        scratch.quantize(&ops::rms_norm(last, &self.output_norm, self.shape.epsilon), width);
        Ok(ops::matmul(&[self.output.as_ref().unwrap_or(&self.embeddings)], &scratch, 1))
    }
}

/// Reads tensors by name from the data section of a GGUF file.
struct TensorReader<'a> {
    file: File,
    header: &'a Gguf,
}

impl WeightSource for TensorReader<'_> {
    fn matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        self.read_matrix(name)
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        self.read_vector(name)
    }

    fn has(&self, name: &str) -> bool {
        self.header.tensors.iter().any(|t| t.name == name)
    }
}

impl<'a> TensorReader<'a> {
    fn read(&mut self, name: &str, bytes: usize) -> Result<Vec<u8>, EngineError> {
        let header = self.header;
        let tensor = self.info(name)?;
        let mut data = vec![0; bytes];
        self.file
            .seek(SeekFrom::Start(header.data_offset + tensor.offset))
            .and_then(|_| self.file.read_exact(&mut data))
            .map_err(|error| EngineError::Inference(format!("reading tensor {name} of {}: {error}", header.path.display())))?;
        Ok(data)
    }

    fn info(&self, name: &str) -> Result<&'a TensorInfo, EngineError> {
        self.header
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| EngineError::Inference(format!("{} has no tensor {name}", self.header.path.display())))
    }

    fn read_matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let info = self.info(name)?;
        let (cols, rows) = match info.dimensions[..] {
            [cols, rows] => (cols as usize, rows as usize),
            _ => return Err(EngineError::Inference(format!("tensor {name} has {} dimensions, not 2", info.dimensions.len()))),
        };
        let kind = QuantKind::from_ggml(info.kind).ok_or_else(|| EngineError::Inference(format!("tensor {name} has ggml type {}", info.kind)))?;
        let bytes = (rows.checked_mul(cols).map(|n| n / quant::BLOCK)).and_then(|blocks| blocks.checked_mul(kind.block_bytes()));
        let bytes =
            bytes.filter(|b| (*b as u64) <= self.header.file_size).ok_or_else(|| EngineError::Inference(format!("tensor {name} is larger than the file")))?;
        let data = self.read(name, bytes)?;
        QMatrix::from_ggml(kind, rows, cols, &data).map_err(|error| EngineError::Inference(format!("tensor {name}: {error}")))
    }

    fn read_vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        let info = self.info(name)?;
        let (length, kind) = (info.dimensions.iter().product::<u64>() as usize, info.kind);
        if length as u64 > self.header.file_size {
            return Err(EngineError::Inference(format!("tensor {name} is larger than the file")));
        }
        match kind {
            GGML_F32 => Ok(self.read(name, length * 4)?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            GGML_F16 => Ok(self.read(name, length * 2)?.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
            other => Err(EngineError::Inference(format!("tensor {name} has ggml type {other}, not F32 or F16"))),
        }
    }
}
