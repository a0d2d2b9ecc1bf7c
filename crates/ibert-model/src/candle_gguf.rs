//! GGUF models through candle's quantized llama and qwen2: the backend for files the native one
//! ([`crate::native`]) cannot serve (block types such as Q5_K or Q3_K), for GPUs, and to compare
//! the native backend with.

use std::fs::File;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

use crate::decoder::Forward;
use crate::engine::EngineError;
use crate::gguf::Gguf;

/// Whether candle reads tensors of this ggml type (F32, F16, BF16, Q4_0..Q8_1, Q2_K..Q8_K).
pub fn reads_type(kind: u32) -> bool {
    matches!(kind, 0..=3 | 6..=15 | 30)
}

pub struct CandleGguf {
    weights: Weights,
    device: Device,
}

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl CandleGguf {
    pub fn load(header: &Gguf, device: &Device) -> Result<CandleGguf, EngineError> {
        let path = &header.path;
        let inference = |error: candle_core::Error| EngineError::Load(format!("loading {}: {error}", path.display()));
        let mut file = File::open(path).map_err(|error| EngineError::Load(format!("opening {}: {error}", path.display())))?;
        let content = gguf_file::Content::read(&mut file).map_err(inference)?;
        let weights = match header.architecture() {
            Some("llama") => Weights::Llama(quantized_llama::ModelWeights::from_gguf(content, &mut file, device).map_err(inference)?),
            Some("qwen2") => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, &mut file, device).map_err(inference)?),
            other => return Err(EngineError::Architecture { path: path.display().to_string(), architecture: other.unwrap_or("unknown").to_string() }),
        };
        Ok(CandleGguf { weights, device: device.clone() })
    }
}

impl Forward for CandleGguf {
    fn reset(&mut self) {
        match &mut self.weights {
            Weights::Llama(model) => model.clear_kv_cache(),
            Weights::Qwen2(model) => model.clear_kv_cache(),
        }
    }

    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError> {
        let inference = |error: candle_core::Error| EngineError::Inference(error.to_string());
        let input = Tensor::new(tokens, &self.device).and_then(|t| t.unsqueeze(0)).map_err(inference)?;
        let logits = match &mut self.weights {
            Weights::Llama(model) => model.forward(&input, position),
            Weights::Qwen2(model) => model.forward(&input, position),
        };
        logits.and_then(|l| l.squeeze(0)).and_then(|l| l.to_vec1::<f32>()).map_err(inference)
    }
}
