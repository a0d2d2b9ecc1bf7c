//! Several workers serving callers on many threads; a worker that dies is replaced.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::json;

use crate::protocol::{CompileRequest, Compiled, ExecuteRequest, Executed, ProgramFailure, WorkerHello};
use crate::worker::WorkerDown;
use crate::{OracleError, PythonEnv, Worker, WorkerOptions};

#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Number of worker processes; default: the number of cores.
    pub workers: usize,
    pub worker: WorkerOptions,
    /// Replace a worker by a fresh one once it has answered this many requests, so that what a
    /// long-running process accumulates in Python's heap and the worker's DuckDB is given back;
    /// the fresh one starts in the background while the others answer. `None`: never.
    pub recycle_after: Option<u64>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PoolOptions { workers: cores, worker: WorkerOptions::default(), recycle_after: None }
    }
}

/// Counters of one pool's life.
#[derive(Debug, Clone, Default)]
pub struct PoolStats {
    pub requests: u64,
    pub timeouts: u64,
    pub crashes: u64,
    /// Workers replaced after `recycle_after` requests.
    pub recycled: u64,
    /// Time spent inside workers answering requests, summed over workers.
    pub busy: Duration,
}

pub struct WorkerPool {
    env: PythonEnv,
    options: PoolOptions,
    idle_sender: Sender<Worker>,
    idle: Receiver<Worker>,
    hello: WorkerHello,
    stats: Mutex<PoolStats>,
    /// Workers in the pool, idle, busy or starting; drops when a worker cannot be replaced.
    alive: Arc<AtomicUsize>,
}

