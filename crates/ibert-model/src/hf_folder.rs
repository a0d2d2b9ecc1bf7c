//! Hugging Face model folders: `config.json`, `tokenizer.json` (with `tokenizer_config.json` for
//! the chat template) and `*.safetensors`. Full precision runs on candle (llama, qwen2);
//! `load_in_8bit` quantizes a llama checkpoint to Q8_0 at load and runs it on the native kernels.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2};
use serde::Deserialize;
use serde_json::Value;
use tokenizers::Tokenizer;

use crate::architecture::{Architecture, Shape, hf_name, hf_required_tensors};
use crate::chat::ChatTemplate;
use crate::decoder::Forward;
use crate::engine::EngineError;
use crate::native::quant::QMatrix;
use crate::native::{DecoderWeights, NativeDecoder, WeightSource, ops::RopeStyle};

/// The `config.json` fields the loaders read.
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    pub model_type: String,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub intermediate_size: usize,
    #[serde(default = "default_epsilon")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default = "default_context")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

fn default_epsilon() -> f64 {
    1e-6
}

fn default_context() -> usize {
    2048
}

/// A model folder, checked and read except for its weights.
pub struct HfFolder {
    pub dir: PathBuf,
    pub config: HfConfig,
    /// The raw `config.json`, for the loaders that take their own config types.
    raw_config: String,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub end_tokens: Vec<u32>,
    weights: Vec<PathBuf>,
}

fn fail(dir: &Path, what: impl std::fmt::Display) -> EngineError {
    EngineError::Load(format!("{}: {what}", dir.display()))
}

impl HfFolder {
    pub fn open(dir: &Path) -> Result<HfFolder, EngineError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|error| fail(dir, format!("reading {name}: {error} (a model folder needs config.json, tokenizer.json and *.safetensors)")))
        };
        let raw_config = read("config.json")?;
        let config: HfConfig = serde_json::from_str(&raw_config).map_err(|error| fail(dir, format!("config.json: {error}")))?;
        if Architecture::from_name(&config.model_type).is_none() {
            return Err(EngineError::Architecture { path: dir.display().to_string(), architecture: config.model_type.clone() });
        }
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|error| fail(dir, format!("tokenizer.json: {error}")))?;
        let settings: Value = match std::fs::read_to_string(dir.join("tokenizer_config.json")) {
            Ok(text) => serde_json::from_str(&text).map_err(|error| fail(dir, format!("tokenizer_config.json: {error}")))?,
            Err(_) => Value::Null,
        };
        let token_text = |key: &str| match &settings[key] {
            Value::String(text) => Some(text.clone()),
            Value::Object(token) => token.get("content").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        let template_source = match &settings["chat_template"] {
            Value::String(source) => Some(source.clone()),
            // A list of named templates: the default one.
            Value::Array(named) => named.iter().find(|t| t["name"] == "default").and_then(|t| t["template"].as_str()).map(str::to_string),
            _ => None,
        };
        let template = match template_source {
            Some(source) => Some(ChatTemplate::new(&source, &token_text("bos_token").unwrap_or_default(), &token_text("eos_token").unwrap_or_default())?),
            None => None,
        };
        let end_tokens = crate::tokenizer::end_tokens(&tokenizer, token_text("eos_token").and_then(|t| tokenizer.token_to_id(&t)));
        let mut weights: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|error| fail(dir, error))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        weights.sort();
        if weights.is_empty() {
            return Err(fail(dir, "no *.safetensors weights"));
        }
        Ok(HfFolder { dir: dir.to_path_buf(), config, raw_config, tokenizer, template, end_tokens, weights })
    }

    fn tensors(&self) -> Result<MmapedSafetensors, EngineError> {
        // SAFETY: the files are mapped read-only; like every mmap, they must not change while the
        // model is loaded.
        unsafe { MmapedSafetensors::multi(&self.weights) }.map_err(|error| fail(&self.dir, format!("reading the weights: {error}")))
    }

    /// Refuses a checkpoint that lacks tensors the loader will ask for (candle's loaders panic).
    fn check_tensors(&self, tensors: &MmapedSafetensors) -> Result<(), EngineError> {
        let present: HashSet<String> = tensors.tensors().into_iter().map(|(name, _)| name).collect();
        let mut needed = hf_required_tensors(self.config.num_hidden_layers);
        if !self.config.tie_word_embeddings.unwrap_or(false) && !present.contains("lm_head.weight") {
            needed.push("lm_head.weight".to_string());
        }
        match needed.iter().find(|name| !present.contains(name.as_str())) {
            Some(missing) => Err(fail(&self.dir, format!("the weights have no tensor `{missing}` (is the download complete?)"))),
            None => Ok(()),
        }
    }

    /// Full precision on candle.
    pub fn candle(&self, device: &Device) -> Result<CandleHf, EngineError> {
        let tensors = self.tensors()?;
        self.check_tensors(&tensors)?;
        let device = device.clone();
        let inference = |error: candle_core::Error| fail(&self.dir, format!("loading: {error}"));
        // SAFETY: as in `tensors`.
        let builder = unsafe { VarBuilder::from_mmaped_safetensors(&self.weights, DType::F32, &device) }.map_err(inference)?;
        match self.config.model_type.as_str() {
            "llama" => {
                let config: llama::LlamaConfig = serde_json::from_str(&self.raw_config).map_err(|error| fail(&self.dir, format!("config.json: {error}")))?;
                let config = config.into_config(false);
                let model = llama::Llama::load(builder, &config).map_err(inference)?;
                let cache = llama::Cache::new(true, DType::F32, &config, &device).map_err(inference)?;
                Ok(CandleHf { model: HfNetwork::Llama { model, cache: Box::new(cache), config: Box::new(config) }, device })
            }
            _ => {
                let config: qwen2::Config = serde_json::from_str(&self.raw_config).map_err(|error| fail(&self.dir, format!("config.json: {error}")))?;
                Ok(CandleHf { model: HfNetwork::Qwen2(qwen2::ModelForCausalLM::new(&config, builder).map_err(inference)?), device })
            }
        }
    }

    /// Quantized to Q8_0 at load, on the native kernels (llama only).
    pub fn native_8bit(&self) -> Result<NativeDecoder, EngineError> {
        if self.config.model_type != "llama" {
            return Err(fail(&self.dir, format!("load_in_8bit runs llama checkpoints; this one is {}", self.config.model_type)));
        }
        // What the native kernels do not model: refuse rather than compute something else.
        let raw: Value = serde_json::from_str(&self.raw_config).unwrap_or(Value::Null);
        let head_dim = self.config.hidden_size / self.config.num_attention_heads.max(1);
        let unsupported = [
            ("rope_scaling", !raw["rope_scaling"].is_null()),
            ("attention_bias", raw["attention_bias"] == Value::Bool(true)),
            ("mlp_bias", raw["mlp_bias"] == Value::Bool(true)),
            ("head_dim", raw["head_dim"].as_u64().is_some_and(|d| d as usize != head_dim)),
        ];
        if let Some((setting, _)) = unsupported.iter().find(|(_, present)| *present) {
            return Err(fail(
                &self.dir,
                format!("load_in_8bit does not support `{setting}` in config.json; load the folder without it (full precision on candle)"),
            ));
        }
        let tensors = self.tensors()?;
        self.check_tensors(&tensors)?;
        let c = &self.config;
        let head_dim = c.hidden_size / c.num_attention_heads.max(1);
        let shape = Shape {
            width: c.hidden_size,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads.unwrap_or(c.num_attention_heads),
            head_dim,
            rope_dims: head_dim,
            rope_base: c.rope_theta.unwrap_or(10_000.0) as f32,
            rope_style: RopeStyle::Halves,
            epsilon: c.rms_norm_eps as f32,
            blocks: c.num_hidden_layers,
            ffn: c.intermediate_size,
        };
        let weights =
            DecoderWeights::build(Architecture::Llama, shape, &mut HfWeights { tensors, dir: self.dir.clone() }).map_err(|error| fail(&self.dir, error))?;
        Ok(NativeDecoder::new(weights))
    }
}

