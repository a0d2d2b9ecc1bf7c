//! Where mining reads from: a local folder, a git repository (a working tree, a bare repository,
//! or a URL cloned when the network allows), or the installed Ibis package. A list of sources can
//! come from a YAML file.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::fingerprint;

/// The Ibis package of the oracle's environment, as a source.
pub fn installed_ibis() -> Result<MineSource, ibert_oracle::OracleError> {
    let env = ibert_oracle::PythonEnv::ensure(&|_| {})?;
    let root = env.package_dir("ibis")?;
    let label = format!("ibis-framework {} (installed)", ibert_oracle::PINNED_IBIS_VERSION);
    Ok(MineSource { label, root, commit: None, ibis_package: true, license: Some("Apache-2.0".to_string()) })
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("cloning {url} failed: {detail}\nwithout network access, clone it on a machine that has it and pass the local path (a bare repository works too)")]
    Clone { url: String, detail: String },
    #[error("running git: {0} (is git installed?)")]
    Git(String),
    #[error("{path}: {detail}")]
    Config { path: PathBuf, detail: String },
}

/// A source ready to walk.
#[derive(Debug, Clone)]
pub struct MineSource {
    /// The path or URL as given, for provenance.
    pub label: String,
    /// The folder to walk.
    pub root: PathBuf,
    /// The commit checked out, for git sources.
    pub commit: Option<String>,
    /// Whether the files are the installed Ibis package (documents its own API).
    pub ibis_package: bool,
    /// The license of its files, where it is known (a pinned package, Ibis itself).
    pub license: Option<String>,
}

/// `sources:` in a YAML file: paths (relative to the file) or URLs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceList {
    sources: Vec<String>,
}

/// The sources a YAML file lists.
pub fn read_source_list(path: &Path) -> Result<Vec<String>, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|error| SourceError::Config { path: path.to_path_buf(), detail: error.to_string() })?;
    let list: SourceList = serde_yaml_ng::from_str(&text).map_err(|error| {
        let at = error.location().map(|l| format!("line {}: ", l.line())).unwrap_or_default();
        SourceError::Config { path: path.to_path_buf(), detail: format!("{at}{error} (expected `sources:` with a list of paths or URLs)") }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(list.sources.into_iter().map(|s| if is_url(&s) || Path::new(&s).is_absolute() { s } else { base.join(s).display().to_string() }).collect())
}

pub fn is_url(text: &str) -> bool {
    ["http://", "https://", "git://", "ssh://", "git@"].iter().any(|prefix| text.starts_with(prefix))
}

/// Makes `spec` (a path or URL) walkable; URLs and bare repositories are cloned under `work`.
pub fn resolve(spec: &str, work: &Path) -> Result<MineSource, SourceError> {
    if is_url(spec) {
        let target = work.join(format!("clone-{:016x}", fingerprint(spec)));
        if !target.join(".git").exists() {
            clone(spec, &target)?;
        }
        return Ok(MineSource { label: spec.to_string(), commit: head_commit(&target), root: target, ibis_package: false, license: None });
    }
    let path = PathBuf::from(spec);
    if !path.exists() {
        return Err(SourceError::Missing(path));
    }
    let bare = path.join("HEAD").is_file() && path.join("objects").is_dir() && !path.join(".git").exists();
    if bare {
        let target = work.join(format!("clone-{:016x}", fingerprint(spec)));
        if !target.join(".git").exists() {
            clone(spec, &target)?;
        }
        return Ok(MineSource { label: spec.to_string(), commit: head_commit(&target), root: target, ibis_package: false, license: None });
    }
    let commit = if path.join(".git").exists() { head_commit(&path) } else { None };
    Ok(MineSource { label: spec.to_string(), root: path, commit, ibis_package: false, license: None })
}

fn clone(from: &str, target: &Path) -> Result<(), SourceError> {
    let _ = std::fs::remove_dir_all(target);
    let output = Command::new("git")
        .args(["clone", "--quiet", "--depth", "1", from])
        .arg(target)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|error| SourceError::Git(error.to_string()))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(target);
        return Err(SourceError::Clone { url: from.to_string(), detail: String::from_utf8_lossy(&output.stderr).trim().to_string() });
    }
    Ok(())
}

fn head_commit(repo: &Path) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(repo).args(["rev-parse", "HEAD"]).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_and_an_unreachable_url_are_clear_errors() {
        let work = tempfile::tempdir().unwrap();
        assert!(matches!(resolve("/no/such/folder", work.path()), Err(SourceError::Missing(_))));
        let error = resolve("https://invalid.invalid/repo.git", work.path()).unwrap_err().to_string();
        assert!(error.contains("cloning https://invalid.invalid/repo.git failed") && error.contains("pass the local path"), "{error}");
    }

    #[test]
    fn a_bare_repository_is_cloned_and_its_commit_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let git = |args: &[&str], cwd: &Path| assert!(Command::new("git").args(args).current_dir(cwd).output().unwrap().status.success(), "git {args:?}");
        std::fs::create_dir(&repo).unwrap();
        git(&["init", "--quiet"], &repo);
        std::fs::write(repo.join("notes.md"), "```python\nx = 1\n```\n").unwrap();
        git(&["add", "."], &repo);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "one"], &repo);
        git(&["clone", "--quiet", "--bare", "repo", "bare.git"], dir.path());
        let source = resolve(&dir.path().join("bare.git").display().to_string(), &dir.path().join("work")).unwrap();
        assert!(source.root.join("notes.md").exists());
        assert_eq!(source.commit.as_deref().map(str::len), Some(40));
    }

    #[test]
    fn a_source_list_resolves_paths_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sources.yaml"), "sources:\n  - docs\n  - https://example.org/r.git\n").unwrap();
        let list = read_source_list(&dir.path().join("sources.yaml")).unwrap();
        assert_eq!(list, [dir.path().join("docs").display().to_string(), "https://example.org/r.git".to_string()]);
        std::fs::write(dir.path().join("bad.yaml"), "sources: [\n").unwrap();
        assert!(read_source_list(&dir.path().join("bad.yaml")).unwrap_err().to_string().contains("bad.yaml: line"), "names the file and line");
    }
}
