//! What the loopback servers of the download tests share.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

/// Reads one HTTP request's head from `stream`: the path of its request line, and the value of
/// the header `wanted` (matched case-insensitively) if it was sent.
pub fn read_request(stream: &TcpStream, wanted: &str) -> (String, Option<String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut value = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((_, found)) = line.split_once(':').filter(|(name, _)| name.trim().eq_ignore_ascii_case(wanted)) {
            value = Some(found.trim().to_string());
        }
    }
    (request_line.split_whitespace().nth(1).unwrap_or("/").to_string(), value)
}
