//! PEFT adapter folders, as Hugging Face's PEFT writes and reads them:
//!
//! * `adapter_config.json`: `peft_type` `LORA`, `task_type` `CAUSAL_LM`, `r`, `lora_alpha`,
//!   `lora_dropout`, `target_modules` (module names such as `q_proj`),
//!   `base_model_name_or_path`, and PEFT's other keys at their defaults;
//! * `adapter_model.safetensors`: `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`
//!   (`rank x input`) and `...lora_B.weight` (`output x rank`) for every adapted projection, with
//!   the output rows in the Hugging Face checkpoint's order;
//! * `ibert_adapter.json` (ours, which PEFT ignores): the architecture and the base's sha256, so
//!   that an adapter is refused on a base it was not made for.
//!
//! A folder is written beside its final place and renamed into it, so a reader sees the old
//! adapter or the new one, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AdapterError, BaseModel, LoraAdapter, LoraFactors, slot};
use crate::architecture::{Architecture, Projection, Shape, rows_to_gguf_order, rows_to_hf_order};
use crate::native::ops::RopeStyle;
use crate::tensor_file::{Precision, Tensor, TensorFileError, read_tensors, write_tensors};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
pub const IDENTITY_FILE: &str = "ibert_adapter.json";

/// `ibert_adapter.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Identity {
    architecture: String,
    base: BaseModel,
    blocks: usize,
}

/// The name of a factor in PEFT's weights file (`A` or `B`).
pub fn tensor_name(block: usize, projection: Projection, factor: char) -> String {
    format!("base_model.model.model.layers.{block}.{}.lora_{factor}.weight", projection.hf_path())
}

/// Whether the network `shape` describes keeps llama's query and key rows in the GGUF order
/// (a GGUF file's adjacent-pair rotation) rather than the Hugging Face one.
fn rows_in_gguf_order(shape: &Shape) -> bool {
    shape.rope_style == RopeStyle::AdjacentPairs
}

/// Writes `adapter` (made for a network of `shape`) as a PEFT folder at `dir`, replacing a folder
/// there; `extra` files (a card, training records) go in with it.
pub fn write_peft(adapter: &LoraAdapter, shape: &Shape, dir: &Path, precision: Precision, extra: &[(&str, Vec<u8>)]) -> Result<(), AdapterError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| AdapterError::Io { action, path, source }
    };
    std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
    let staging = tempfile::Builder::new().prefix(".adapter-").tempdir_in(parent).map_err(io("writing in", parent))?;
    let mut tensors = BTreeMap::new();
    for (block, projection, factors) in adapter.iter() {
        let b = match shape.heads_of(projection).filter(|_| rows_in_gguf_order(shape)) {
            Some(heads) => rows_to_hf_order(&factors.b, factors.rank, heads),
            None => factors.b.clone(),
        };
        tensors.insert(tensor_name(block, projection, 'A'), Tensor { shape: vec![factors.rank, factors.input], values: factors.a.clone() });
        tensors.insert(tensor_name(block, projection, 'B'), Tensor { shape: vec![factors.output, factors.rank], values: b });
    }
    write_tensors(&staging.path().join(WEIGHTS_FILE), &tensors, precision, &[("format", "pt")]).map_err(tensor_error)?;
    let first = adapter.first_block();
    let layers: Value = if first == 0 { Value::Null } else { json!((first..adapter.blocks.len()).collect::<Vec<_>>()) };
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": adapter.base.name,
        "revision": null,
        "r": adapter.rank,
        "lora_alpha": adapter.alpha,
        "lora_dropout": adapter.dropout,
        "target_modules": adapter.targets.iter().map(|p| p.module()).collect::<Vec<_>>(),
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layers_to_transform": layers,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "modules_to_save": null,
        "use_rslora": false,
        "use_dora": false,
    });
    let identity = Identity { architecture: adapter.architecture.name().to_string(), base: adapter.base.clone(), blocks: adapter.blocks.len() };
    let mut files = vec![
        (CONFIG_FILE, (serde_json::to_string_pretty(&config).expect("json") + "\n").into_bytes()),
        (IDENTITY_FILE, (serde_json::to_string_pretty(&identity).expect("json") + "\n").into_bytes()),
    ];
    files.extend(extra.iter().map(|(name, bytes)| (*name, bytes.clone())));
    for (name, text) in files {
        let path = staging.path().join(name);
        std::fs::write(&path, text).map_err(io("writing", &path))?;
    }
    replace_folder(staging.keep(), dir)
}

