//! Our own CPU inference for llama and qwen2 GGUF models whose matrices are Q4_0, Q4_1, Q5_0,
//! Q8_0, Q4_K or Q6_K (the default model is Q4_1; Qwen2.5-Coder files mix Q5_0, Q8_0, Q4_K and
//! Q6_K).
//!
//! Why it exists: candle has no vectorized Q4_1 kernel and, in a build without `target-cpu`
//! flags, no vectorized kernel at all, which left it at a quarter of llama.cpp's speed on the
//! default model. Here the weights are repacked at load into panels of eight rows ([`quant`]),
//! the block kernels are picked at run time, the projections of one input run as one parallel
//! product, and the prompt is processed as a batch. Files this module cannot serve (other
//! architectures or block types) go to the candle backend.
//!
//! qwen2 differs from llama in three ways this module follows: the query, key and value
//! projections have biases, the rotary embedding turns the two halves of each head (GGUF llama
//! files instead store their query and key rows permuted for adjacent pairs), and the metadata
//! keys start with `qwen2.`.

mod ggml;
#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod model_tests;
pub mod ops;
pub mod panel_cache;
mod portable;
pub mod quant;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fs::File;

use half::f16;

use crate::decoder::Forward;
use crate::engine::EngineError;
use crate::gguf::{Gguf, TensorInfo};
pub use ggml::type_name;
use panel_cache::PanelCache;
use quant::{GGML_F16, GGML_F32, QActivations, QMatrix, QuantKind};

/// Whether this backend reads tensors of this ggml type (as vectors or matrices).
pub fn reads_type(kind: u32) -> bool {
    [GGML_F32, GGML_F16].contains(&kind) || QuantKind::from_ggml(kind).is_some()
}

/// The architectures this backend runs, and the rotary style of their GGUF files.
const ARCHITECTURES: [(&str, ops::RopeStyle); 2] = [("llama", ops::RopeStyle::AdjacentPairs), ("qwen2", ops::RopeStyle::Halves)];

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

    /// A matrix whose rows are read one at a time when needed, if this source can serve it so
    /// (the token embeddings of a GGUF file); `None` loads it with [`WeightSource::matrix`].
    fn rows(&mut self, _name: &str) -> Result<Option<FileRows>, EngineError> {
        Ok(None)
    }
}

/// The rows of a matrix left in a file in their block format, each read and decoded when asked
/// for. The token embeddings take this form when the output does not share them: a prompt needs
/// a few of their rows, and the whole table (100 MB and more for a vocabulary of 150 000) would
/// otherwise sit in memory.
pub struct FileRows {
    file: File,
    path: std::path::PathBuf,
    /// Where the first row starts in the file.
    start: u64,
    kind: QuantKind,
    rows: usize,
    cols: usize,
}

impl FileRows {
    fn read(&self, row: usize, out: &mut [f32]) -> Result<(), EngineError> {
        let row_bytes = self.kind.row_bytes(self.cols).unwrap_or(0);
        let mut data = vec![0; row_bytes];
        read_exact_at(&self.file, &mut data, self.start + (row * row_bytes) as u64)
            .map_err(|error| EngineError::Inference(format!("reading embedding row {row} of {}: {error}", self.path.display())))?;
        ggml::dequantize(self.kind, &data, &mut out[..self.cols]);
        Ok(())
    }
}

/// The token embeddings: the output matrix (tied), a matrix of their own, or rows in the file.
enum Embeddings {
    Output,
    Matrix(QMatrix),
    File(FileRows),
}

struct Layer {
    attention_norm: Vec<f32>,
    /// Query, key and value projections, in that order.
    qkv: [QMatrix; 3],
    /// Their biases (qwen2), side by side as the projections come out.
    qkv_bias: Option<Vec<f32>>,
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
    embeddings: Embeddings,
    /// `output.weight`, or the embeddings when the file ties them.
    output: QMatrix,
    output_norm: Vec<f32>,
    layers: Vec<Layer>,
    cache: Vec<LayerCache>,
    rope: ops::RopeTable,
}

