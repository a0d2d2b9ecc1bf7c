//! Models by Hugging Face hub name (`Qwen/Qwen2.5-Coder-1.5B-Instruct`): the folder's files
//! (config.json, tokenizer files, safetensors weights, shards included) fetched once into the
//! cache. Python's standard library does the transfer (the oracle's interpreter is always
//! there); `HF_ENDPOINT` and `HF_TOKEN` are honoured as the hub's own tools do. Without network
//! the error says how to supply the files instead.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "cannot download `{repo}` from the Hugging Face hub ({endpoint}): {detail}\nhint: without network access, download the model folder (config.json, tokenizer.json, *.safetensors) on another machine and pass it with --model-path DIR (or model.model_path); a GGUF file works too"
    )]
    Download { repo: String, endpoint: String, detail: String },
    #[error("`{0}` is not a hub model name (expected `organization/model`)")]
    Name(String),
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// What runs in Python: download the named files of a repository, then the shards its index
/// lists; optional files may be missing.
const DOWNLOAD_SCRIPT: &str = r#"
import json, os, shutil, sys, urllib.parse, urllib.request
endpoint, repo, out = sys.argv[1:4]
token = os.environ.get("HF_TOKEN")

class SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Redirects keep the token only on the hub's own host (files are served from a CDN)."""
    def redirect_request(self, request, fp, code, message, headers, new_url):
        new = super().redirect_request(request, fp, code, message, headers, new_url)
        if new is not None and urllib.parse.urlsplit(new_url).netloc != urllib.parse.urlsplit(request.full_url).netloc:
            new.remove_header("Authorization")
        return new

opener = urllib.request.build_opener(SameHostAuth)
def get(name, required):
    url = f"{endpoint}/{repo}/resolve/main/{name}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with opener.open(request, timeout=60) as answer, open(os.path.join(out, name), "wb") as file:
            shutil.copyfileobj(answer, file)
        return True
    except Exception as error:
        if required:
            sys.exit(f"{url}: {error}")
        return False
get("config.json", True)
get("tokenizer.json", True)
get("tokenizer_config.json", False)
if get("model.safetensors.index.json", False):
    with open(os.path.join(out, "model.safetensors.index.json")) as file:
        shards = sorted(set(json.load(file)["weight_map"].values()))
    for shard in shards:
        # Only plain file names: an index cannot make the download write elsewhere.
        if os.path.basename(shard) != shard or not shard.endswith(".safetensors") or shard.startswith("."):
            sys.exit(f"the index names a weight file `{shard}` that is not a plain .safetensors file name")
        get(shard, True)
else:
    get("model.safetensors", True)
"#;

/// The local folder of hub model `repo`, downloaded with `python` first if the cache lacks it.
pub fn ensure_hub_model(repo: &str, python: &Path, cache_dir: &Path) -> Result<PathBuf, HubError> {
    let valid = repo.split('/').count() == 2
        && repo.split('/').all(|p| !p.is_empty() && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    if !valid {
        return Err(HubError::Name(repo.to_string()));
    }
    let target = cache_dir.join("models/hub").join(repo.replace('/', "--"));
    if target.join("config.json").exists() {
        return Ok(target);
    }
    let parent = target.parent().expect("a hub folder has a parent");
    std::fs::create_dir_all(parent).map_err(|source| HubError::Io { action: "creating", path: parent.to_path_buf(), source })?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755));
    let staging = builder.tempdir_in(parent).map_err(|source| HubError::Io { action: "writing in", path: parent.to_path_buf(), source })?;
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string());
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let download = |detail: String| HubError::Download { repo: repo.to_string(), endpoint: endpoint.clone(), detail };
    let output = Command::new(python)
        .args(["-c", DOWNLOAD_SCRIPT, &endpoint, repo])
        .arg(staging.path())
        .output()
        .map_err(|error| download(format!("running {}: {error}", python.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(download(stderr.trim().lines().last().unwrap_or("no detail").to_string()));
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &target).map_err(|source| HubError::Io { action: "moving the download to", path: target.clone(), source })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_organization_slash_model_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["model", "a/b/c", "../x", "a/.."] {
            assert!(matches!(ensure_hub_model(name, Path::new("python3"), dir.path()), Err(HubError::Name(_))), "{name}");
        }
    }
}
