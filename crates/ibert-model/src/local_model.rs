//! A local model ready to answer: a GGUF file or a Hugging Face folder, with its tokenizer and
//! chat template, and its network on the fastest backend that can run it.

use std::path::{Path, PathBuf};

use candle_core::Device;
use tokenizers::Tokenizer;

use crate::architecture::{Architecture, Shape};
use crate::candle_gguf::CandleGguf;
use crate::chat::{ChatMessage, ChatTemplate};
use crate::decoder::{self, CachedTokens, Forward, Vocabulary};
use crate::engine::{Engine, EngineError, Generation, GenerationOptions};
use crate::gguf::Gguf;
use crate::hf_folder::HfFolder;
use crate::native::{DecoderWeights, NativeDecoder};
use crate::speculative::{AnswerHistory, Decoding, DraftModel, Drafter};

/// Which implementation runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Native when the model allows it, candle otherwise.
    #[default]
    Auto,
    /// Our own kernels ([`crate::native`]): llama and qwen2 GGUF with Q4_0, Q4_1, Q5_0, Q8_0,
    /// Q4_K or Q6_K matrices, and llama folders quantized at load.
    Native,
    /// candle: quantized GGUF llama and qwen2, full-precision folders.
    Candle,
}

/// How to load a model.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    pub backend: Backend,
    /// Quantize a full-precision folder to 8 bits at load (GGUF files are quantized already).
    pub load_in_8bit: bool,
    pub device: DeviceChoice,
}

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal: candle's CUDA backend, in a build with the `cuda` feature.
    Cuda(usize),
}

impl DeviceChoice {
    /// `cpu`, `cuda`, `cuda:N` (and `gpu` for `cuda:0`).
    pub fn parse(text: &str) -> Option<DeviceChoice> {
        match text {
            "cpu" => Some(DeviceChoice::Cpu),
            "cuda" | "gpu" => Some(DeviceChoice::Cuda(0)),
            _ => text.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(DeviceChoice::Cuda),
        }
    }

    /// The candle device; a build without CUDA support says how to get one.
    pub fn candle_device(self) -> Result<Device, EngineError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(ordinal) => Device::new_cuda(ordinal).map_err(|error| match error {
                candle_core::Error::NotCompiledWithCudaSupport => EngineError::Load(
                    "device cuda: this ibert was built without CUDA support; on a machine with the CUDA toolkit rebuild it with `cargo build --release --features cuda`, or use --device cpu".to_string(),
                ),
                other => EngineError::Load(format!("device cuda:{ordinal}: {other}")),
            }),
        }
    }
}

pub struct LocalModel {
    path: PathBuf,
    network: Box<dyn Forward>,
    /// What the network's key/value cache holds, for the next prompt to reuse.
    cached: CachedTokens,
    /// `native`, `candle`, `native (8-bit at load)`.
    backend: String,
    format: &'static str,
    /// `CPU` or `CUDA:N`, for messages.
    device: String,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    end_tokens: Vec<u32>,
    context_length: usize,
    /// The adapter applied, for messages (`None` for the base alone).
    adapter: Option<String>,
    /// The network's architecture and shape when it runs on the native backend (which applies
    /// adapters).
    native_shape: Option<(Architecture, Shape)>,
    /// How tokens are generated: prompt lookup by default (it only pays on the native backend,
    /// and the decoder decodes plainly elsewhere).
    decoding: Decoding,
    /// The small model that drafts tokens for [`Decoding::DraftModel`], when one is loaded.
    draft_model: Option<DraftModel>,
    /// The last answers' tokens, which lookup also drafts from.
    history: AnswerHistory,
}

impl LocalModel {
    /// A GGUF file or a Hugging Face folder on the fastest backend that runs it. A bad file
    /// fails with what is wrong.
    pub fn load(path: &Path) -> Result<LocalModel, EngineError> {
        LocalModel::load_with(path, LoadOptions::default())
    }

    pub fn load_with(path: &Path, options: LoadOptions) -> Result<LocalModel, EngineError> {
        let device = options.device.candle_device()?;
        if !device.is_cpu() && (options.backend == Backend::Native || options.load_in_8bit) {
            return Err(EngineError::Load("the native backend (and load_in_8bit) run on the CPU; on a GPU, models run on candle".to_string()));
        }
        if options.backend == Backend::Candle && options.load_in_8bit {
            return Err(EngineError::Load("load_in_8bit runs on the native backend, not on candle".to_string()));
        }
        if path.is_dir() { LocalModel::load_folder(path, options, &device) } else { LocalModel::load_gguf(path, options.backend, &device) }
    }

