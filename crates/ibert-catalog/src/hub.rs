//! Models by Hugging Face hub name (`Qwen/Qwen2.5-Coder-7B-Instruct`, or `name@revision` to pin
//! one): the folder's files (config.json, tokenizer files, safetensors weights, shards included)
//! fetched once into the cache with the project's HTTP client. The hub's API first resolves the
//! revision (`main` unless named) to a commit; every file is then read at that commit, and every
//! weight file is checked against the sha256 the API lists for it, so that the cache holds one
//! revision, checked. The commit is kept in the folder (`revision`). `HF_ENDPOINT` and
//! `HF_TOKEN` are honoured as the hub's own tools do. Without network the error says how to
//! supply the files instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ibert_fetch::{FetchError, Pinned};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "cannot download `{repo}` from the Hugging Face hub ({endpoint}): {detail}\nhint: without network access, download the model folder (config.json, tokenizer.json, *.safetensors) on another machine and pass it with --model-path DIR (or model.model_path); a GGUF file works too"
    )]
    Download { repo: String, endpoint: String, detail: String },
    #[error("`{0}` is not a hub model name (expected `organization/model` or `organization/model@revision`)")]
    Name(String),
    #[error("`{repo}` at {commit} is not a model iBERT can run: {detail}")]
    Unusable { repo: String, commit: String, detail: String },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// Where the hub is and who asks: `HF_ENDPOINT` (default `https://huggingface.co`) and
/// `HF_TOKEN`, as the hub's own tools read them.
#[derive(Debug, Clone)]
pub struct Hub {
    pub endpoint: String,
    pub token: Option<String>,
}

impl Hub {
    pub fn from_env() -> Hub {
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()).unwrap_or_else(|| "https://huggingface.co".to_string());
        Hub { endpoint: endpoint.trim_end_matches('/').to_string(), token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) }
    }
}

/// The hub's answer to `/api/models/{repo}/revision/{revision}?blobs=true`, as far as it is read.
#[derive(Debug, Deserialize)]
struct Listing {
    /// The commit the revision names.
    sha: String,
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<LargeFile>,
}

#[derive(Debug, Deserialize)]
struct LargeFile {
    sha256: String,
    size: u64,
}

/// Small files read as text: the required ones, then those used when present.
const REQUIRED_FILES: [&str; 2] = ["config.json", "tokenizer.json"];
const OPTIONAL_FILES: [&str; 1] = ["tokenizer_config.json"];
const WEIGHT_INDEX: &str = "model.safetensors.index.json";

