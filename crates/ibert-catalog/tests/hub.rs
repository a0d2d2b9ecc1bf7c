//! Hugging Face hub models served from a loopback port: the real default model as a folder
//! (converted from its GGUF file), downloaded once at one commit, checked, and loadable; a
//! missing model, a path-escaping weight index and an unreachable hub fail clearly.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ibert_catalog::{Hub, ensure_hub_model, ensure_test_model};
use ibert_model::LocalModel;
use ibert_model::convert::cached_hf_folder;
use ibert_oracle::{PythonEnv, cache_dir};

mod common;

fn python() -> PathBuf {
    PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment: {error}")).python()
}

/// The default model as a folder, converted once.
fn folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let gguf = ensure_test_model(&python(), &cache_dir()).unwrap_or_else(|error| panic!("the default model: {error}"));
        cached_hf_folder(&gguf).unwrap_or_else(|error| panic!("the default model as a folder: {error}"))
    })
}

/// A Hugging Face hub on a loopback port: each repository's files at
/// `/{repo}/resolve/{COMMIT}/{file}`, listed (weights with their sha256) by
/// `/api/models/{repo}/revision/main`. Records each request's path and `Authorization` header.
struct LocalHub {
    endpoint: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// A request's path and its `Authorization` header.
type Request = (String, Option<String>);

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn local_hub(repos: Vec<(&'static str, Vec<(&'static str, PathBuf)>)>) -> LocalHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut routes: HashMap<String, Vec<u8>> = HashMap::new();
    for (repo, files) in repos {
        let siblings: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, path)| {
                let size = std::fs::metadata(path).unwrap().len();
                let lfs = name.ends_with(".safetensors").then(|| serde_json::json!({"sha256": ibert_fetch::sha256_file(path).unwrap(), "size": size}));
                serde_json::json!({"rfilename": name, "size": size, "lfs": lfs})
            })
            .collect();
        routes
            .insert(format!("/api/models/{repo}/revision/main?blobs=true"), serde_json::json!({"sha": COMMIT, "siblings": siblings}).to_string().into_bytes());
        for (name, path) in files {
            routes.insert(format!("/{repo}/resolve/{COMMIT}/{name}"), std::fs::read(path).unwrap());
        }
    }
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let (path, authorization) = common::read_request(&stream, "authorization");
            let (status, body) = match routes.get(&path) {
                Some(body) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", b"not found".as_slice()),
            };
            log.lock().unwrap().push((path, authorization));
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
        }
    });
    LocalHub { endpoint, requests }
}

#[test]
fn hub_models_download_once_at_one_commit_checked_and_fail_clearly() {
    let files = |names: &[&'static str]| names.iter().map(|name| (*name, folder().join(name))).collect::<Vec<_>>();
    let evil_index = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(evil_index.path(), r#"{"weight_map": {"w": "../../escaped.safetensors"}}"#).unwrap();
    let mut evil = files(&["config.json", "tokenizer.json"]);
    evil.push(("model.safetensors.index.json", evil_index.path().to_path_buf()));
    let served = local_hub(vec![
        ("HuggingFaceTB/SmolLM2-135M-Instruct", files(&["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"])),
        ("Evil/Model", evil),
        ("Gguf/Only", files(&["config.json", "tokenizer.json"])),
    ]);
    let hub = Hub { endpoint: served.endpoint.clone(), token: Some("secret".to_string()) };
    let cache = tempfile::tempdir().unwrap();

    let mut last = (0, 0);
    let downloaded = ensure_hub_model("HuggingFaceTB/SmolLM2-135M-Instruct", &hub, cache.path(), &mut |done, total| last = (done, total)).unwrap();
    assert!(downloaded.starts_with(cache.path()));
    let weights = std::fs::metadata(folder().join("model.safetensors")).unwrap().len();
    assert_eq!(last, (weights, weights), "progress counts the weights' bytes");
    assert_eq!(std::fs::read(downloaded.join("model.safetensors")).unwrap(), std::fs::read(folder().join("model.safetensors")).unwrap());
    assert_eq!(std::fs::read_to_string(downloaded.join("revision")).unwrap().trim(), COMMIT);
    let requests = served.requests.lock().unwrap().clone();
    assert!(requests.iter().skip(1).all(|(path, _)| path.contains(&format!("/resolve/{COMMIT}/"))), "every file at the listed commit: {requests:?}");
    assert!(requests.iter().all(|(_, auth)| auth.as_deref() == Some("Bearer secret")), "the token goes with every request: {requests:?}");
    let engine = LocalModel::load(&downloaded).unwrap();
    assert!(engine.backend().starts_with("candle"), "{}", engine.backend());
    let before = served.requests.lock().unwrap().len();
    assert_eq!(ensure_hub_model("HuggingFaceTB/SmolLM2-135M-Instruct", &hub, cache.path(), &mut |_, _| {}).unwrap(), downloaded);
    assert_eq!(served.requests.lock().unwrap().len(), before, "a cached folder is not fetched again");

    let missing = ensure_hub_model("HuggingFaceTB/NoSuchModel", &hub, cache.path(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(missing.contains("cannot download `HuggingFaceTB/NoSuchModel`") && missing.contains("404") && missing.contains("--model-path DIR"), "{missing}");
    let refused = ensure_hub_model("Evil/Model", &hub, cache.path(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(refused.contains("not a plain .safetensors file name"), "{refused}");
    let gguf_only = ensure_hub_model("Gguf/Only", &hub, cache.path(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(gguf_only.contains("has no model.safetensors"), "{gguf_only}");
    let hub_folder: Vec<String> =
        std::fs::read_dir(cache.path().join("models/hub")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(hub_folder, ["HuggingFaceTB--SmolLM2-135M-Instruct"], "nothing half-downloaded is left");
    assert!(!cache.path().join("models/escaped.safetensors").exists() && !cache.path().join("escaped.safetensors").exists());

    let offline = Hub { endpoint: "http://127.0.0.1:9".to_string(), token: None };
    let error = ensure_hub_model("Qwen/Qwen2.5-Coder-7B-Instruct", &offline, cache.path(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(error.contains("cannot download") && error.contains("--model-path DIR"), "{error}");
}
