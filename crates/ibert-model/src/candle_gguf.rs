//! GGUF models on the CPU with candle: llama and qwen2 architectures, the tokenizer and chat
//! template from the file's own metadata, a KV cache kept across the steps of one generation.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use tokenizers::Tokenizer;

use crate::chat::{ChatMessage, ChatTemplate};
use crate::engine::{Engine, EngineError, Generation, GenerationOptions, StopReason};
use crate::gguf::Gguf;
use crate::tokenizer::tokenizer_from_gguf;

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    fn clear_kv_cache(&mut self) {
        match self {
            Weights::Llama(model) => model.clear_kv_cache(),
            Weights::Qwen2(model) => model.clear_kv_cache(),
        }
    }

    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(model) => model.forward(input, position),
            Weights::Qwen2(model) => model.forward(input, position),
        }
    }
}

pub struct CandleGguf {
    header: Gguf,
    path: std::path::PathBuf,
    weights: Weights,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    end_tokens: Vec<u32>,
    context_length: usize,
    device: Device,
}

impl CandleGguf {
    /// Loads a GGUF model; the header is checked first, so a bad file fails with what is wrong.
    pub fn load(path: &Path) -> Result<CandleGguf, EngineError> {
        let header = Gguf::open(path)?;
        let tokenizer = tokenizer_from_gguf(&header)?;
        let template = match header.chat_template() {
            Some(source) => {
                let bos = header.token_text("tokenizer.ggml.bos_token_id").unwrap_or("");
                let eos = header.token_text("tokenizer.ggml.eos_token_id").unwrap_or("");
                Some(ChatTemplate::new(source, bos, eos)?)
            }
            None => None,
        };
        let mut end_tokens: Vec<u32> = header.integer("tokenizer.ggml.eos_token_id").map(|id| id as u32).into_iter().collect();
        for text in ["<|im_end|>", "<|endoftext|>", "<|end|>", "<|eot_id|>"] {
            if let Some(id) = tokenizer.token_to_id(text) {
                end_tokens.push(id);
            }
        }
        let context_length = header.architecture_integer("context_length").unwrap_or(2048) as usize;
        let device = Device::Cpu;
        let weights = load_weights(&header, path, &device)?;
        Ok(CandleGguf { header, path: path.to_path_buf(), weights, tokenizer, template, end_tokens, context_length, device })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn header(&self) -> &Gguf {
        &self.header
    }
}

fn load_weights(header: &Gguf, path: &Path, device: &Device) -> Result<Weights, EngineError> {
    let inference = |error: candle_core::Error| EngineError::Inference(format!("loading {}: {error}", path.display()));
    let mut file = File::open(path).map_err(|error| EngineError::Inference(format!("opening {}: {error}", path.display())))?;
    let content = gguf_file::Content::read(&mut file).map_err(inference)?;
    match header.architecture() {
        Some("llama") => Ok(Weights::Llama(quantized_llama::ModelWeights::from_gguf(content, &mut file, device).map_err(inference)?)),
        Some("qwen2") => Ok(Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, &mut file, device).map_err(inference)?)),
        other => Err(EngineError::Architecture { path: path.display().to_string(), architecture: other.unwrap_or("unknown").to_string() }),
    }
}

impl Engine for CandleGguf {
    fn describe(&self) -> String {
        format!("{} (GGUF, candle, CPU)", self.path.display())
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        match &self.template {
            Some(template) => Ok(template.render(messages, true)?),
            // No template: the conversation as plain text, ending where the answer starts.
            None => Ok(messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect::<String>() + "assistant: "),
        }
    }

    fn generate(&mut self, prompt: &str, options: &GenerationOptions, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError> {
        let inference = |error: candle_core::Error| EngineError::Inference(error.to_string());
        let encoding = self.tokenizer.encode(prompt, false).map_err(|error| EngineError::Inference(format!("tokenizing the prompt: {error}")))?;
        let prompt_ids = encoding.get_ids().to_vec();
        if prompt_ids.len() + options.max_tokens > self.context_length {
            return Err(EngineError::Context { prompt: prompt_ids.len(), max: options.max_tokens, context: self.context_length });
        }
        // The KV cache lives in the weights: each generation starts it empty.
        self.weights.clear_kv_cache();
        let mut sampler = LogitsProcessor::from_sampling(options.seed, sampling(options));
        let started = Instant::now();
        let input = Tensor::new(prompt_ids.as_slice(), &self.device).and_then(|t| t.unsqueeze(0)).map_err(inference)?;
        let mut logits = self.weights.forward(&input, 0).and_then(|l| l.squeeze(0)).map_err(inference)?;
        let prompt_time = started.elapsed();
        let started = Instant::now();
        let mut generated: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut emitted = 0;
        let mut stop_reason = StopReason::Length;
        while generated.len() < options.max_tokens {
            let context: Vec<u32> = prompt_ids.iter().chain(&generated).copied().collect();
            let start = context.len().saturating_sub(options.repeat_last_n);
            let adjusted = if options.repetition_penalty == 1.0 {
                logits.clone()
            } else {
                candle_transformers::utils::apply_repeat_penalty(&logits, options.repetition_penalty, &context[start..]).map_err(inference)?
            };
            let next = sampler.sample(&adjusted).map_err(inference)?;
            if self.end_tokens.contains(&next) {
                stop_reason = StopReason::EndOfText;
                break;
            }
            generated.push(next);
            text = self.tokenizer.decode(&generated, true).map_err(|error| EngineError::Inference(format!("decoding: {error}")))?;
            if let Some(at) = options.stop.iter().filter_map(|stop| text.find(stop.as_str())).min() {
                text.truncate(at);
                if at > emitted {
                    on_text(&text[emitted..]);
                }
                emitted = text.len();
                stop_reason = StopReason::StopText;
                break;
            }
            // Hold back what could still become a stop text, or an unfinished character.
            let holdback = options.stop.iter().map(|s| s.len().saturating_sub(1)).max().unwrap_or(0);
            let mut safe = text.len().saturating_sub(holdback).max(emitted);
            while !text.is_char_boundary(safe) {
                safe -= 1;
            }
            if safe > emitted && !text[..safe].ends_with('\u{fffd}') {
                on_text(&text[emitted..safe]);
                emitted = safe;
            }
            let input = Tensor::new(&[next], &self.device).and_then(|t| t.unsqueeze(0)).map_err(inference)?;
            logits = self.weights.forward(&input, context.len()).and_then(|l| l.squeeze(0)).map_err(inference)?;
        }
        if text.len() > emitted {
            on_text(&text[emitted..]);
        }
        Ok(Generation {
            text,
            prompt_tokens: prompt_ids.len(),
            generated_tokens: generated.len(),
            prompt_time,
            generation_time: started.elapsed(),
            stop_reason,
        })
    }
}

fn sampling(options: &GenerationOptions) -> Sampling {
    if options.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = options.temperature;
    match (options.top_k, options.top_p) {
        (None, None) => Sampling::All { temperature },
        (Some(k), None) => Sampling::TopK { k, temperature },
        (None, Some(p)) => Sampling::TopP { p, temperature },
        (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
    }
}
