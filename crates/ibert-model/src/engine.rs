//! The one seam every task command talks to: a prompt in, text out (streamed as it comes), with
//! the sampling settings of the request. Implemented by [`crate::LocalModel`], whose network runs
//! on the native backend or on candle (see [`crate::Backend`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::chat::{ChatMessage, ChatTemplateError};

/// How to pick tokens. `temperature` 0 is greedy decoding (deterministic).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOptions {
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    /// 1.0 leaves logits alone; above 1 discourages tokens of the last `repeat_last_n`.
    pub repetition_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
    /// Generation ends before any of these texts; they are not part of the answer.
    pub stop: Vec<String>,
    /// Set from elsewhere (a client that went away, a deadline), it ends generation at the next
    /// token.
    pub cancel: Cancel,
}

/// A flag shared with whoever may stop a generation; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Settings compare equal whatever their flags: a flag is not a setting.
impl PartialEq for Cancel {
    fn eq(&self, _other: &Cancel) -> bool {
        true
    }
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions {
            max_tokens: 256,
            temperature: 0.0,
            top_p: None,
            top_k: None,
            // Code repeats tokens on purpose (`group_by`, a column name twice): no penalty by
            // default; a penalty split identifiers (`group_ by`) in measured answers.
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: 42,
            stop: Vec::new(),
            cancel: Cancel::default(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced its end-of-turn token.
    EndOfText,
    /// A stop text appeared.
    StopText,
    /// `max_tokens` were generated.
    Length,
    /// [`GenerationOptions::cancel`] was set.
    Cancelled,
}

/// A finished generation and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    /// The prompt's first tokens that the previous generation had already run (kept in the
    /// key/value cache): a retry runs only what it adds.
    pub reused_prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Time to process the prompt (until the first token's logits).
    pub prompt_time: Duration,
    /// Time to generate the rest.
    pub generation_time: Duration,
    pub stop_reason: StopReason,
    /// How the tokens were decoded (plain or speculative), and how the drafts did.
    pub decoding: crate::speculative::DecodingReport,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] crate::gguf::GgufError),
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    #[error(transparent)]
    ChatTemplate(#[from] ChatTemplateError),
    #[error("{path}: the architecture `{architecture}` is not supported (llama and qwen2 are)")]
    Architecture { path: String, architecture: String },
    #[error(
        "{path}: tensor `{tensor}` has the block type {kind}, which iBERT does not read\nhint: use a GGUF file quantized to a common type (Q4_K_M, Q5_0, Q8_0 and the like)"
    )]
    TensorType { path: String, tensor: String, kind: String },
    #[error("the prompt has {prompt} tokens; with {max} more to generate it exceeds the model's context of {context}")]
    Context { prompt: usize, max: usize, context: usize },
    /// The model (or its adapter) could not be read or built: a file, a shape, a setting.
    #[error("{0}")]
    Load(String),
    #[error(transparent)]
    Adapter(#[from] crate::adapter::AdapterError),
    /// Running the network or the tokenizer failed.
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A loaded model that turns prompts into text.
pub trait Engine {
    /// The model file or name, for messages.
    fn describe(&self) -> String;

    /// The model's own chat template applied to `messages`, ready for [`Engine::generate`].
    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError>;

    /// Generates from `prompt`, calling `on_text` with each new piece of text as it is decoded.
    fn generate(&mut self, prompt: &str, options: &GenerationOptions, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError>;

    /// The LoRA adapter applied, when one is (prompts then leave out worked examples).
    fn adapter(&self) -> Option<&str> {
        None
    }
}