    fn load_gguf(path: &Path, backend: Backend, device: &Device) -> Result<LocalModel, EngineError> {
        let header = Gguf::open(path)?;
        // A block type neither backend reads is named here, with the tensor, before either tries.
        if let Some(tensor) = header.tensors.iter().find(|t| !crate::candle_gguf::reads_type(t.kind) && !crate::native::reads_type(t.kind)) {
            return Err(EngineError::TensorType { path: path.display().to_string(), tensor: tensor.name.clone(), kind: crate::native::type_name(tensor.kind) });
        }
        // The network loads while another thread builds the tokenizer (a vocabulary of 150 000
        // tokens and as many merges takes a few tenths of a second).
        let (tokenizer, network) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| crate::tokenizer::tokenizer_from_gguf(&header));
            let network = LocalModel::gguf_network(&header, backend, device);
            (tokenizer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), network)
        });
        let (tokenizer, (network, backend)) = (tokenizer?, network?);
        let native_shape = if backend == "native" { Some(Shape::from_gguf(&header)?) } else { None };
        let template = match header.chat_template() {
            Some(source) => {
                let bos = header.token_text("tokenizer.ggml.bos_token_id").unwrap_or("");
                let eos = header.token_text("tokenizer.ggml.eos_token_id").unwrap_or("");
                Some(ChatTemplate::new(source, bos, eos)?)
            }
            None => None,
        };
        let eos = header.integer("tokenizer.ggml.eos_token_id").map(|id| id as u32);
        let end_tokens = crate::tokenizer::end_tokens(&tokenizer, eos);
        let context_length = header.architecture_integer("context_length").unwrap_or(2048) as usize;
        let device = device_name(device);
        Ok(LocalModel {
            path: path.to_path_buf(),
            network,
            cached: CachedTokens::default(),
            backend: backend.to_string(),
            format: "GGUF",
            device,
            tokenizer,
            template,
            end_tokens,
            context_length,
            adapter: None,
            native_shape,
            decoding: Decoding::Plain,
            draft_model: None,
            history: AnswerHistory::default(),
        }
        .with_default_decoding())
    }

    /// Reads the adapter at `path` (a PEFT folder or a GGUF LoRA file) for this network and
    /// applies it; returns it, for the caller's checks of its base.
    pub fn load_adapter(&mut self, path: &Path) -> Result<crate::adapter::LoraAdapter, EngineError> {
        let Some((architecture, shape)) = self.native_shape.clone() else {
            return Err(EngineError::Load(format!(
                "{}: LoRA adapters run on the native backend, which does not run this model ({}); use a GGUF file of llama or qwen2, or a folder with --load-in-8bit",
                path.display(),
                self.backend
            )));
        };
        let adapter = crate::adapter::read_adapter(path, architecture, &shape)?;
        self.apply_adapter(&adapter, &path.display().to_string())?;
        Ok(adapter)
    }

    /// Applies a LoRA adapter (named `name` in messages) to every answer from now on. The
    /// adapter must fit the network, and the backend must be native.
    pub fn apply_adapter(&mut self, adapter: &crate::adapter::LoraAdapter, name: &str) -> Result<(), EngineError> {
        self.network
            .set_adapter(adapter)
            .map_err(|why| EngineError::Load(format!("the adapter {name} cannot be applied to {}: {why}", self.path.display())))?;
        self.cached = CachedTokens::default();
        self.adapter = Some(name.to_string());
        Ok(())
    }

    /// Prompt lookup where the network checks drafts in one pass (it measures faster there and
    /// gives the same answers), plain decoding elsewhere.
    fn with_default_decoding(mut self) -> LocalModel {
        if self.network.checks_drafts_in_one_pass() {
            self.decoding = Decoding::PromptLookup;
        }
        self
    }

    /// Decodes with `decoding` from now on; the draft-model kinds need [`LocalModel::set_draft_model`] first.
    pub fn set_decoding(&mut self, decoding: Decoding) -> Result<(), EngineError> {
        if decoding.needs_draft_model() && self.draft_model.is_none() {
            return Err(EngineError::Load(format!("{decoding} decoding needs a draft model (--draft-model FILE.gguf, of the same tokenizer)")));
        }
        self.decoding = decoding;
        Ok(())
    }

    pub fn decoding(&self) -> Decoding {
        self.decoding
    }

    /// Makes `draft` this model's draft model; it must have the same vocabulary.
    pub fn set_draft_model(&mut self, draft: LocalModel) -> Result<(), EngineError> {
        let name = draft.path.display().to_string();
        self.draft_model = Some(DraftModel::new(&name, draft.network, &draft.tokenizer, draft.context_length, draft.end_tokens, &self.tokenizer)?);
        Ok(())
    }

    /// The network of a GGUF file on the backend asked for (native where it can run the model,
    /// unless candle is asked for), and the backend's name.
    fn gguf_network(header: &Gguf, backend: Backend, device: &Device) -> Result<(Box<dyn Forward>, &'static str), EngineError> {
        // The native kernels are CPU code: on a GPU, candle runs everything.
        let native_refusal = if device.is_cpu() { DecoderWeights::unsupported_reason(header) } else { Some("a GPU device".to_string()) };
        Ok(match (backend, native_refusal) {
            (Backend::Candle, _) | (Backend::Auto, Some(_)) => (Box::new(CandleGguf::load(header, device)?), "candle"),
            (Backend::Native | Backend::Auto, None) => (Box::new(NativeDecoder::load(header)?), "native"),
            (Backend::Native, Some(reason)) => {
                return Err(EngineError::Load(format!("{}: the native backend cannot run this model ({reason})", header.path.display())));
            }
        })
    }

    fn load_folder(dir: &Path, options: LoadOptions, device: &Device) -> Result<LocalModel, EngineError> {
        let folder = HfFolder::open(dir)?;
        let quantize = options.load_in_8bit || options.backend == Backend::Native;
        let (network, backend, native_shape): (Box<dyn Forward>, &str, _) = if quantize {
            let network = folder.native_8bit()?;
            let native_shape = Some((network.weights().architecture, network.shape().clone()));
            (Box::new(network), "native, 8-bit at load", native_shape)
        } else {
            (Box::new(folder.candle(device)?), "candle, f32", None)
        };
        let context_length = folder.config.max_position_embeddings;
        Ok(LocalModel {
            path: dir.to_path_buf(),
            network,
            cached: CachedTokens::default(),
            backend: backend.to_string(),
            format: "Hugging Face folder",
            device: device_name(device),
            tokenizer: folder.tokenizer,
            template: folder.template,
            end_tokens: folder.end_tokens,
            context_length,
            adapter: None,
            native_shape,
            decoding: Decoding::Plain,
            draft_model: None,
            history: AnswerHistory::default(),
        }
        .with_default_decoding())
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The tokens that end an answer.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// A whole conversation, answers included, as the model's chat template writes it (what
    /// training shows the model): [`Engine::chat_prompt`] of its first messages is a prefix.
    pub fn conversation_text(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        match &self.template {
            Some(template) => Ok(template.render(messages, false)?),
            None => Ok(messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect()),
        }
    }

    /// `native`, `candle`, ...
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The name of the adapter applied, if any.
    pub fn adapter(&self) -> Option<&str> {
        self.adapter.as_deref()
    }

    /// Empties the key/value cache, so that the next prompt runs in full (benchmarks measure
    /// prompt processing this way, as llama.cpp's `reset` does).
    pub fn forget_cached_prompt(&mut self) {
        self.network.reset();
        self.cached = CachedTokens::default();
    }

    /// Forgets the earlier answers that lookup drafts from (benchmarks start each run afresh).
    pub fn forget_answers(&mut self) {
        self.history = AnswerHistory::default();
    }

    /// The logits after `tokens`, from an empty cache (to compare backends).
    pub fn prompt_logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.forget_cached_prompt();
        self.network.logits(tokens, 0)
    }
}

fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("CUDA:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("Metal:{gpu_id}"),
        candle_core::DeviceLocation::Cpu => "CPU".to_string(),
    }
}

impl Engine for LocalModel {
    fn describe(&self) -> String {
        let decoding = match (self.decoding, &self.draft_model) {
            (Decoding::Plain, _) => String::new(),
            _ if !self.network.checks_drafts_in_one_pass() => ", plain decoding".to_string(),
            (decoding, Some(draft)) if decoding.needs_draft_model() => format!(", {decoding} decoding with {}", draft.name()),
            (decoding, _) => format!(", {decoding} decoding"),
        };
        let kernels = if self.backend.starts_with("native") { format!(", {} kernels", crate::native::quant::kernel_name()) } else { String::new() };
        let adapter = self.adapter.as_ref().map(|name| format!(" + adapter {name}")).unwrap_or_default();
        format!("{}{adapter} ({}, {} backend{kernels}, {}{decoding})", self.path.display(), self.format, self.backend, self.device)
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
        let mut drafter = Drafter::new(self.decoding, self.draft_model.as_mut(), Some(&mut self.history));
        decoder::generate(self.network.as_mut(), &mut self.cached, &vocabulary, prompt, options, &mut drafter, on_text)
    }

    fn adapter(&self) -> Option<&str> {
        LocalModel::adapter(self)
    }
}
