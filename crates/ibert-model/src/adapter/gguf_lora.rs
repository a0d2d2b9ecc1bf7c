//! LoRA adapters as GGUF files in llama.cpp's layout (what `convert_lora_to_gguf.py` writes and
//! `llama_adapter_lora_init` reads): `general.type = adapter`, `adapter.type = lora`,
//! `adapter.lora.alpha`, and per adapted projection `blk.N.attn_q.weight.lora_a` (ggml shape
//! `[input, rank]`) and `blk.N.attn_q.weight.lora_b` (`[rank, output]`), in f32. The rows of
//! `lora_b` follow the base GGUF file's order (llama's query and key rows permuted), as the base
//! matrix's rows do. Written through candle's GGUF writer; read with [`crate::gguf`].

use std::fs::File;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;

use super::{AdapterError, BaseModel, LoraAdapter, LoraFactors, slot};
use crate::architecture::{Architecture, Projection, Shape, rows_to_gguf_order, rows_to_hf_order};
use crate::gguf::{Gguf, MetadataValue};
use crate::native::ops::RopeStyle;
use crate::native::quant::{GGML_F16, GGML_F32};

/// The names of a projection's factors in a GGUF LoRA file.
pub fn tensor_names(block: usize, projection: Projection) -> (String, String) {
    let base = crate::architecture::gguf_tensor(block, projection);
    (format!("{base}.lora_a"), format!("{base}.lora_b"))
}

/// Writes `adapter`, made for a network of `shape`, as a GGUF LoRA file for GGUF bases (whose
/// llama rows are permuted); through a temporary file beside `path`.
pub fn write_gguf_lora(adapter: &LoraAdapter, shape: &Shape, path: &Path) -> Result<(), AdapterError> {
    let fail = |detail: String| AdapterError::Format { path: path.to_path_buf(), detail, hint: "check the adapter and the disk, and write it again" };
    let to_tensor = |values: Vec<f32>, rows: usize, cols: usize| {
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).and_then(|t| QTensor::quantize(&t, GgmlDType::F32)).map_err(|e| fail(e.to_string()))
    };
    // The file's rows follow a GGUF base; a network trained on a folder (Hugging Face order)
    // gets its llama query and key rows permuted on the way out.
    let permute = shape.rope_style == RopeStyle::Halves && adapter.architecture.gguf_permutes_query_and_key();
    let mut tensors = Vec::new();
    for (block, projection, factors) in adapter.iter() {
        let b = match shape.heads_of(projection).filter(|_| permute) {
            Some(heads) => rows_to_gguf_order(&factors.b, factors.rank, heads),
            None => factors.b.clone(),
        };
        let (a_name, b_name) = tensor_names(block, projection);
        tensors.push((a_name, to_tensor(factors.a.clone(), factors.rank, factors.input)?));
        tensors.push((b_name, to_tensor(b, factors.output, factors.rank)?));
    }
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String(adapter.architecture.name().to_string())),
        ("general.type", Value::String("adapter".to_string())),
        ("general.name", Value::String(format!("LoRA of {}", adapter.base.name))),
        ("adapter.type", Value::String("lora".to_string())),
        ("adapter.lora.alpha", Value::F32(adapter.alpha)),
        ("ibert.base.sha256", Value::String(adapter.base.sha256.clone().unwrap_or_default())),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(key, value)| (*key, value)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(name, tensor)| (name.as_str(), tensor)).collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut bytes, &metadata, &tensors).map_err(|e| fail(e.to_string()))?;
    crate::tensor_file::write_atomically(path, bytes.get_ref()).map_err(|error| fail(error.to_string()))
}

/// A tensor's dimensions (ggml order) and values as f32.
type StoredTensor = (Vec<u64>, Vec<f32>);

