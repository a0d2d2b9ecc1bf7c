//! A GGUF model ready to answer: its tokenizer and chat template from the file's metadata, and
//! the network on the fastest backend that can run it.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use crate::candle_gguf::CandleGguf;
use crate::chat::{ChatMessage, ChatTemplate};
use crate::decoder::{self, Forward, Vocabulary};
use crate::engine::{Engine, EngineError, Generation, GenerationOptions};
use crate::gguf::Gguf;
use crate::native::NativeLlama;

/// Which implementation runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Native when the file allows it, candle otherwise.
    Auto,
    /// Our own kernels ([`crate::native`]): llama with Q4_0, Q4_1 or Q8_0 matrices.
    Native,
    /// candle's quantized llama and qwen2.
    Candle,
}

pub struct GgufModel {
    header: Gguf,
    path: PathBuf,
    network: Box<dyn Forward>,
    backend: &'static str,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    end_tokens: Vec<u32>,
    context_length: usize,
}

impl GgufModel {
    /// Loads a GGUF model on the fastest backend that runs it. The header is checked first, so a
    /// bad file fails with what is wrong.
    pub fn load(path: &Path) -> Result<GgufModel, EngineError> {
        GgufModel::load_with(path, Backend::Auto)
    }

    pub fn load_with(path: &Path, backend: Backend) -> Result<GgufModel, EngineError> {
        let header = Gguf::open(path)?;
        let tokenizer = crate::tokenizer::tokenizer_from_gguf(&header)?;
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
        let native_refusal = NativeLlama::unsupported_reason(&header);
        let (network, backend): (Box<dyn Forward>, &'static str) = match (backend, native_refusal) {
            (Backend::Candle, _) | (Backend::Auto, Some(_)) => (Box::new(CandleGguf::load(&header)?), "candle"),
            (Backend::Native | Backend::Auto, None) => (Box::new(NativeLlama::load(&header)?), "native"),
            (Backend::Native, Some(reason)) => {
                return Err(EngineError::Inference(format!("{}: the native backend cannot run this model ({reason})", path.display())));
            }
        };
        Ok(GgufModel { header, path: path.to_path_buf(), network, backend, tokenizer, template, end_tokens, context_length })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn header(&self) -> &Gguf {
        &self.header
    }

    /// `native` or `candle`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The logits after `tokens`, from an empty cache (to compare backends).
    pub fn prompt_logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.network.reset();
        self.network.logits(tokens, 0)
    }
}

impl Engine for GgufModel {
    fn describe(&self) -> String {
        match self.backend {
            "native" => format!("{} (GGUF, native backend, {} kernels, CPU)", self.path.display(), crate::native::quant::kernel_name()),
            backend => format!("{} (GGUF, {backend} backend, CPU)", self.path.display()),
        }
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        match &self.template {
            Some(template) => Ok(template.render(messages, true)?),
            // No template: the conversation as plain text, ending where the answer starts.
            None => Ok(messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect::<String>() + "assistant: "),
        }
    }

    fn generate(&mut self, prompt: &str, options: &GenerationOptions, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError> {
        let vocabulary = Vocabulary { tokenizer: &self.tokenizer, end_tokens: &self.end_tokens, context_length: self.context_length };
        decoder::generate(self.network.as_mut(), &vocabulary, prompt, options, on_text)
    }
}
