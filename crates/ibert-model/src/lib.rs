//! Local models for the six task commands, and what training shares with them.
//!
//! * [`gguf`] reads a GGUF file's header, metadata and tensor table, and refuses a truncated or
//!   foreign file with a message that says what is wrong, before any engine touches it.
//! * [`architecture`] describes llama and qwen2 once (shapes, tensor names, rotary style, row
//!   order) for every loader, the converter, adapters and training.
//! * [`chat`] renders a model's own chat template (from its metadata) with a Jinja engine.
//! * [`tokenizer`] builds the tokenizer a GGUF file describes; [`engine`] is the seam the task
//!   commands use and [`local_model`] its implementation for GGUF files and Hugging Face folders
//!   ([`hf_folder`]), on one of two CPU backends: [`native`] (our kernels; llama and qwen2 with
//!   Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K, and folders quantized at load) and candle
//!   ([`candle_gguf`]: llama and qwen2 GGUF with any block type candle reads; full-precision
//!   folders). [`convert`] writes a GGUF model out as a Hugging Face folder.
//! * [`adapter`]: LoRA adapters in PEFT's folder format and llama.cpp's GGUF layout, applied
//!   unmerged by the native backend; [`tensor_file`] reads and writes their safetensors.
//!
//! Nothing here touches the network: which models exist and how they reach the cache is
//! `ibert-catalog`'s job.

pub mod adapter;
pub mod architecture;
pub mod candle_gguf;
pub mod chat;
pub mod convert;
mod decoder;
pub mod engine;
pub mod gguf;
pub mod hf_folder;
pub mod local_model;
pub mod native;
pub mod openai_api;
pub mod speculative;
pub mod tensor_file;
pub mod tokenizer;

pub use adapter::{AdapterError, LoraAdapter, LoraFactors, read_adapter};
pub use architecture::{Architecture, Projection, Shape};
pub use chat::{ChatMessage, ChatTemplate, ChatTemplateError};
pub use engine::{Cancel, Engine, EngineError, Generation, GenerationOptions, StopReason};
pub use gguf::{Gguf, GgufError, MetadataValue, TensorInfo};
pub use local_model::{Backend, DeviceChoice, LoadOptions, LocalModel};
pub use openai_api::OpenAiEngine;
pub use speculative::{Decoding, DecodingReport};