impl NativeLlama {
    /// Why this backend cannot run `header`'s model, or `None` when it can.
    pub fn unsupported_reason(header: &Gguf) -> Option<String> {
        let architecture = header.architecture().unwrap_or("unknown");
        if !ARCHITECTURES.iter().any(|(name, _)| *name == architecture) {
            return Some(format!("architecture `{architecture}`"));
        }
        for tensor in &header.tensors {
            let is_vector = tensor.dimensions.len() == 1;
            let known = if is_vector { [GGML_F32, GGML_F16].contains(&tensor.kind) } else { QuantKind::from_ggml(tensor.kind).is_some() };
            if !known {
                return Some(format!("tensor `{}` of type {}", tensor.name, type_name(tensor.kind)));
            }
            let is_projection_bias = ["attn_q.bias", "attn_k.bias", "attn_v.bias"].iter().any(|part| tensor.name.ends_with(part));
            if tensor.name == "rope_freqs.weight" || (tensor.name.ends_with(".bias") && !is_projection_bias) {
                return Some(format!("tensor `{}`", tensor.name));
            }
        }
        None
    }

    /// The network of a GGUF file, with its panel file in iBERT's cache ([`panel_cache`]).
    pub fn load(header: &Gguf) -> Result<NativeLlama, EngineError> {
        let cache = PanelCache::default_dir().and_then(|dir| PanelCache::for_file(&header.path, &dir));
        NativeLlama::load_with(header, cache.as_ref())
    }

    /// The network of a GGUF file: matrices from its panel file in `cache` where it has them,
    /// else repacked from the GGUF file (and then written to `cache` for next time).
    pub fn load_with(header: &Gguf, cache: Option<&PanelCache>) -> Result<NativeLlama, EngineError> {
        let path = &header.path;
        let fail = |what: String| EngineError::Inference(format!("loading {}: {what}", path.display()));
        let architecture = header.architecture().unwrap_or("unknown");
        let rope_style = ARCHITECTURES
            .iter()
            .find(|(name, _)| *name == architecture)
            .map(|(_, style)| *style)
            .ok_or_else(|| EngineError::Architecture { path: path.display().to_string(), architecture: architecture.to_string() })?;
        let required =
            |key: &str| header.architecture_integer(key).map(|v| v as usize).ok_or_else(|| fail(format!("the metadata has no {architecture}.{key}")));
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
            rope_style,
            epsilon: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            blocks: required("block_count")?,
        };
        NativeLlama::from_file(header, shape, cache).map_err(|error| match error {
            EngineError::Inference(what) => fail(what),
            other => other,
        })
    }

    fn from_file(header: &Gguf, shape: Shape, cache: Option<&PanelCache>) -> Result<NativeLlama, EngineError> {
        let file = File::open(&header.path).map_err(|error| EngineError::Inference(error.to_string()))?;
        let mut reader = TensorReader { file, header, panels: cache.and_then(PanelCache::open), repacked: 0 };
        let network = NativeLlama::build(shape, &mut reader)?;
        if let Some(cache) = cache.filter(|_| reader.repacked > 0) {
            // A cache that cannot be written (a full or read-only disk) only means repacking again
            // next time.
            let _ = cache.write(&network.named_matrices());
        }
        Ok(network)
    }

    /// The logits after `tokens`, from an empty cache (to compare networks).
    pub fn logits_from_start(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.reset();
        self.logits(tokens, 0)
    }

    /// Every matrix by its GGUF name (for the panel file).
    fn named_matrices(&self) -> Vec<(String, &QMatrix)> {
        let mut named = Vec::new();
        for (block, layer) in self.layers.iter().enumerate() {
            let parts = [&layer.qkv[0], &layer.qkv[1], &layer.qkv[2], &layer.attention_output, &layer.gate_up[0], &layer.gate_up[1], &layer.down];
            for (part, matrix) in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].iter().zip(parts) {
                named.push((format!("blk.{block}.{part}.weight"), matrix));
            }
        }
        let output = if matches!(self.embeddings, Embeddings::Output) { "token_embd.weight" } else { "output.weight" };
        named.push((output.to_string(), &self.output));
        named
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
            let bias = |part: &str| format!("blk.{block}.{part}.bias");
            let qkv_bias = if weights.has(&bias("attn_q")) {
                let mut joined = weights.vector(&bias("attn_q"))?;
                joined.extend(weights.vector(&bias("attn_k"))?);
                joined.extend(weights.vector(&bias("attn_v"))?);
                Some(joined)
            } else {
                None
            };
            layers.push(Layer {
                attention_norm: weights.vector(&name("attn_norm"))?,
                qkv: [weights.matrix(&name("attn_q"))?, weights.matrix(&name("attn_k"))?, weights.matrix(&name("attn_v"))?],
                qkv_bias,
                attention_output: weights.matrix(&name("attn_output"))?,
                ffn_norm: weights.vector(&name("ffn_norm"))?,
                gate_up: [weights.matrix(&name("ffn_gate"))?, weights.matrix(&name("ffn_up"))?],
                down: weights.matrix(&name("ffn_down"))?,
            });
        }
        let (output, embeddings) = if weights.has("output.weight") {
            let embeddings = match weights.rows("token_embd.weight")? {
                Some(rows) => Embeddings::File(rows),
                None => Embeddings::Matrix(weights.matrix("token_embd.weight")?),
            };
            (weights.matrix("output.weight")?, embeddings)
        } else {
            (weights.matrix("token_embd.weight")?, Embeddings::Output)
        };
        let output_norm = weights.vector("output_norm.weight")?;
        let embedding_shape = match &embeddings {
            Embeddings::Output => (output.rows, output.cols),
            Embeddings::Matrix(matrix) => (matrix.rows, matrix.cols),
            Embeddings::File(rows) => (rows.rows, rows.cols),
        };
        check_shapes(&shape, &layers, embedding_shape, &output, &output_norm)?;
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
        let mut qkv = ops::matmul(&[&layer.qkv[0], &layer.qkv[1], &layer.qkv[2]], scratch, tokens);
        let row = width + 2 * kv_width;
        if let Some(bias) = &layer.qkv_bias {
            qkv.chunks_exact_mut(row).for_each(|values| ops::add(values, bias));
        }
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
        let activated = ops::swiglu(&gate_up, ffn);
        scratch.quantize(&activated, ffn);
        let down = ops::matmul(&[&layer.down], scratch, tokens);
        ops::add(hidden, &down);
    }
}