impl WorkerPool {
    /// Starts `options.workers` workers in parallel and waits until all have said hello.
    pub fn start(env: PythonEnv, options: PoolOptions) -> Result<Self, OracleError> {
        let count = options.workers.max(1);
        let started: Vec<Result<Worker, OracleError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..count).map(|_| scope.spawn(|| Worker::spawn(&env, &options.worker))).collect();
            handles.into_iter().map(|handle| handle.join().expect("worker start thread")).collect()
        });
        let (idle_sender, idle) = crossbeam_channel::unbounded();
        let mut hello = None;
        for worker in started {
            let worker = worker?;
            hello.get_or_insert_with(|| worker.hello().clone());
            idle_sender.send(worker).expect("receiver alive");
        }
        let hello = hello.expect("at least one worker");
        Ok(WorkerPool { env, options, idle_sender, idle, hello, stats: Mutex::new(PoolStats::default()), alive: Arc::new(AtomicUsize::new(count)) })
    }

    /// Versions reported by the workers (Ibis, sqlglot, Python) and whether seccomp is on.
    pub fn hello(&self) -> &WorkerHello {
        &self.hello
    }

    pub fn size(&self) -> usize {
        self.options.workers.max(1)
    }

    pub fn stats(&self) -> PoolStats {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Compiles one program with real Ibis on whichever worker is free. `Ok(Err(_))` is the
    /// program's own failure (syntax, sandbox, Ibis exception, timeout, crash); `Err(_)` means
    /// the pool could not replace a dead worker.
    pub fn compile(&self, request: &CompileRequest) -> Result<Result<Compiled, ProgramFailure>, OracleError> {
        self.with_worker(|worker| worker.compile(request))
    }

    /// Executes one program's expression on each of the request's datasets, as a user does.
    /// `Ok(Err(_))` is the program's own failure, including one raised by the execution.
    pub fn execute(&self, request: &ExecuteRequest) -> Result<Result<Executed, ProgramFailure>, OracleError> {
        let mut body = serde_json::to_value(request).map_err(|e| OracleError::Protocol(e.to_string()))?;
        body["op"] = json!("execute");
        let answer = self.with_worker(|worker| worker.call_raw(body))?;
        Ok(match answer {
            Ok(body) => Ok(serde_json::from_value(serde_json::Value::Object(body)).map_err(|e| OracleError::Protocol(format!("bad execute answer: {e}")))?),
            Err(failure) => Err(failure),
        })
    }

    /// The Ibis schema of every table of a database attached at start (`WorkerOptions::attach`),
    /// as Ibis itself reads the DuckDB types.
    pub fn attached_schemas(&self, catalog: &str) -> Result<crate::protocol::TableSchemas, OracleError> {
        let answer = self.with_worker(|worker| worker.call_raw(json!({"op": "attached_schemas", "catalog": catalog})))?;
        let body = answer.map_err(|failure| OracleError::Protocol(format!("describing attached database `{catalog}`: {failure}")))?;
        serde_json::from_value(body.get("tables").cloned().unwrap_or_default()).map_err(|e| OracleError::Protocol(format!("bad schemas of `{catalog}`: {e}")))
    }

    /// Only the allow-list check, without running anything.
    pub fn check(&self, code: &str, tables: &crate::protocol::TableSchemas) -> Result<Result<(), ProgramFailure>, OracleError> {
        let body = json!({"op": "check", "code": code, "tables": tables});
        self.with_worker(|worker| worker.call_raw(body)).map(|answer| answer.map(|_| ()))
    }

    /// Parses Python source with Python's own parser (nothing runs) and returns its documented
    /// functions and `.sql("...")` strings; a syntax error is the program's failure.
    pub fn outline(&self, source: &str) -> Result<Result<crate::protocol::Outline, ProgramFailure>, OracleError> {
        let answer = self.with_worker(|worker| worker.call_raw(json!({"op": "outline", "source": source})))?;
        Ok(match answer {
            Ok(body) => Ok(serde_json::from_value(serde_json::Value::Object(body)).map_err(|e| OracleError::Protocol(format!("bad outline: {e}")))?),
            Err(failure) => Err(failure),
        })
    }

    /// The dialects this Ibis can compile to, and those whose compiler fails here with the reason.
    pub fn dialects(&self) -> Result<(Vec<String>, BTreeMap<String, String>), OracleError> {
        let answer = self.with_worker(|worker| worker.call_raw(json!({"op": "dialects"})))?;
        let body = answer.map_err(|failure| OracleError::Protocol(failure.to_string()))?;
        let available =
            serde_json::from_value(body.get("dialects").cloned().unwrap_or_default()).map_err(|e| OracleError::Protocol(format!("bad dialect list: {e}")))?;
        let unavailable = serde_json::from_value(body.get("unavailable").cloned().unwrap_or_default())
            .map_err(|e| OracleError::Protocol(format!("bad dialect list: {e}")))?;
        Ok((available, unavailable))
    }

    /// A free worker; an error instead of waiting forever once no worker is left.
    fn take_idle(&self) -> Result<Worker, OracleError> {
        loop {
            match self.idle.recv_timeout(Duration::from_millis(200)) {
                Ok(worker) => return Ok(worker),
                Err(RecvTimeoutError::Timeout) if self.alive.load(Ordering::SeqCst) > 0 => continue,
                Err(_) => return Err(OracleError::ShutDown),
            }
        }
    }

    /// Starts a fresh worker on a thread of its own and adds it to the idle ones when it has
    /// said hello; one that fails to start leaves the pool a worker smaller.
    fn replace_in_background(&self) {
        let (env, options, idle, alive) = (self.env.clone(), self.options.worker.clone(), self.idle_sender.clone(), Arc::clone(&self.alive));
        let started = std::thread::Builder::new().name("ibert-worker-start".into()).spawn(move || match Worker::spawn(&env, &options) {
            Ok(worker) => {
                let _ = idle.send(worker);
            }
            Err(_) => {
                alive.fetch_sub(1, Ordering::SeqCst);
            }
        });
        if started.is_err() {
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn with_worker<T>(
        &self,
        call: impl FnOnce(&mut Worker) -> Result<Result<T, ProgramFailure>, WorkerDown>,
    ) -> Result<Result<T, ProgramFailure>, OracleError> {
        let mut worker = self.take_idle()?;
        let started = Instant::now();
        let outcome = call(&mut worker);
        let elapsed = started.elapsed();
        let mut stats = self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        stats.requests += 1;
        stats.busy += elapsed;
        match outcome {
            Ok(answer) => {
                let worn = self.options.recycle_after.is_some_and(|limit| worker.requests() >= limit);
                stats.recycled += u64::from(worn);
                drop(stats);
                if worn {
                    drop(worker);
                    self.replace_in_background();
                } else {
                    self.idle_sender.send(worker).map_err(|_| OracleError::ShutDown)?;
                }
                Ok(answer)
            }
            Err(down) => {
                match down {
                    WorkerDown::TimedOut => stats.timeouts += 1,
                    WorkerDown::Died(_) => stats.crashes += 1,
                }
                drop(stats);
                let timeout = worker.timeout();
                drop(worker);
                let replacement = Worker::spawn(&self.env, &self.options.worker).inspect_err(|_| {
                    self.alive.fetch_sub(1, Ordering::SeqCst);
                })?;
                self.idle_sender.send(replacement).map_err(|_| OracleError::ShutDown)?;
                Ok(Err(down.into_failure(timeout)))
            }
        }
    }
}
