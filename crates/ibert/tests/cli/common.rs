//! Running the real `ibert` binary with a standard input, for the end-to-end tests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `ibert` binary, running the small model (SmolLM2-135M) unless a test names another: the
/// default (Qwen2.5-Coder-1.5B) is a 1.1 GB download and seconds per answer, which belongs in
/// `ibert eval` runs, not in the test suite.
pub fn ibert() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ibert"));
    command.env("IBERT_MODEL_NAME", "smollm2-135m");
    command
}

pub fn ibert_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run_with_stdin(ibert(), dir, args, stdin)
}

/// `command` (an [`ibert`] a test has adjusted) with `args`, run in `dir` with `stdin`.
pub fn run_with_stdin(mut command: Command, dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = command.args(args).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ibert runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