/// Renames the finished folder `staged` to `dir`, moving an old `dir` aside first and removing
/// it after.
fn replace_folder(staged: PathBuf, dir: &Path) -> Result<(), AdapterError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| AdapterError::Io { action, path, source }
    };
    let old = dir.with_file_name(format!(".{}.old", dir.file_name().unwrap_or_default().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io("moving aside", dir))?;
    }
    std::fs::rename(&staged, dir).map_err(io("renaming into", dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn tensor_error(error: TensorFileError) -> AdapterError {
    match error {
        TensorFileError::Io { action, path, source } => AdapterError::Io { action, path, source },
        TensorFileError::Format { path, detail } => {
            AdapterError::Format { path, detail, hint: "the adapter's weights are damaged; train it again or copy it anew" }
        }
    }
}

/// Reads the PEFT folder `dir` for a network of `architecture` and `shape` (the factors come out
/// in the order that network uses).
pub fn read_peft(dir: &Path, architecture: Architecture, shape: &Shape) -> Result<LoraAdapter, AdapterError> {
    let config_path = dir.join(CONFIG_FILE);
    let format = |path: &Path, detail: String, hint: &'static str| AdapterError::Format { path: path.to_path_buf(), detail, hint };
    let text = std::fs::read_to_string(&config_path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => {
            format(dir, format!("has no {CONFIG_FILE}"), "an adapter is a PEFT folder (adapter_config.json, adapter_model.safetensors) or a GGUF LoRA file")
        }
        _ => AdapterError::Io { action: "reading", path: config_path.clone(), source },
    })?;
    let config: Value = serde_json::from_str(&text).map_err(|error| format(&config_path, format!("not JSON: {error}"), "write it as PEFT does"))?;
    let config_error = |detail: String| format(&config_path, detail, "iBERT reads plain LoRA adapters of PEFT (LoraConfig)");
    if config["peft_type"].as_str() != Some("LORA") {
        return Err(config_error(format!("peft_type is {}, not \"LORA\"", config["peft_type"])));
    }
    for (key, default) in [("use_dora", json!(false)), ("use_rslora", json!(false)), ("fan_in_fan_out", json!(false)), ("bias", json!("none"))] {
        if !config[key].is_null() && config[key] != default {
            return Err(config_error(format!("`{key}: {}` is not supported", config[key])));
        }
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if config[key].as_object().is_some_and(|pattern| !pattern.is_empty()) {
            return Err(config_error(format!("`{key}` (ranks or alphas per module) is not supported")));
        }
    }
    if config["modules_to_save"].as_array().is_some_and(|modules| !modules.is_empty()) {
        return Err(config_error("`modules_to_save` (fully trained modules) is not supported".to_string()));
    }
    let rank = config["r"].as_u64().filter(|r| *r > 0).ok_or_else(|| config_error("`r` is not a positive integer".to_string()))? as usize;
    let alpha = config["lora_alpha"].as_f64().ok_or_else(|| config_error("`lora_alpha` is not a number".to_string()))? as f32;
    let targets: Vec<Projection> = match &config["target_modules"] {
        Value::Array(names) => names
            .iter()
            .map(|name| {
                let module = name.as_str().unwrap_or("").rsplit('.').next().unwrap_or("");
                Projection::from_module(module)
                    .ok_or_else(|| config_error(format!("target module {name} is not a projection iBERT adapts (q_proj ... down_proj)")))
            })
            .collect::<Result<_, _>>()?,
        other => return Err(config_error(format!("target_modules is {other}, not a list of module names"))),
    };
    let identity_path = dir.join(IDENTITY_FILE);
    let identity: Option<Identity> = match std::fs::read_to_string(&identity_path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .map_err(|error| format(&identity_path, format!("does not parse: {error}"), "remove it to read the folder as a plain PEFT adapter"))?,
        ),
        Err(_) => None,
    };
    if let Some(identity) = &identity
        && identity.architecture != architecture.name()
    {
        return Err(AdapterError::Mismatch {
            path: dir.to_path_buf(),
            detail: format!("it adapts a {} model, this one is {}", identity.architecture, architecture.name()),
        });
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let tensors = read_tensors(&weights_path).map_err(tensor_error)?;
    let mut adapter = LoraAdapter::zeros(architecture, shape, rank, alpha, &targets, shape.blocks);
    adapter.dropout = config["lora_dropout"].as_f64().unwrap_or(0.0) as f32;
    adapter.base = identity
        .map(|identity| identity.base)
        .unwrap_or_else(|| BaseModel { name: config["base_model_name_or_path"].as_str().unwrap_or("").to_string(), sha256: None });
    let mismatch = |detail: String| AdapterError::Mismatch { path: dir.to_path_buf(), detail };
    let mut pairs: BTreeMap<(usize, Projection), [Option<Tensor>; 2]> = BTreeMap::new();
    for (name, tensor) in tensors {
        let (block, projection, factor) = parse_tensor_name(&name).ok_or_else(|| {
            format(&weights_path, format!("tensor `{name}` is not a LoRA factor of a block's projection"), "iBERT reads LoRA on q/k/v/o/gate/up/down_proj only")
        })?;
        if block >= shape.blocks {
            return Err(mismatch(format!("it adapts block {block}, the model has {} blocks", shape.blocks)));
        }
        pairs.entry((block, projection)).or_default()[usize::from(factor == 'B')] = Some(tensor);
    }
    for ((block, projection), [a, b]) in pairs {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(format(&weights_path, format!("block {block} {} has one factor of two", projection.module()), "the adapter's weights are incomplete"));
        };
        let (output, input) = shape.projection(projection);
        if a.shape != [rank, input] || b.shape != [output, rank] {
            return Err(mismatch(format!(
                "block {block} {}: lora_A is {:?} and lora_B {:?}, the model needs [{rank}, {input}] and [{output}, {rank}]",
                projection.module(),
                a.shape,
                b.shape
            )));
        }
        let b = match shape.heads_of(projection).filter(|_| rows_in_gguf_order(shape)) {
            Some(heads) => rows_to_gguf_order(&b.values, rank, heads),
            None => b.values,
        };
        if !targets.contains(&projection) {
            return Err(format(
                &config_path,
                format!("the weights adapt {}, which target_modules does not list", projection.module()),
                "list every adapted module",
            ));
        }
        adapter.blocks[block][slot(projection)] = Some(LoraFactors { a: a.values, b, rank, input, output });
    }
    if adapter.parameters() == 0 {
        return Err(format(&weights_path, "has no LoRA factors".to_string(), "the adapter's weights are empty"));
    }
    Ok(adapter)
}

/// `(block, projection, 'A' | 'B')` of a PEFT tensor name (with or without the adapter's name
/// before `.weight`, as older PEFT versions wrote it).
fn parse_tensor_name(name: &str) -> Option<(usize, Projection, char)> {
    let rest = name.strip_prefix("base_model.model.")?;
    let rest = rest.strip_prefix("model.layers.")?;
    let (block, rest) = rest.split_once('.')?;
    let block: usize = block.parse().ok()?;
    let (path, factor) = rest.split_once(".lora_")?;
    let factor = match factor.split('.').next()? {
        "A" => 'A',
        "B" => 'B',
        _ => return None,
    };
    let projection = Projection::ALL.into_iter().find(|projection| projection.hf_path() == path)?;
    Some((block, projection, factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peft_tensor_names_parse_back() {
        let name = tensor_name(7, Projection::Down, 'B');
        assert_eq!(name, "base_model.model.model.layers.7.mlp.down_proj.lora_B.weight");
        assert_eq!(parse_tensor_name(&name), Some((7, Projection::Down, 'B')));
        assert_eq!(parse_tensor_name("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"), Some((0, Projection::Query, 'A')));
        assert_eq!(parse_tensor_name("base_model.model.lm_head.lora_A.weight"), None);
    }
}
