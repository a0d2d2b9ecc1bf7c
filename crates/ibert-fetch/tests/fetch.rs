//! Downloads against a real HTTP server on loopback (a few lines of std networking): whole
//! files, resumed parts, wrong hashes and missing files.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use ibert_fetch::{FetchError, Pinned, fetch, part_path, sha256_file};

/// Serves `body` at every path but `/missing`, honouring `Range: bytes=N-`; records the range
/// header of each request.
fn serve(body: &'static [u8]) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut range = None;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(value.trim().trim_end_matches('-').to_string());
                }
            }
            seen.lock().unwrap().push(range.clone());
            let response = if request_line.contains("/missing") {
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
            } else if let Some(start) = range.map(|r| r.parse::<usize>().unwrap()) {
                let rest = &body[start..];
                let mut head = format!("HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", rest.len()).into_bytes();
                head.extend_from_slice(rest);
                head
            } else {
                let mut head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).into_bytes();
                head.extend_from_slice(body);
                head
            };
            stream.write_all(&response).unwrap();
        }
    });
    (address, ranges)
}

const BODY: &[u8] = b"the quick brown fox jumps over the lazy dog, again and again and again";

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    ibert_fetch::hex(&sha2::Sha256::digest(bytes))
}

#[test]
fn a_whole_file_arrives_under_its_name_with_progress() {
    let (address, _) = serve(BODY);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub/file.bin");
    let sha = sha256(BODY);
    let mut last = (0, None);
    fetch(&ibert_fetch::agent(), Pinned { url: &format!("{address}/file"), sha256: &sha }, &dest, |done, total| last = (done, total)).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), BODY);
    assert_eq!(last, (BODY.len() as u64, Some(BODY.len() as u64)));
    assert!(!part_path(&dest).exists());
    assert_eq!(sha256_file(&dest).unwrap(), sha);
}

#[test]
fn a_partial_download_is_resumed_from_where_it_stopped() {
    let (address, ranges) = serve(BODY);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    std::fs::write(part_path(&dest), &BODY[..20]).unwrap();
    fetch(&ibert_fetch::agent(), Pinned { url: &format!("{address}/file"), sha256: &sha256(BODY) }, &dest, |_, _| {}).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), BODY);
    assert_eq!(ranges.lock().unwrap().as_slice(), &[Some("20".to_string())]);
}

#[test]
fn a_wrong_hash_keeps_nothing_and_says_so() {
    let (address, _) = serve(BODY);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    let wrong = "0".repeat(64);
    let error = fetch(&ibert_fetch::agent(), Pinned { url: &format!("{address}/file"), sha256: &wrong }, &dest, |_, _| {}).unwrap_err();
    assert!(matches!(error, FetchError::Checksum { .. }), "{error}");
    assert!(error.to_string().contains(&sha256(BODY)), "{error}");
    assert!(!dest.exists() && !part_path(&dest).exists());
}

#[test]
fn a_missing_file_is_an_http_error_with_its_status() {
    let (address, _) = serve(BODY);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    let error = fetch(&ibert_fetch::agent(), Pinned { url: &format!("{address}/missing"), sha256: &sha256(BODY) }, &dest, |_, _| {}).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("404") && message.contains("/missing") && message.contains("hint:"), "{message}");
    assert!(!dest.exists());
}

#[test]
fn an_unreachable_server_is_an_http_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    // Port 9 (discard) on loopback: nothing listens there.
    let error = fetch(&ibert_fetch::agent(), Pinned { url: "http://127.0.0.1:9/file", sha256: &sha256(BODY) }, &dest, |_, _| {}).unwrap_err();
    assert!(matches!(error, FetchError::Http { .. }), "{error}");
}