struct HfWeights {
    tensors: MmapedSafetensors,
    dir: PathBuf,
}

impl HfWeights {
    fn load(&self, name: &str) -> Result<Tensor, EngineError> {
        let hf = hf_name(name).ok_or_else(|| fail(&self.dir, format!("no Hugging Face name for {name}")))?;
        self.tensors.load(&hf, &Device::Cpu).and_then(|t| t.to_dtype(DType::F32)).map_err(|error| fail(&self.dir, format!("tensor {hf}: {error}")))
    }
}

impl WeightSource for HfWeights {
    fn matrix(&mut self, name: &str) -> Result<QMatrix, EngineError> {
        let tensor = self.load(name)?;
        let (rows, cols) = tensor.dims2().map_err(|error| fail(&self.dir, format!("{name}: {error}")))?;
        let values = tensor.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|error| fail(&self.dir, format!("{name}: {error}")))?;
        QMatrix::quantize_q8_0(rows, cols, &values).map_err(|error| fail(&self.dir, format!("{name}: {error}")))
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>, EngineError> {
        self.load(name)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|error| fail(&self.dir, format!("{name}: {error}")))
    }

    fn has(&self, name: &str) -> bool {
        hf_name(name).is_some_and(|hf| self.tensors.get(&hf).is_ok())
    }
}

/// A full-precision checkpoint on candle.
pub struct CandleHf {
    model: HfNetwork,
    device: Device,
}

enum HfNetwork {
    Llama { model: llama::Llama, cache: Box<llama::Cache>, config: Box<llama::Config> },
    Qwen2(qwen2::ModelForCausalLM),
}

impl Forward for CandleHf {
    fn reset(&mut self) {
        match &mut self.model {
            HfNetwork::Llama { cache, config, .. } => {
                if let Ok(fresh) = llama::Cache::new(true, DType::F32, config, &self.device) {
                    **cache = fresh;
                }
            }
            HfNetwork::Qwen2(model) => model.clear_kv_cache(),
        }
    }

    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError> {
        let inference = |error: candle_core::Error| EngineError::Inference(error.to_string());
        let input = Tensor::new(tokens, &self.device).and_then(|t| t.unsqueeze(0)).map_err(inference)?;
        let logits = match &mut self.model {
            HfNetwork::Llama { model, cache, .. } => model.forward(&input, position, cache),
            HfNetwork::Qwen2(model) => model.forward(&input, position),
        };
        logits.and_then(|l| l.flatten_all()).and_then(|l| l.to_vec1::<f32>()).map_err(inference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_its_files_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let error = HfFolder::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("config.json") && error.contains("tokenizer.json and *.safetensors"), "{error}");
        std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt2", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1}"#)
            .unwrap();
        let error = HfFolder::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("`gpt2` is not supported"), "{error}");
    }
}
