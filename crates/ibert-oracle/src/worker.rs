//! One oracle worker: a `python -m ibert_worker` child process with pipes on all three streams.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::json;

use crate::cpu_clock::{CpuClock, CpuDeadline};
use crate::protocol::{CompileRequest, Compiled, FailureKind, ProgramFailure, RawResponse, WorkerHello};
use crate::{OracleError, PythonEnv};

/// Limits a worker runs under; see `python/ibert_worker/sandbox.py`.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Address-space limit of the worker process.
    pub memory_mb: u64,
    /// CPU seconds one request may use before the kernel ends the worker.
    pub cpu_seconds: u64,
    /// Time limit of one request, counted in the worker's CPU time (with a wall-clock
    /// backstop, see [`crate::cpu_clock`]); past it the worker is killed and replaced.
    pub timeout: Duration,
    /// How long a new worker may take to import Ibis and say hello.
    pub startup_timeout: Duration,
    /// DuckDB files the worker attaches read-only at start, by catalog name, before it locks
    /// its database's configuration (no file access afterwards): the data `execute` can use
    /// besides the rows a request carries.
    pub attach: Vec<(String, std::path::PathBuf)>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { memory_mb: 2048, cpu_seconds: 10, timeout: Duration::from_secs(10), startup_timeout: Duration::from_secs(120), attach: Vec::new() }
    }
}

/// The address-space limit of a worker that has databases attached (DuckDB's own limit in the
/// worker is set below it).
const ATTACHED_MEMORY_MB: u64 = 8192;

/// How a call to a worker ended without an answer; the worker is unusable afterwards.
#[derive(Debug)]
pub(crate) enum WorkerDown {
    TimedOut,
    Died(String),
}

impl WorkerDown {
    pub(crate) fn into_failure(self, timeout: Duration) -> ProgramFailure {
        match self {
            WorkerDown::TimedOut => ProgramFailure {
                kind: FailureKind::Timeout,
                error_type: "Timeout".into(),
                message: format!("the program ran past its time limit ({:.1}s of CPU time); the worker was restarted", timeout.as_secs_f64()),
                line: None,
            },
            WorkerDown::Died(detail) => ProgramFailure {
                kind: if detail.contains("CPU limit") { FailureKind::Timeout } else { FailureKind::Crashed },
                error_type: "WorkerDied".into(),
                message: format!("the worker died running the program ({detail}); it was restarted"),
                line: None,
            },
        }
    }
}

pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    hello: WorkerHello,
    next_id: u64,
    timeout: Duration,
}

impl Worker {
    /// Requests sent to this worker so far.
    pub fn requests(&self) -> u64 {
        self.next_id - 1
    }

    /// Starts a worker and waits for its hello line.
    pub fn spawn(env: &PythonEnv, options: &WorkerOptions) -> Result<Self, OracleError> {
        // Queries over an attached benchmark or user database need room beyond the fixtures'.
        let memory_mb = if options.attach.is_empty() { options.memory_mb } else { options.memory_mb.max(ATTACHED_MEMORY_MB) };
        let mut command = Command::new(env.python());
        command.args(["-m", "ibert_worker"]).arg("--memory-mb").arg(memory_mb.to_string()).arg("--cpu-seconds").arg(options.cpu_seconds.to_string());
        for (name, path) in &options.attach {
            command.arg("--attach").arg(format!("{name}={}", path.display()));
        }
        let mut child = command
            .env("PYTHONPATH", env.worker_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // Set iteration order in Python must not change the SQL Ibis writes from run to run.
            .env("PYTHONHASHSEED", "0")
            .current_dir(env.worker_dir())
            // Its own process group: Ctrl-C in the terminal reaches ibert, which winds down in
            // order, instead of killing the workers under requests in flight.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(OracleError::Spawn)?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");

        let (sender, lines) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });

