//! The real `ibert` binary, run in a fresh temporary folder per test.

use std::path::Path;
use std::process::Output;

use crate::common;

fn ibert(dir: &Path, args: &[&str]) -> Output {
    common::ibert().args(args).current_dir(dir).output().expect("ibert runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn version_names_ibert_ibis_and_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert(dir.path(), &["--version"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(stdout.starts_with("ibert 0."), "{stdout}");
    assert!(stdout.contains("ibis-framework 12.0.0"), "{stdout}");
    assert!(stdout.contains("duckdb v1."), "{stdout}");
}

#[test]
fn help_exists_on_every_level() {
    let dir = tempfile::tempdir().unwrap();
    for args in
        [vec!["--help"], vec!["data", "--help"], vec!["data", "generate", "--help"], vec!["data", "validate", "--help"], vec!["model", "info", "--help"]]
    {
        let output = ibert(dir.path(), &args);
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn generate_writes_verified_examples_and_is_byte_identical_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["data", "generate", "--template", "select_where_status,window_running_total", "--seed", "7", "-j", "2"];
    let first = ibert(dir.path(), &[&args[..], &["-o", "a"]].concat());
    assert!(first.status.success(), "{}", text(&first));
    let second = ibert(dir.path(), &[&args[..], &["-o", "b"]].concat());
    assert!(second.status.success(), "{}", text(&second));
    let a = std::fs::read(dir.path().join("a/train.jsonl")).unwrap();
    let b = std::fs::read(dir.path().join("b/train.jsonl")).unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, b, "same seed, same bytes");
    let lines = String::from_utf8(a).unwrap();
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["task"], "sql_to_ibis");
        assert_eq!(record["verification"]["level"], "executed");
        assert_eq!(record["verification"]["fixture_seeds"], serde_json::json!([7001, 7002, 7003]));
    }
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("Where the time went") && stdout.contains("Per template"), "{stdout}");
}

#[test]
fn validate_gives_a_verdict_per_record_and_fails_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let schema = r#"{"tables": {"events": {"schema": {"user_id": "int64", "amount": "float64"}}}}"#;
    let good = format!(
        r#"{{"id": "good", "task": "sql_to_ibis", "context": {schema}, "input": {{"sql": "SELECT user_id FROM events WHERE amount > 10"}}, "target": {{"ibis": "events.filter(events.amount > 10).select('user_id')"}}}}"#
    );
    let wrong = format!(
        r#"{{"id": "wrong", "task": "sql_to_ibis", "context": {schema}, "input": {{"sql": "SELECT user_id FROM events WHERE amount > 10"}}, "target": {{"ibis": "events.filter(events.amount < 10).select('user_id')"}}}}"#
    );
    let file = dir.path().join("mine.jsonl");
    std::fs::write(&file, format!("{good}\n{wrong}\n{{\"id\": \"broken\"\n")).unwrap();

    let output = ibert(dir.path(), &["data", "validate", "mine.jsonl", "-o", "ok.jsonl"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(stdout.contains("mine.jsonl:1 good verified"), "{stdout}");
    assert!(stdout.contains("mine.jsonl:2 wrong REJECTED mismatch"), "{stdout}");
    assert!(stdout.contains("mine.jsonl:3: "), "{stdout}");
    assert!(stdout.contains("1 verified, 1 rejected, 1 malformed"), "{stdout}");
    // Without the malformed line, the rejected record decides the status: 3.
    std::fs::write(dir.path().join("two.jsonl"), format!("{good}\n{wrong}\n")).unwrap();
    assert_eq!(ibert(dir.path(), &["data", "validate", "two.jsonl", "-q"]).status.code(), Some(3));
    let stamped = std::fs::read_to_string(dir.path().join("ok.jsonl")).unwrap();
    assert_eq!(stamped.lines().count(), 1);
    assert!(stamped.contains("\"level\":\"executed\""), "{stamped}");
}

#[test]
fn malformed_template_names_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tpl")).unwrap();
    std::fs::write(dir.path().join("tpl/bad.yaml"), "name: bad\nsql_template: SELECT 1\nibis_template: [oops\n").unwrap();
    let output = ibert(dir.path(), &["data", "generate", "--templates", "tpl", "-o", "out"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tpl/bad.yaml:"), "{stderr}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn unknown_template_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert(dir.path(), &["data", "generate", "--template", "no_such_template"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no template named `no_such_template`"));
}

#[test]
fn missing_python_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = common::ibert()
        .args(["data", "generate", "--template", "select_where_status"])
        .current_dir(dir.path())
        .env("IBERT_CACHE_DIR", dir.path().join("cache"))
        .env("IBERT_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`/nonexistent/python3` was not found") && stderr.contains("IBERT_PYTHON"), "{stderr}");
}

#[test]
fn failing_pip_is_a_clear_error_and_leaves_no_ready_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let output = common::ibert()
        .args(["data", "generate", "--template", "select_where_status"])
        .current_dir(dir.path())
        .env("IBERT_CACHE_DIR", &cache)
        // An index that refuses connections at once, and no wheel cache to fall back on.
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("installing the pinned Python packages"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    let ready_markers = walk(&cache).into_iter().filter(|p| p.ends_with(".ibert-ready")).count();
    assert_eq!(ready_markers, 0);
    assert!(!dir.path().join("data").exists(), "no output written");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                found.extend(walk(&path));
            }
            found.push(path);
        }
    }
    found
}

/// The command reference as users see it; a change to flags shows up here for review.
#[test]
fn help_text_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [("help_data_generate", ["data", "generate", "--help"]), ("help_data_validate", ["data", "validate", "--help"])] {
        let output = ibert(dir.path(), &args);
        insta::assert_snapshot!(name, String::from_utf8_lossy(&output.stdout));
    }
}

/// One generated record, whole: field names, order and the verification object.
#[test]
fn generated_record_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert(dir.path(), &["data", "generate", "--template", "select_where_status", "-o", "out"]);
    assert!(output.status.success(), "{}", text(&output));
    let first = std::fs::read_to_string(dir.path().join("out/train.jsonl")).unwrap().lines().next().unwrap().to_string();
    let mut record: serde_json::Value = serde_json::from_str(&first).unwrap();
    record["verification"]["duckdb_version"] = "[duckdb version]".into();
    insta::assert_json_snapshot!("record_select_where_status", record);
}

#[test]
fn missing_input_file_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert(dir.path(), &["data", "validate", "absent.jsonl"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim(), "error: opening `absent.jsonl`: No such file or directory (os error 2)");
}

#[test]
fn model_info_describes_the_default_model_and_refuses_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert(dir.path(), &["model", "info"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    assert!(stdout.contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{stdout}");
    assert!(stdout.contains("architecture      llama"), "{stdout}");
    assert!(stdout.contains("context length    8192 tokens"), "{stdout}");
    assert!(stdout.contains("<|im_start|>assistant"), "{stdout}");
    assert!(stdout.contains("built-in adapter  smollm2-135m-ibert"), "{stdout}");

    std::fs::write(dir.path().join("notes.gguf"), "not a model").unwrap();
    let output = ibert(dir.path(), &["model", "info", "--model-path", "notes.gguf"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("notes.gguf is not a GGUF model file"), "{}", text(&output));
}
