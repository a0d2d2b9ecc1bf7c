//! Our own CPU inference for llama and qwen2 GGUF models whose matrices are Q4_0, Q4_1, Q5_0,
//! Q8_0, Q4_K or Q6_K (the default model is Q4_1; Qwen2.5-Coder files mix Q5_0, Q8_0, Q4_K and
//! Q6_K).
//!
//! Why it exists: candle has no vectorized Q4_1 kernel and, in a build without `target-cpu`
//! flags, no vectorized kernel at all, which left it at a quarter of llama.cpp's speed on the
//! default model. Here the weights are repacked at load into panels of eight rows ([`quant`]),
//! the block kernels are picked at run time, the projections of one input run as one parallel
//! product, and the prompt is processed as a batch. Files this module cannot serve (other
//! architectures or block types) go to the candle backend.
//!
//! * [`weights`]: the network's weights in this form, from a GGUF file or any [`WeightSource`];
//!   training (`ibert-train`) runs on the same weights.
//! * [`decoder`]: inference over them with a key/value cache, with or without a LoRA adapter.
//! * [`ops`]: the float operations of a block (and the backward passes training needs).
//! * [`panel_cache`]: repacked weights kept in the cache and mapped by later loads.
//!
//! How llama and qwen2 differ is described once, in [`crate::architecture`].

pub mod decoder;
mod ggml;
#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod model_tests;
pub mod ops;
pub mod panel_cache;
mod portable;
pub mod quant;
pub mod weights;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use decoder::NativeDecoder;
pub use ggml::type_name;
use quant::{GGML_F16, GGML_F32, QuantKind};
pub use weights::{DecoderWeights, Embeddings, FileRows, LayerWeights, WeightSource};

/// Whether this backend reads tensors of this ggml type (as vectors or matrices).
pub fn reads_type(kind: u32) -> bool {
    [GGML_F32, GGML_F16].contains(&kind) || QuantKind::from_ggml(kind).is_some()
}
