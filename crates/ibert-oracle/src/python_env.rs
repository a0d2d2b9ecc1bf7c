//! The Python side of the oracle, installed by iBERT itself: a virtual environment built from the
//! lock file in the repository, plus the worker package, both kept in the user cache directory.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::{OracleError, cache_dir};

/// `python/requirements.lock`: every package of the oracle's Python closure, pinned exactly.
pub const LOCK_FILE: &str = include_str!("../../../python/requirements.lock");

/// The `ibis-framework` version the lock file pins; checked after installation.
pub const PINNED_IBIS_VERSION: &str = "12.0.0";

/// The worker package, embedded so that the binary works away from the repository.
const WORKER_SOURCES: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../python/ibert_worker/__init__.py")),
    ("__main__.py", include_str!("../../../python/ibert_worker/__main__.py")),
    ("oracle.py", include_str!("../../../python/ibert_worker/oracle.py")),
    ("sandbox.py", include_str!("../../../python/ibert_worker/sandbox.py")),
];

/// Marks a virtual environment whose installation finished; anything without it is rebuilt.
const READY_MARKER: &str = ".ibert-ready";

/// A ready Python environment: the venv's interpreter and the folder holding `ibert_worker`.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    venv: PathBuf,
    worker_dir: PathBuf,
}

impl PythonEnv {
    /// The environment in the default cache directory, created on first use.
    /// `progress` receives one line per step (for a spinner); installation takes a minute or two.
    pub fn ensure(progress: &dyn Fn(&str)) -> Result<Self, OracleError> {
        Self::ensure_in(&cache_dir().join("python"), progress)
    }

    /// As [`PythonEnv::ensure`], under `root`. Safe to call from several processes at once: the
    /// first one installs while the others wait on a file lock.
    pub fn ensure_in(root: &Path, progress: &dyn Fn(&str)) -> Result<Self, OracleError> {
        let venv = root.join(format!("venv-{}", short_hash([LOCK_FILE.as_bytes()])));
        let lock = lock_venv(&venv)?;
        if !venv.join(READY_MARKER).exists() {
            install_venv(&venv, progress)?;
        }
        let worker_dir = install_worker_sources(root)?;
        drop(lock);
        Ok(PythonEnv { venv, worker_dir })
    }

    /// The venv's interpreter.
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }

    /// Where an installed package of the environment lives (`ibis` -> `.../site-packages/ibis`).
    pub fn package_dir(&self, package: &str) -> Result<PathBuf, OracleError> {
        let script = format!("import os, {package}; print(os.path.dirname({package}.__file__))");
        let output = Command::new(self.python()).args(["-c", &script]).output().map_err(|e| OracleError::io("running", self.python(), e))?;
        if !output.status.success() {
            return Err(OracleError::Protocol(format!("locating the package `{package}`: {}", String::from_utf8_lossy(&output.stderr).trim())));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
    }

    /// The folder to put on `PYTHONPATH` so that `python -m ibert_worker` runs the worker.
    pub fn worker_dir(&self) -> &Path {
        &self.worker_dir
    }
}

/// The first 12 hex digits of the sha256 of the concatenated parts: names cache folders by content.
fn short_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().iter().take(6).map(|byte| format!("{byte:02x}")).collect()
}

/// The interpreter that creates the venv: `$IBERT_PYTHON`, else `python3`.
fn base_python() -> String {
    std::env::var("IBERT_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".to_string())
}

fn check_python_version(python: &str) -> Result<(), OracleError> {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| OracleError::PythonMissing { python: python.to_string(), source })?;
    let found = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let (major, minor) = found.split_once('.').unwrap_or(("0", "0"));
    let new_enough = (major.parse::<u32>().unwrap_or(0), minor.parse::<u32>().unwrap_or(0)) >= (3, 10);
    if !output.status.success() || !new_enough {
        let found = if found.is_empty() { String::from_utf8_lossy(&output.stderr).trim().to_string() } else { found };
        return Err(OracleError::PythonTooOld { python: python.to_string(), found });
    }
    Ok(())
}

/// A venv of its own for packages pinned in a requirements file beside the oracle's (the test
/// suites' `openai` client and `safetensors`), in the cache's python folder, named by `name` and
/// the file's hash. Made the way the oracle's is: under a file lock, so that tests running at
/// once install it once, and marked ready only when pip has finished, so that an install cut
/// short is redone. Returns its interpreter.
pub fn ensure_requirements_venv(name: &str, requirements: &Path) -> Result<PathBuf, OracleError> {
    let text = fs::read_to_string(requirements).map_err(|e| OracleError::io("reading", requirements, e))?;
    let venv = cache_dir().join("python").join(format!("{name}-{}", short_hash([text.as_bytes()])));
    let _lock = lock_venv(&venv)?;
    let marker = venv.join(READY_MARKER);
    if !marker.exists() {
        create_and_install(&venv, &text, &[], &format!("installing {}", requirements.display()), &|_| {})?;
        fs::write(&marker, "installed\n").map_err(|e| OracleError::io("writing", &marker, e))?;
    }
    Ok(venv.join("bin").join("python"))
}

/// Holds `<venv>.lock` beside `venv` (creating their folder), so that one process installs it
/// while the others wait; released when the file is dropped.
fn lock_venv(venv: &Path) -> Result<fs::File, OracleError> {
    let root = venv.parent().expect("a venv lives in a folder");
    fs::create_dir_all(root).map_err(|e| OracleError::io("creating", root, e))?;
    let lock_path = root.join(format!("{}.lock", venv.file_name().unwrap_or_default().to_string_lossy()));
    let lock = fs::File::create(&lock_path).map_err(|e| OracleError::io("creating", &lock_path, e))?;
    lock.lock().map_err(|e| OracleError::io("locking", &lock_path, e))?;
    Ok(lock)
}

