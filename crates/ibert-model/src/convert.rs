//! A llama or qwen2 GGUF model written out as a Hugging Face folder (config.json,
//! tokenizer.json, tokenizer_config.json, model.safetensors in f16): what full-precision tools
//! (PyTorch, PEFT) read. The weights are the GGUF's dequantized values; a llama file's query and
//! key rows get back the order Hugging Face checkpoints use.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use serde_json::json;

use crate::architecture::{Architecture, Shape, hf_name, rows_to_hf_order};
use crate::engine::EngineError;
use crate::gguf::Gguf;
use crate::tokenizer::tokenizer_from_gguf;

/// The folder of `gguf_path`, converted once and kept beside it (`<file>.hf/`), so that what
/// reads the same model as a folder again (the tests of folder loading and of the hub) does not
/// convert it, or leave a copy behind, each time. The conversion renames a whole staging folder
/// into place, so a folder under that name is complete.
pub fn cached_hf_folder(gguf_path: &Path) -> Result<PathBuf, EngineError> {
    let folder = gguf_path.with_extension("hf");
    if !folder.exists() {
        gguf_to_hf_folder(gguf_path, &folder)?;
    }
    Ok(folder)
}

/// Writes the folder `out` (replacing nothing: it must not exist yet).
pub fn gguf_to_hf_folder(gguf_path: &Path, out: &Path) -> Result<(), EngineError> {
    let fail = |what: String| EngineError::Load(format!("converting {}: {what}", gguf_path.display()));
    if out.exists() {
        return Err(fail(format!("{} already exists; pick a new folder", out.display())));
    }
    let header = Gguf::open(gguf_path)?;
    let (architecture, shape) = Shape::from_gguf(&header)?;
    let context = header.architecture_integer("context_length").ok_or_else(|| fail(format!("the metadata has no {}.context_length", architecture.name())))?;

    let mut file = File::open(gguf_path).map_err(|e| fail(e.to_string()))?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| fail(e.to_string()))?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for name in content.tensor_infos.keys() {
        let hf = hf_name(name).ok_or_else(|| fail(format!("no Hugging Face name for tensor {name}")))?;
        let tensor = content.tensor(&mut file, name, &Device::Cpu).and_then(|q| q.dequantize(&Device::Cpu)).map_err(|e| fail(format!("{name}: {e}")))?;
        let heads = match name.rsplit('.').nth(1) {
            Some("attn_q") => Some(shape.heads),
            Some("attn_k") => Some(shape.kv_heads),
            _ => None,
        };
        let tensor = match heads.filter(|_| architecture.gguf_permutes_query_and_key()) {
            Some(heads) => in_hf_order(&tensor, heads),
            None => Ok(tensor),
        }
        .and_then(|t| t.to_dtype(candle_core::DType::F16))
        .map_err(|e| fail(format!("{name}: {e}")))?;
        tensors.insert(hf, tensor);
    }
    let tokenizer = tokenizer_from_gguf(&header)?;
    let mut config = json!({
        "model_type": architecture.name(),
        "architectures": [architecture.hf_class()],
        "hidden_size": shape.width,
        "intermediate_size": shape.ffn,
        "num_hidden_layers": shape.blocks,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "rms_norm_eps": header.architecture_float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        "rope_theta": header.architecture_float("rope.freq_base").unwrap_or(10_000.0),
        "max_position_embeddings": context,
        "vocab_size": tokenizer.get_vocab_size(true),
        "tie_word_embeddings": !tensors.contains_key("lm_head.weight"),
        "hidden_act": "silu",
        "bos_token_id": header.integer("tokenizer.ggml.bos_token_id"),
        "eos_token_id": header.integer("tokenizer.ggml.eos_token_id"),
    });
    if architecture == Architecture::Qwen2 {
        // The fields candle's and transformers' qwen2 configurations require besides the common ones.
        for (key, value) in [("sliding_window", json!(context)), ("max_window_layers", json!(shape.blocks)), ("use_sliding_window", json!(false))] {
            config[key] = value;
        }
    }
    let tokenizer_config = json!({
        "chat_template": header.chat_template(),
        "bos_token": header.token_text("tokenizer.ggml.bos_token_id"),
        "eos_token": header.token_text("tokenizer.ggml.eos_token_id"),
    });

    // Written beside the target and renamed into place when complete.
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| fail(format!("creating {}: {e}", parent.display())))?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755));
    let staging = builder.tempdir_in(parent).map_err(|e| fail(format!("writing in {}: {e}", parent.display())))?;
    let write = |name: &str, value: &serde_json::Value| {
        std::fs::write(staging.path().join(name), serde_json::to_string_pretty(value).expect("json")).map_err(|e| fail(format!("writing {name}: {e}")))
    };
    write("config.json", &config)?;
    write("tokenizer_config.json", &tokenizer_config)?;
    tokenizer.save(staging.path().join("tokenizer.json"), false).map_err(|e| fail(format!("writing tokenizer.json: {e}")))?;
    candle_core::safetensors::save(&tensors, staging.path().join("model.safetensors")).map_err(|e| fail(format!("writing model.safetensors: {e}")))?;
    let staged = staging.keep();
    std::fs::rename(&staged, out).map_err(|e| fail(format!("moving the folder to {}: {e}", out.display())))?;
    Ok(())
}

/// A llama query or key matrix with its rows in the Hugging Face order.
fn in_hf_order(tensor: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = tensor.dims2()?;
    let values = tensor.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Tensor::from_vec(rows_to_hf_order(&values, cols, heads), (rows, cols), tensor.device())
}