/// Every matrix and vector has the size the shape implies, so a bad file is refused at load and
/// not computed on.
fn check_shapes(shape: &Shape, layers: &[Layer], embeddings: (usize, usize), output: &QMatrix, output_norm: &[f32]) -> Result<(), EngineError> {
    let (width, kv_width) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
    let bad = |what: String| Err(EngineError::Inference(format!("the weights do not fit the model's shape: {what}")));
    if width != shape.width || embeddings.1 != width || output_norm.len() != width || output.cols != width || output.rows != embeddings.0 {
        return bad(format!("width {}, embeddings {}x{}, output {}x{}", shape.width, embeddings.0, embeddings.1, output.rows, output.cols));
    }
    for (index, layer) in layers.iter().enumerate() {
        let ffn = layer.gate_up[0].rows;
        let fits = layer.attention_norm.len() == width
            && layer.ffn_norm.len() == width
            && layer.qkv_bias.as_ref().is_none_or(|bias| bias.len() == width + 2 * kv_width)
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

    fn truncate(&mut self, positions: usize) -> bool {
        let kv_width = self.shape.kv_heads * self.shape.head_dim;
        for cache in &mut self.cache {
            cache.keys.truncate(positions * kv_width);
            cache.values.truncate(positions * kv_width);
        }
        true
    }

    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::Inference("no tokens to run".to_string()));
        }
        let width = self.shape.width;
        let vocabulary = self.output.rows;
        let mut hidden = vec![0.0; tokens.len() * width];
        for (token, row) in tokens.iter().zip(hidden.chunks_exact_mut(width)) {
            if *token as usize >= vocabulary {
                return Err(EngineError::Inference(format!("token {token} is outside the vocabulary of {vocabulary}")));
            }
            match &self.embeddings {
                Embeddings::Output => self.output.dequantize_row(*token as usize, row),
                Embeddings::Matrix(matrix) => matrix.dequantize_row(*token as usize, row),
                Embeddings::File(rows) => rows.read(*token as usize, row)?,
            }
        }
        let mut scratch = QActivations::default();
        for index in 0..self.layers.len() {
            self.block(index, &mut hidden, tokens.len(), position, &mut scratch);
        }
        // Only the last position's logits are needed to pick the next token.
        let last = &hidden[hidden.len() - width..];
        scratch.quantize(&ops::rms_norm(last, &self.output_norm, self.shape.epsilon), width);
        Ok(ops::matmul(&[&self.output], &scratch, 1))
    }
}

/// Reads tensors by name from the data section of a GGUF file, or takes matrices from its panel
/// file when one is mapped.
struct TensorReader<'a> {
    file: File,
    header: &'a Gguf,
    panels: Option<panel_cache::MappedPanels>,
    /// Matrices repacked from the GGUF file (not found in the panel file).
    repacked: usize,
}