/// Reads a GGUF LoRA file for a network of `architecture` and `shape`.
pub fn read_gguf_lora(path: &Path, architecture: Architecture, shape: &Shape) -> Result<LoraAdapter, AdapterError> {
    let format = |detail: String| AdapterError::Format {
        path: path.to_path_buf(),
        detail,
        hint: "a GGUF LoRA adapter as llama.cpp's convert_lora_to_gguf.py writes it",
    };
    let header = Gguf::open(path).map_err(|error| format(error.to_string()))?;
    if header.string("general.type") != Some("adapter") || header.string("adapter.type") != Some("lora") {
        return Err(format("is not a LoRA adapter (general.type `adapter`, adapter.type `lora`)".to_string()));
    }
    let found = header.architecture().unwrap_or("unknown");
    if found != architecture.name() {
        return Err(AdapterError::Mismatch { path: path.to_path_buf(), detail: format!("it adapts a {found} model, this one is {}", architecture.name()) });
    }
    let alpha = match header.metadata.get("adapter.lora.alpha") {
        Some(MetadataValue::F32(alpha)) => *alpha,
        Some(MetadataValue::F64(alpha)) => *alpha as f32,
        _ => return Err(format("has no adapter.lora.alpha".to_string())),
    };
    let file = File::open(path).map_err(|source| AdapterError::Io { action: "reading", path: path.to_path_buf(), source })?;
    let read = |name: &str| -> Result<Option<StoredTensor>, AdapterError> {
        let Some(info) = header.tensors.iter().find(|t| t.name == name) else { return Ok(None) };
        let count = info.dimensions.iter().product::<u64>() as usize;
        let element = match info.kind {
            GGML_F32 => 4,
            GGML_F16 => 2,
            other => return Err(format(format!("tensor `{name}` has the type {}; F32 and F16 are read", crate::native::type_name(other)))),
        };
        let mut bytes = vec![0u8; count * element];
        let start = header.data_offset + info.offset;
        if start + bytes.len() as u64 > header.file_size {
            return Err(format(format!("tensor `{name}` runs past the end of the file (truncated?)")));
        }
        read_at(&file, &mut bytes, start).map_err(|source| AdapterError::Io { action: "reading", path: path.to_path_buf(), source })?;
        let values = match element {
            4 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            _ => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        };
        Ok(Some((info.dimensions.clone(), values)))
    };
    let mut rank = None;
    let mut targets = Vec::new();
    let mut blocks: Vec<[Option<LoraFactors>; 7]> = (0..shape.blocks).map(|_| Default::default()).collect();
    let unpermute = shape.rope_style == RopeStyle::Halves && architecture.gguf_permutes_query_and_key();
    for block in 0..shape.blocks {
        for projection in Projection::ALL {
            let (a_name, b_name) = tensor_names(block, projection);
            let (Some((a_dims, a)), Some((b_dims, b))) = (read(&a_name)?, read(&b_name)?) else { continue };
            let (output, input) = shape.projection(projection);
            let r = a_dims.get(1).copied().unwrap_or(0) as usize;
            if a_dims != [input as u64, r as u64] || b_dims != [r as u64, output as u64] || r == 0 {
                return Err(AdapterError::Mismatch {
                    path: path.to_path_buf(),
                    detail: format!("{a_name} is {a_dims:?} and {b_name} {b_dims:?}; the model's matrix is {output}x{input}"),
                });
            }
            if *rank.get_or_insert(r) != r {
                return Err(format(format!("{a_name} has rank {r}, other factors rank {}", rank.unwrap_or(0))));
            }
            let b = match shape.heads_of(projection).filter(|_| unpermute) {
                Some(heads) => rows_to_hf_order(&b, r, heads),
                None => b,
            };
            if !targets.contains(&projection) {
                targets.push(projection);
            }
            blocks[block][slot(projection)] = Some(LoraFactors { a, b, rank: r, input, output });
        }
    }
    let known = header.tensors.iter().filter(|t| t.name.ends_with(".lora_a") || t.name.ends_with(".lora_b")).count();
    let used: usize = blocks.iter().flatten().flatten().count() * 2;
    if used != known || known != header.tensors.len() {
        return Err(AdapterError::Mismatch {
            path: path.to_path_buf(),
            detail: format!("{} tensors, of which {used} are factors of this model's projections", header.tensors.len()),
        });
    }
    let Some(rank) = rank else { return Err(format("has no LoRA factors".to_string())) };
    targets.sort();
    let sha256 = header.string("ibert.base.sha256").filter(|s| !s.is_empty()).map(str::to_string);
    let base = BaseModel { name: header.string("general.name").unwrap_or("").trim_start_matches("LoRA of ").to_string(), sha256 };
    Ok(LoraAdapter { architecture, rank, alpha, dropout: 0.0, targets, base, blocks })
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(not(unix))]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buffer)
}