/// The local folder of hub model `name`, downloaded first if the cache lacks it.
/// `progress(done, total)` counts the weights' bytes.
pub fn ensure_hub_model(name: &str, hub: &Hub, cache_dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<PathBuf, HubError> {
    let (repo, revision) = parse_name(name)?;
    let folder = match revision {
        Some(revision) => format!("{}@{revision}", repo.replace('/', "--")),
        None => repo.replace('/', "--"),
    };
    let target = cache_dir.join("models/hub").join(folder);
    if target.join("config.json").exists() {
        return Ok(target);
    }
    let parent = target.parent().expect("a hub folder has a parent");
    // Staged beside the target under a fixed name, so that a re-run resumes the weights' partial
    // files (`*.part`); renamed into place once everything is there and checked.
    let staging = parent.join(format!(".{}.partial", target.file_name().and_then(|n| n.to_str()).unwrap_or("model")));
    std::fs::create_dir_all(&staging).map_err(|source| HubError::Io { action: "creating", path: staging.clone(), source })?;
    match download(repo, revision.unwrap_or("main"), hub, &staging, progress) {
        Ok(()) => {
            std::fs::rename(&staging, &target).map_err(|source| HubError::Io { action: "moving the download to", path: target.clone(), source })?;
            Ok(target)
        }
        Err(error) => {
            keep_only_partial_weights(&staging);
            Err(error)
        }
    }
}

/// After a failed download: the weights' partial files stay for the next run to resume; the
/// rest goes, and the folder too when nothing is left.
fn keep_only_partial_weights(staging: &Path) {
    for entry in std::fs::read_dir(staging).into_iter().flatten().flatten() {
        if entry.path().extension().is_none_or(|e| e != "part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir(staging);
}

/// `organization/model[@revision]`, each part a plain name (no path can be smuggled in).
fn parse_name(name: &str) -> Result<(&str, Option<&str>), HubError> {
    let (repo, revision) = match name.split_once('@') {
        Some((repo, revision)) => (repo, Some(revision)),
        None => (name, None),
    };
    let plain = |part: &str| !part.is_empty() && part != ".." && part != "." && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let valid = repo.split('/').count() == 2 && repo.split('/').all(plain) && revision.is_none_or(plain);
    if valid { Ok((repo, revision)) } else { Err(HubError::Name(name.to_string())) }
}

/// Every file of the model at `revision` into `into`.
fn download(repo: &str, revision: &str, hub: &Hub, into: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), HubError> {
    let agent = ibert_fetch::agent_with_bearer(hub.token.as_deref());
    let failed = |detail: String| HubError::Download { repo: repo.to_string(), endpoint: hub.endpoint.clone(), detail };
    let listing_url = format!("{}/api/models/{repo}/revision/{revision}?blobs=true", hub.endpoint);
    let listing: Listing = serde_json::from_str(&ibert_fetch::get_text(&agent, &listing_url).map_err(|e| failed(fetch_detail(e)))?)
        .map_err(|error| failed(format!("{listing_url} is not the hub's model listing: {error}")))?;
    let commit = listing.sha.as_str();
    let unusable = |detail: String| HubError::Unusable { repo: repo.to_string(), commit: commit.to_string(), detail };
    let siblings: BTreeMap<&str, &Sibling> = listing.siblings.iter().map(|s| (s.rfilename.as_str(), s)).collect();
    let url = |file: &str| format!("{}/{repo}/resolve/{commit}/{file}", hub.endpoint);
    let write = |file: &str, text: &str| {
        let path = into.join(file);
        std::fs::write(&path, text).map_err(|source| HubError::Io { action: "writing", path, source })
    };

    for file in REQUIRED_FILES {
        if !siblings.contains_key(file) {
            return Err(unusable(format!("it has no {file}")));
        }
    }
    for file in REQUIRED_FILES.iter().chain(&OPTIONAL_FILES).filter(|f| siblings.contains_key(**f)) {
        write(file, &ibert_fetch::get_text(&agent, &url(file)).map_err(|e| failed(fetch_detail(e)))?)?;
    }
    let weights = if siblings.contains_key(WEIGHT_INDEX) {
        let index = ibert_fetch::get_text(&agent, &url(WEIGHT_INDEX)).map_err(|e| failed(fetch_detail(e)))?;
        write(WEIGHT_INDEX, &index)?;
        shards(&index).map_err(unusable)?
    } else if siblings.contains_key("model.safetensors") {
        vec!["model.safetensors".to_string()]
    } else {
        return Err(unusable("it has no model.safetensors (GGUF-only repositories: download the .gguf file and pass it with --model-path)".to_string()));
    };

    let mut pinned = Vec::new();
    for weight in &weights {
        let sibling = siblings.get(weight.as_str()).ok_or_else(|| unusable(format!("its index names {weight}, which the repository does not have")))?;
        let large = sibling.lfs.as_ref().ok_or_else(|| unusable(format!("the hub lists no sha256 for {weight}")))?;
        pinned.push((weight, large, sibling.size.unwrap_or(large.size)));
    }
    let total = pinned.iter().map(|(_, _, size)| size).sum();
    let mut done = 0;
    for (weight, large, size) in pinned {
        let source = url(weight);
        ibert_fetch::fetch(&agent, Pinned { url: &source, sha256: &large.sha256 }, &into.join(weight), |bytes, _| progress(done + bytes, total))
            .map_err(|e| failed(fetch_detail(e)))?;
        done += size;
    }
    write("revision", &format!("{commit}\n"))
}

/// The weight files a sharded model's index names, each a plain `.safetensors` file name (an
/// index cannot make the download write elsewhere).
fn shards(index: &str) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_str(index).map_err(|error| format!("its {WEIGHT_INDEX} does not parse: {error}"))?;
    let mut shards: Vec<String> = index.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    match shards.iter().find(|s| s.contains(['/', '\\']) || !s.ends_with(".safetensors") || s.starts_with('.')) {
        Some(bad) => Err(format!("its index names a weight file `{bad}` that is not a plain .safetensors file name")),
        None => Ok(shards),
    }
}

/// A download error without its hint (the hub error gives its own).
fn fetch_detail(error: FetchError) -> String {
    error.to_string().lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_organization_slash_model_are_refused() {
        for name in ["model", "a/b/c", "../x", "a/..", "a/b@", "a/b@../c", "a/b@x/y"] {
            assert!(matches!(parse_name(name), Err(HubError::Name(_))), "{name}");
        }
        assert_eq!(parse_name("Qwen/Qwen2.5-Coder-7B-Instruct").unwrap(), ("Qwen/Qwen2.5-Coder-7B-Instruct", None));
        assert_eq!(parse_name("a/b@0123abc").unwrap(), ("a/b", Some("0123abc")));
    }

    #[test]
    fn an_index_names_plain_weight_files_only() {
        assert_eq!(
            shards(r#"{"weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors", "c": "m-1.safetensors"}}"#).unwrap(),
            ["m-1.safetensors", "m-2.safetensors"]
        );
        for bad in ["../escaped.safetensors", "sub/x.safetensors", "x.bin", ".hidden.safetensors"] {
            let index = format!(r#"{{"weight_map": {{"w": "{bad}"}}}}"#);
            assert!(shards(&index).unwrap_err().contains("not a plain .safetensors"), "{bad}");
        }
    }
}