impl WeightSource for TensorReader<'_> {
    fn matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let info = self.info(name)?;
        if let (Some(panels), Some(kind), &[cols, rows]) = (&self.panels, QuantKind::from_ggml(info.kind), &info.dimensions[..])
            && let Some(matrix) = panels.matrix(name, kind, rows as usize, cols as usize)
        {
            return Ok(matrix);
        }
        self.repacked += 1;
        self.read_matrix(name)
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        self.read_vector(name)
    }

    fn has(&self, name: &str) -> bool {
        self.header.tensors.iter().any(|t| t.name == name)
    }

    fn rows(&mut self, name: &str) -> Result<Option<FileRows>, EngineError> {
        let info = self.info(name)?;
        let (Some(kind), &[cols, rows]) = (QuantKind::from_ggml(info.kind), &info.dimensions[..]) else {
            return Ok(None);
        };
        let (cols, rows) = (cols as usize, rows as usize);
        let row_bytes = kind.row_bytes(cols).ok_or_else(|| EngineError::Inference(format!("tensor {name}: {cols} columns are not whole {kind:?} blocks")))?;
        self.checked_size(name, rows.checked_mul(row_bytes))?;
        let path = self.header.path.clone();
        let file = self.file.try_clone().map_err(|error| EngineError::Inference(format!("opening {} again: {error}", path.display())))?;
        Ok(Some(FileRows { file, path, start: self.header.data_offset + info.offset, kind, rows, cols }))
    }
}

impl<'a> TensorReader<'a> {
    /// Fills `buffer` from byte `at` of tensor `name`'s data.
    fn read_at(&self, name: &str, at: u64, buffer: &mut [u8]) -> Result<(), String> {
        let header = self.header;
        let tensor = self.info(name).map_err(|error| error.to_string())?;
        let start = header.data_offset + tensor.offset + at;
        read_exact_at(&self.file, buffer, start).map_err(|error| format!("reading tensor {name} of {}: {error}", header.path.display()))
    }

    fn info(&self, name: &str) -> Result<&'a TensorInfo, EngineError> {
        self.header
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| EngineError::Inference(format!("{} has no tensor {name}", self.header.path.display())))
    }

    /// The tensor's size in bytes, checked to lie inside the file.
    fn checked_size(&self, name: &str, size: Option<usize>) -> Result<usize, EngineError> {
        let info = self.info(name)?;
        let end = size.and_then(|size| (self.header.data_offset + info.offset).checked_add(size as u64));
        match (size, end) {
            (Some(size), Some(end)) if end <= self.header.file_size => Ok(size),
            _ => Err(EngineError::Inference(format!("tensor {name} is larger than the file"))),
        }
    }

    fn read_matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let info = self.info(name)?;
        let (cols, rows) = match info.dimensions[..] {
            [cols, rows] => (cols as usize, rows as usize),
            _ => return Err(EngineError::Inference(format!("tensor {name} has {} dimensions, not 2", info.dimensions.len()))),
        };
        let kind = QuantKind::from_ggml(info.kind)
            .ok_or_else(|| EngineError::Inference(format!("tensor {name} has the type {}, which the native backend does not read", type_name(info.kind))))?;
        let row_bytes = kind.row_bytes(cols).ok_or_else(|| EngineError::Inference(format!("tensor {name}: {cols} columns are not whole {kind:?} blocks")))?;
        self.checked_size(name, rows.checked_mul(row_bytes))?;
        let read = |first: usize, buffer: &mut [u8]| self.read_at(name, (first * row_bytes) as u64, buffer);
        QMatrix::from_rows(kind, rows, cols, &read).map_err(|error| EngineError::Inference(format!("tensor {name}: {error}")))
    }

    fn read_vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        let info = self.info(name)?;
        let (length, kind) = (info.dimensions.iter().product::<u64>() as usize, info.kind);
        let element = match kind {
            GGML_F32 => 4,
            GGML_F16 => 2,
            other => return Err(EngineError::Inference(format!("tensor {name} has the type {}, not F32 or F16", type_name(other)))),
        };
        let mut data = vec![0; self.checked_size(name, length.checked_mul(element))?];
        self.read_at(name, 0, &mut data).map_err(EngineError::Inference)?;
        Ok(match kind {
            GGML_F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            _ => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        })
    }
}

/// A positioned read (several threads read one file at once).
#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buffer.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buffer, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            read => {
                buffer = &mut buffer[read..];
                offset += read as u64;
            }
        }
    }
    Ok(())
}