        let mut worker = Worker {
            child,
            stdin,
            lines,
            stderr_tail,
            hello: WorkerHello { ibis: String::new(), sqlglot: String::new(), python: String::new(), seccomp: String::new(), pid: 0 },
            next_id: 1,
            timeout: options.timeout,
        };
        let hello_line = match worker.read_line(CpuDeadline::wall(options.startup_timeout)) {
            Ok(line) => line,
            Err(down) => {
                let detail = match down {
                    WorkerDown::TimedOut => format!("no hello within {}s", options.startup_timeout.as_secs()),
                    WorkerDown::Died(detail) => detail,
                };
                return Err(OracleError::Startup { detail });
            }
        };
        #[derive(serde::Deserialize)]
        struct Hello {
            hello: WorkerHello,
        }
        let hello: Hello = serde_json::from_str(&hello_line).map_err(|e| OracleError::Protocol(format!("bad hello line `{hello_line}`: {e}")))?;
        worker.hello = hello.hello;
        Ok(worker)
    }

    pub fn hello(&self) -> &WorkerHello {
        &self.hello
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Compiles one program. `Ok(Err(_))` is a program that real Ibis (or the sandbox) refused;
    /// `Err(_)` means the worker is gone and must be replaced.
    pub(crate) fn compile(&mut self, request: &CompileRequest) -> Result<Result<Compiled, ProgramFailure>, WorkerDown> {
        let mut body = serde_json::to_value(request).expect("requests serialize");
        body["op"] = json!("compile");
        let response = self.call(body)?;
        Ok(split_response(response))
    }

    /// Sends any request object (an `op` and its fields) and returns the raw answer.
    pub(crate) fn call_raw(&mut self, body: serde_json::Value) -> Result<Result<serde_json::Map<String, serde_json::Value>, ProgramFailure>, WorkerDown> {
        let response = self.call(body)?;
        Ok(match response.error {
            Some(failure) if !response.ok => Err(failure),
            _ => Ok(response.body),
        })
    }

    fn call(&mut self, mut body: serde_json::Value) -> Result<RawResponse, WorkerDown> {
        let id = self.next_id;
        self.next_id += 1;
        let nonce = fresh_nonce();
        body["id"] = json!(id);
        body["nonce"] = json!(nonce);
        let mut line = serde_json::to_string(&body).expect("requests serialize");
        line.push('\n');
        if self.stdin.write_all(line.as_bytes()).and_then(|()| self.stdin.flush()).is_err() {
            return Err(WorkerDown::Died(self.death_detail()));
        }
        let answer = self.read_line(CpuDeadline::start(Some(CpuClock::of_process(self.child.id())), self.timeout))?;
        let response: RawResponse = serde_json::from_str(&answer).map_err(|e| WorkerDown::Died(format!("unreadable answer `{answer}`: {e}")))?;
        if response.id != Some(id) || response.nonce != Some(nonce) {
            // Out of step, or an answer forged by the program: this worker cannot be trusted.
            self.kill();
            return Err(WorkerDown::Died(format!("an answer that does not match request {id} (forged or out of step)")));
        }
        Ok(response)
    }

    fn read_line(&mut self, deadline: CpuDeadline) -> Result<String, WorkerDown> {
        loop {
            let Some(wait) = deadline.time_left() else {
                self.kill();
                return Err(WorkerDown::TimedOut);
            };
            match self.lines.recv_timeout(wait) {
                Ok(line) => return Ok(line),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(WorkerDown::Died(self.death_detail())),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Exit status and the last lines of stderr of a worker that stopped answering. A worker that
    /// closed its output but still runs is killed first, so this never waits forever.
    fn death_detail(&mut self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let status = self.child.wait().map(describe_exit).unwrap_or_else(|e| format!("unknown exit: {e}"));
        // The stderr reader may still be draining the pipe.
        std::thread::sleep(Duration::from_millis(20));
        let tail = self.stderr_tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let last: Vec<&str> = tail.iter().rev().take(3).rev().map(String::as_str).collect();
        if last.is_empty() { status } else { format!("{status}; stderr: {}", last.join(" | ")) }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A per-request secret: random bits from the standard library's randomly seeded hasher.
fn fresh_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

fn split_response(response: RawResponse) -> Result<Compiled, ProgramFailure> {
    if !response.ok {
        return Err(response.error.unwrap_or(ProgramFailure {
            kind: FailureKind::Protocol,
            error_type: "MissingError".into(),
            message: "the worker reported a failure without an error object".into(),
            line: None,
        }));
    }
    serde_json::from_value(serde_json::Value::Object(response.body)).map_err(|e| ProgramFailure {
        kind: FailureKind::Protocol,
        error_type: "BadAnswer".into(),
        message: format!("the worker's compile answer does not parse: {e}"),
        line: None,
    })
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(24)) => "killed by the CPU limit (SIGXCPU)".into(),
        (None, Some(9)) => "killed (SIGKILL, possibly out of memory)".into(),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown exit".into(),
    }
}
