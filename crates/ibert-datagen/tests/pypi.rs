//! `--pypi` sources against a package index served on loopback (a few lines of std networking):
//! a source distribution made here, found by its pinned sha256 in the index's JSON, fetched,
//! unpacked with its hostile entries left out, and reused from the cache; and a corrupted
//! download refused with nothing unpacked.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ibert_datagen::mining::pypi::{PypiError, PypiPackage, fetch_package};
use sha2::{Digest, Sha256};

/// A `.tar.gz` with a package file, a README, and three entries that must not be written: one
/// climbing out with `..`, one with an absolute path, and a symbolic link.
fn sdist() -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, data).unwrap();
    };
    add("demo-1.0/demo/core.py", b"def f(t):\n    \"\"\"Keep big rows.\n\n    Parameters\n    ----------\n    t : Table\n    \"\"\"\n    return t\n");
    add("demo-1.0/README.md", b"```python\nimport ibis\nt = ibis.table({'a': 'int64'}, name='t')\nexpr = t.filter(t.a > 1)\n```\n");
    let mut raw = |name: &[u8], kind: tar::EntryType, data: &[u8]| {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    };
    raw(b"demo-1.0/../../escaped.py", tar::EntryType::Regular, b"x = 1\n");
    raw(b"/tmp/ibert-absolute-escape.py", tar::EntryType::Regular, b"x = 1\n");
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "demo-1.0/passwd.md", "/etc/passwd").unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    ibert_fetch::hex(&Sha256::digest(bytes))
}

/// Serves `/pypi/demo/json` (the release document is missing, as on some mirrors) and the
/// file, with its bytes changed while `corrupt` holds; counts the file's downloads.
fn serve(file: Vec<u8>, corrupt: Arc<Mutex<bool>>, downloads: Arc<Mutex<usize>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let document = serde_json::json!({"releases": {"1.0": [
        {"filename": "demo-1.0-py3-none-any.whl", "url": format!("{base}/files/other.whl"), "digests": {"sha256": "0".repeat(64)}},
        {"filename": "demo-1.0.tar.gz", "url": format!("{base}/files/demo-1.0.tar.gz"), "digests": {"sha256": sha256(&file)}},
    ]}})
    .to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut request_line).unwrap();
            while reader.read_line(&mut String::new()).unwrap() > 2 {}
            let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = match path.as_str() {
                "/pypi/demo/json" => ("200 OK", document.clone().into_bytes()),
                "/files/demo-1.0.tar.gz" => {
                    *downloads.lock().unwrap() += 1;
                    let mut bytes = file.clone();
                    if *corrupt.lock().unwrap() {
                        bytes[40] ^= 0xff;
                    }
                    ("200 OK", bytes)
                }
                _ => ("404 Not Found", Vec::new()),
            };
            let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    base
}

fn package(sha256: String) -> PypiPackage {
    PypiPackage { name: "demo".into(), version: "1.0".into(), file: "demo-1.0.tar.gz".into(), sha256, license: "MIT".into() }
}

#[test]
fn a_pinned_package_is_fetched_unpacked_without_its_hostile_entries_and_then_reused_from_the_cache() {
    let file = sdist();
    let (corrupt, downloads) = (Arc::new(Mutex::new(false)), Arc::new(Mutex::new(0)));
    let index = serve(file.clone(), Arc::clone(&corrupt), Arc::clone(&downloads));
    let work = tempfile::tempdir().unwrap();
    let demo = package(sha256(&file));

    let source = fetch_package(&demo, &index, work.path()).unwrap();
    assert_eq!(source.label, "pypi:demo==1.0");
    assert_eq!(source.license.as_deref(), Some("MIT"));
    assert!(source.root.join("demo-1.0/demo/core.py").is_file() && source.root.join("demo-1.0/README.md").is_file());
    assert!(!source.root.join("demo-1.0/passwd.md").exists(), "a link is not followed or written");
    assert!(!work.path().join("escaped.py").exists() && !work.path().join("pypi/escaped.py").exists(), "`..` stays inside");
    assert!(!Path::new("/tmp/ibert-absolute-escape.py").exists(), "an absolute path is not written");
    let marker = std::fs::read_to_string(source.root.join(".ibert-unpacked")).unwrap();
    assert!(marker.contains("skipped entries: 3"), "{marker}");

    // Unpacked once: a second call reads the folder, whatever the index serves now.
    *corrupt.lock().unwrap() = true;
    let again = fetch_package(&demo, &index, work.path()).unwrap();
    assert_eq!(again.root, source.root);
    assert_eq!(*downloads.lock().unwrap(), 1);
}

#[test]
fn a_download_that_fails_its_sha256_is_refused_and_leaves_nothing_unpacked() {
    let file = sdist();
    let (corrupt, downloads) = (Arc::new(Mutex::new(true)), Arc::new(Mutex::new(0)));
    let index = serve(file.clone(), Arc::clone(&corrupt), downloads);
    let work = tempfile::tempdir().unwrap();
    let demo = package(sha256(&file));
    let error = fetch_package(&demo, &index, work.path()).unwrap_err();
    assert!(matches!(error, PypiError::Fetch(ibert_fetch::FetchError::Checksum { .. })), "{error}");
    let left: Vec<String> =
        std::fs::read_dir(work.path().join("pypi")).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(left.is_empty(), "nothing under a final name, no staging folder: {left:?}");

    // A release whose pinned file the index does not list is refused by name.
    let error = fetch_package(&package("1".repeat(64)), &index, work.path()).unwrap_err().to_string();
    assert!(error.contains("lists no file of demo==1.0 with the pinned sha256"), "{error}");

    // Once the index serves the right bytes, a re-run succeeds.
    *corrupt.lock().unwrap() = false;
    assert!(fetch_package(&demo, &index, work.path()).unwrap().root.join("demo-1.0/README.md").is_file());
}
