//! The weights of a llama or qwen2 network in the native backend's form: matrices repacked into
//! panels ([`QMatrix`]), norms and biases as floats. Built from any [`WeightSource`] (a GGUF
//! file through [`GgufTensors`], a Hugging Face folder quantized at load), checked against the
//! shape, and shared by inference ([`super::NativeDecoder`]) and training (`ibert-train`).

use std::fs::File;

use half::f16;

use super::ggml::{self, type_name};
use super::panel_cache::{self, PanelCache};
use super::quant::{GGML_F16, GGML_F32, QMatrix, QuantKind};
use crate::architecture::{Architecture, Projection, Shape, gguf_tensor};
use crate::engine::EngineError;
use crate::gguf::{Gguf, TensorInfo};

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
pub enum Embeddings {
    Output,
    Matrix(QMatrix),
    File(FileRows),
}

/// One block's weights.
pub struct LayerWeights {
    pub attention_norm: Vec<f32>,
    /// Query, key and value projections, in that order.
    pub qkv: [QMatrix; 3],
    /// Their biases (qwen2), side by side as the projections come out.
    pub qkv_bias: Option<Vec<f32>>,
    pub attention_output: QMatrix,
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections.
    pub gate_up: [QMatrix; 2],
    pub down: QMatrix,
}

impl LayerWeights {
    pub fn projection(&self, projection: Projection) -> &QMatrix {
        match projection {
            Projection::Query => &self.qkv[0],
            Projection::Key => &self.qkv[1],
            Projection::Value => &self.qkv[2],
            Projection::Output => &self.attention_output,
            Projection::Gate => &self.gate_up[0],
            Projection::Up => &self.gate_up[1],
            Projection::Down => &self.down,
        }
    }
}

/// A whole network's weights.
pub struct DecoderWeights {
    pub architecture: Architecture,
    pub shape: Shape,
    pub layers: Vec<LayerWeights>,
    pub embeddings: Embeddings,
    /// `output.weight`, or the embeddings when the file ties them.
    pub output: QMatrix,
    pub output_norm: Vec<f32>,
}