fn install_venv(venv: &Path, progress: &dyn Fn(&str)) -> Result<(), OracleError> {
    create_and_install(venv, LOCK_FILE, &["--no-deps"], "installing ibis-framework and its pinned dependencies", progress)?;
    let venv_python = venv.join("bin").join("python");
    progress("checking the installed Ibis");
    let output = Command::new(&venv_python)
        .args(["-c", "import ibis; print(ibis.__version__)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| OracleError::io("running", &venv_python, e))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if version != PINNED_IBIS_VERSION {
        let log_tail = format!("`import ibis` gave version `{version}`: {}", String::from_utf8_lossy(&output.stderr).trim());
        return Err(OracleError::PipInstall { path: venv.to_path_buf(), status: "0".into(), log_tail });
    }
    let marker = venv.join(READY_MARKER);
    fs::write(&marker, format!("ibis-framework {version}\n")).map_err(|e| OracleError::io("writing", &marker, e))
}

/// Creates `venv` afresh (removing what an unfinished install left) and pip-installs the
/// `requirements` text into it, saved in the venv as `requirements.lock`.
fn create_and_install(venv: &Path, requirements: &str, pip_options: &[&str], what: &str, progress: &dyn Fn(&str)) -> Result<(), OracleError> {
    let python = base_python();
    check_python_version(&python)?;
    if venv.exists() {
        progress("removing an unfinished Python environment");
        fs::remove_dir_all(venv).map_err(|e| OracleError::io("removing", venv, e))?;
    }
    progress(&format!("creating the Python environment at {}", venv.display()));
    let output = Command::new(&python)
        .arg("-m")
        .arg("venv")
        .arg(venv)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| OracleError::PythonMissing { python: python.clone(), source })?;
    if !output.status.success() {
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(OracleError::VenvCreation { path: venv.to_path_buf(), detail });
    }

    let lock_copy = venv.join("requirements.lock");
    fs::write(&lock_copy, requirements).map_err(|e| OracleError::io("writing", &lock_copy, e))?;
    progress(what);
    let venv_python = venv.join("bin").join("python");
    let mut child = Command::new(&venv_python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input"])
        .args(pip_options)
        .args(["--progress-bar", "off", "-r"])
        .arg(&lock_copy)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| OracleError::PythonMissing { python: venv_python.display().to_string(), source })?;
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut log = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines().map_while(Result::ok) {
        progress(&format!("pip: {}", line.trim()));
        log.push(line);
    }
    let status = child.wait().map_err(|e| OracleError::io("waiting for pip in", venv, e))?;
    let stderr_text = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        log.extend(stderr_text.lines().map(str::to_string));
        let log_tail = log[log.len().saturating_sub(15)..].join("\n");
        let status = status.code().map_or_else(|| "killed".to_string(), |code| code.to_string());
        return Err(OracleError::PipInstall { path: venv.to_path_buf(), status, log_tail });
    }
    Ok(())
}

/// Writes the embedded worker package under `root/worker-<hash>/ibert_worker`, once per version of
/// its sources, through a temporary folder and a rename so that readers never see half of it.
fn install_worker_sources(root: &Path) -> Result<PathBuf, OracleError> {
    let hash = short_hash(WORKER_SOURCES.iter().flat_map(|(name, source)| [name.as_bytes(), source.as_bytes()]));
    let dir = root.join(format!("worker-{hash}"));
    if dir.join("ibert_worker").join("__main__.py").exists() {
        return Ok(dir);
    }
    let staging = root.join(format!("worker-{hash}.partial-{}", std::process::id()));
    let package = staging.join("ibert_worker");
    fs::create_dir_all(&package).map_err(|e| OracleError::io("creating", &package, e))?;
    for (name, source) in WORKER_SOURCES {
        let path = package.join(name);
        fs::write(&path, source).map_err(|e| OracleError::io("writing", &path, e))?;
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| OracleError::io("removing", &dir, e))?;
    }
    fs::rename(&staging, &dir).map_err(|e| OracleError::io("renaming into", &dir, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_pins_the_ibis_version_the_code_checks() {
        let pin = format!("ibis-framework=={PINNED_IBIS_VERSION}");
        assert!(LOCK_FILE.lines().any(|l| l.trim_end_matches('\\').trim() == pin), "lock file lacks `{pin}`");
    }

    /// Requirement lines (not comments, not `--hash` continuation lines).
    fn requirements() -> Vec<&'static str> {
        LOCK_FILE.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with(char::is_whitespace)).collect()
    }

    #[test]
    fn every_requirement_is_an_exact_pin_with_hashes() {
        assert!(requirements().len() >= 10);
        for (line, next) in LOCK_FILE.lines().zip(LOCK_FILE.lines().skip(1)) {
            if requirements().contains(&line) {
                assert!(line.contains("==") && line.ends_with('\\'), "`{line}` is not an exact pin followed by hashes");
                assert!(next.trim_start().starts_with("--hash=sha256:"), "`{line}` has no hash");
            }
        }
    }

    #[test]
    fn missing_python_names_the_interpreter_and_the_fix() {
        let error = check_python_version("/nonexistent/python3").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/python3"), "{message}");
        assert!(message.contains("IBERT_PYTHON"), "{message}");
    }

    #[test]
    fn worker_sources_are_written_once_and_completely() {
        let root = tempfile::tempdir().unwrap();
        let first = install_worker_sources(root.path()).unwrap();
        let second = install_worker_sources(root.path()).unwrap();
        assert_eq!(first, second);
        for (name, source) in WORKER_SOURCES {
            assert_eq!(fs::read_to_string(first.join("ibert_worker").join(name)).unwrap(), *source);
        }
    }
}