impl DecoderWeights {
    /// Why the native backend cannot run `header`'s model, or `None` when it can.
    pub fn unsupported_reason(header: &Gguf) -> Option<String> {
        let architecture = header.architecture().unwrap_or("unknown");
        if Architecture::from_name(architecture).is_none() {
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

    /// The weights of a GGUF file, with its panel file in iBERT's cache ([`panel_cache`]).
    pub fn load(header: &Gguf) -> Result<DecoderWeights, EngineError> {
        let cache = PanelCache::default_dir().and_then(|dir| PanelCache::for_file(&header.path, &dir));
        DecoderWeights::load_with(header, cache.as_ref())
    }

    /// The weights of a GGUF file: matrices from its panel file in `cache` where it has them,
    /// else repacked from the GGUF file (and then written to `cache` for next time).
    pub fn load_with(header: &Gguf, cache: Option<&PanelCache>) -> Result<DecoderWeights, EngineError> {
        let (architecture, shape) = Shape::from_gguf(header)?;
        let file = File::open(&header.path).map_err(|error| EngineError::Load(format!("opening {}: {error}", header.path.display())))?;
        let mut reader = GgufTensors { file, header, panels: cache.and_then(PanelCache::open), repacked: 0 };
        let weights = DecoderWeights::build(architecture, shape, &mut reader).map_err(|error| match error {
            EngineError::Load(what) => EngineError::Load(format!("loading {}: {what}", header.path.display())),
            other => other,
        })?;
        if let Some(cache) = cache.filter(|_| reader.repacked > 0) {
            // A cache that cannot be written (a full or read-only disk) only means repacking again
            // next time.
            let _ = cache.write(&weights.named_matrices());
        }
        Ok(weights)
    }

    /// Every matrix by its GGUF name (for the panel file).
    pub(super) fn named_matrices(&self) -> Vec<(String, &QMatrix)> {
        let mut named = Vec::new();
        for (block, layer) in self.layers.iter().enumerate() {
            for projection in Projection::ALL {
                named.push((gguf_tensor(block, projection), layer.projection(projection)));
            }
        }
        let output = if matches!(self.embeddings, Embeddings::Output) { "token_embd.weight" } else { "output.weight" };
        named.push((output.to_string(), &self.output));
        named
    }

    /// The network from any weight source.
    pub fn build(architecture: Architecture, shape: Shape, weights: &mut dyn WeightSource) -> Result<DecoderWeights, EngineError> {
        let Shape { width, heads, kv_heads, .. } = shape;
        if heads == 0 || kv_heads == 0 || width % heads != 0 || heads % kv_heads != 0 {
            return Err(EngineError::Load(format!("{heads} heads and {kv_heads} key/value heads do not divide a width of {width}")));
        }
        let mut layers = Vec::with_capacity(shape.blocks);
        for block in 0..shape.blocks {
            let name = |part: &str| format!("blk.{block}.{part}.weight");
            let matrix = |weights: &mut dyn WeightSource, projection| weights.matrix(&gguf_tensor(block, projection));
            let bias = |part: &str| format!("blk.{block}.{part}.bias");
            let qkv_bias = if weights.has(&bias("attn_q")) {
                let mut joined = weights.vector(&bias("attn_q"))?;
                joined.extend(weights.vector(&bias("attn_k"))?);
                joined.extend(weights.vector(&bias("attn_v"))?);
                Some(joined)
            } else {
                None
            };
            layers.push(LayerWeights {
                attention_norm: weights.vector(&name("attn_norm"))?,
                qkv: [matrix(weights, Projection::Query)?, matrix(weights, Projection::Key)?, matrix(weights, Projection::Value)?],
                qkv_bias,
                attention_output: matrix(weights, Projection::Output)?,
                ffn_norm: weights.vector(&name("ffn_norm"))?,
                gate_up: [matrix(weights, Projection::Gate)?, matrix(weights, Projection::Up)?],
                down: matrix(weights, Projection::Down)?,
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
        let network = DecoderWeights { architecture, shape, layers, embeddings, output, output_norm };
        network.check_shapes()?;
        Ok(network)
    }

    /// The vocabulary's size (the output matrix's rows).
    pub fn vocabulary(&self) -> usize {
        self.output.rows
    }

    /// The embedding of `token` into `row` (`width` values).
    pub fn embed(&self, token: u32, row: &mut [f32]) -> Result<(), EngineError> {
        let vocabulary = self.vocabulary();
        if token as usize >= vocabulary {
            return Err(EngineError::Inference(format!("token {token} is outside the vocabulary of {vocabulary}")));
        }
        match &self.embeddings {
            Embeddings::Output => self.output.dequantize_row(token as usize, row),
            Embeddings::Matrix(matrix) => matrix.dequantize_row(token as usize, row),
            Embeddings::File(rows) => rows.read(token as usize, row)?,
        }
        Ok(())
    }

    /// The embeddings of `tokens`, one row each.
    pub fn embed_all(&self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let width = self.shape.width;
        let mut hidden = vec![0.0; tokens.len() * width];
        for (token, row) in tokens.iter().zip(hidden.chunks_exact_mut(width)) {
            self.embed(*token, row)?;
        }
        Ok(hidden)
    }

    /// Every matrix and vector has the size the shape implies, so a bad file is refused at load
    /// and not computed on.
    fn check_shapes(&self) -> Result<(), EngineError> {
        let shape = &self.shape;
        let (width, kv_width) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
        let bad = |what: String| Err(EngineError::Load(format!("the weights do not fit the model's shape: {what}")));
        let embeddings = match &self.embeddings {
            Embeddings::Output => (self.output.rows, self.output.cols),
            Embeddings::Matrix(matrix) => (matrix.rows, matrix.cols),
            Embeddings::File(rows) => (rows.rows, rows.cols),
        };
        let output = &self.output;
        if width != shape.width || embeddings.1 != width || self.output_norm.len() != width || output.cols != width || output.rows != embeddings.0 {
            return bad(format!("width {}, embeddings {}x{}, output {}x{}", shape.width, embeddings.0, embeddings.1, output.rows, output.cols));
        }
        for (index, layer) in self.layers.iter().enumerate() {
            let fits = layer.attention_norm.len() == width
                && layer.ffn_norm.len() == width
                && layer.qkv_bias.as_ref().is_none_or(|bias| bias.len() == width + 2 * kv_width)
                && Projection::ALL.iter().all(|p| (layer.projection(*p).rows, layer.projection(*p).cols) == shape.projection(*p));
            if !fits {
                return bad(format!("block {index}"));
            }
        }
        Ok(())
    }
}

/// Reads tensors by name from the data section of a GGUF file, or takes matrices from its panel
/// file when one is mapped.
struct GgufTensors<'a> {
    file: File,
    header: &'a Gguf,
    panels: Option<panel_cache::MappedPanels>,
    /// Matrices repacked from the GGUF file (not found in the panel file).
    repacked: usize,
}

impl WeightSource for GgufTensors<'_> {
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
        let row_bytes = kind.row_bytes(cols).ok_or_else(|| EngineError::Load(format!("tensor {name}: {cols} columns are not whole {kind:?} blocks")))?;
        self.checked_size(name, rows.checked_mul(row_bytes))?;
        let path = self.header.path.clone();
        let file = self.file.try_clone().map_err(|error| EngineError::Load(format!("opening {} again: {error}", path.display())))?;
        Ok(Some(FileRows { file, path, start: self.header.data_offset + info.offset, kind, rows, cols }))
    }
}

impl<'a> GgufTensors<'a> {
    /// Fills `buffer` from byte `at` of tensor `name`'s data.
    fn read_at(&self, name: &str, at: u64, buffer: &mut [u8]) -> Result<(), String> {
        let header = self.header;
        let tensor = self.info(name).map_err(|error| error.to_string())?;
        let start = header.data_offset + tensor.offset + at;
        read_exact_at(&self.file, buffer, start).map_err(|error| format!("reading tensor {name} of {}: {error}", header.path.display()))
    }

    fn info(&self, name: &str) -> Result<&'a TensorInfo, EngineError> {
        self.header.tensors.iter().find(|t| t.name == name).ok_or_else(|| EngineError::Load(format!("the file has no tensor {name}")))
    }

    /// The tensor's size in bytes, checked to lie inside the file.
    fn checked_size(&self, name: &str, size: Option<usize>) -> Result<usize, EngineError> {
        let info = self.info(name)?;
        let end = size.and_then(|size| (self.header.data_offset + info.offset).checked_add(size as u64));
        match (size, end) {
            (Some(size), Some(end)) if end <= self.header.file_size => Ok(size),
            _ => Err(EngineError::Load(format!("tensor {name} is larger than the file"))),
        }
    }

    fn read_matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let info = self.info(name)?;
        let (cols, rows) = match info.dimensions[..] {
            [cols, rows] => (cols as usize, rows as usize),
            _ => return Err(EngineError::Load(format!("tensor {name} has {} dimensions, not 2", info.dimensions.len()))),
        };
        let kind = QuantKind::from_ggml(info.kind)
            .ok_or_else(|| EngineError::Load(format!("tensor {name} has the type {}, which the native backend does not read", type_name(info.kind))))?;
        let row_bytes = kind.row_bytes(cols).ok_or_else(|| EngineError::Load(format!("tensor {name}: {cols} columns are not whole {kind:?} blocks")))?;
        self.checked_size(name, rows.checked_mul(row_bytes))?;
        let read = |first: usize, buffer: &mut [u8]| self.read_at(name, (first * row_bytes) as u64, buffer);
        QMatrix::from_rows(kind, rows, cols, &read).map_err(|error| EngineError::Load(format!("tensor {name}: {error}")))
    }

    fn read_vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        let info = self.info(name)?;
        let (length, kind) = (info.dimensions.iter().product::<u64>() as usize, info.kind);
        let element = match kind {
            GGML_F32 => 4,
            GGML_F16 => 2,
            other => return Err(EngineError::Load(format!("tensor {name} has the type {}, not F32 or F16", type_name(other)))),
        };
        let mut data = vec![0; self.checked_size(name, length.checked_mul(element))?];
        self.read_at(name, 0, &mut data).map_err(EngineError::Load)?;
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
