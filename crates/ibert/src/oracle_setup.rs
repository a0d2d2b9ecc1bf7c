//! Starting the oracle for a command: the Python environment (created on first use, with a
//! spinner) and the worker pool.

use std::time::Duration;

use anyhow::Context;
use ibert_oracle::{PoolOptions, PythonEnv, WorkerOptions, WorkerPool};

use crate::cli::VerifyOptions;
use crate::ui;

/// The pool, its workers attaching `attach` (catalog name, DuckDB file) read-only at start.
pub fn start_pool(options: &VerifyOptions, attach: &[(String, std::path::PathBuf)]) -> anyhow::Result<WorkerPool> {
    start_pool_recycling(options, attach, None)
}

/// [`start_pool`] whose workers are replaced after `recycle_after` requests each (the server).
pub fn start_pool_recycling(options: &VerifyOptions, attach: &[(String, std::path::PathBuf)], recycle_after: Option<u64>) -> anyhow::Result<WorkerPool> {
    let spinner = ui::spinner("preparing the Ibis oracle");
    let env = PythonEnv::ensure(&|line: &str| spinner.set_message(line.to_string())).context("setting up the Python environment for the Ibis oracle")?;
    let defaults = PoolOptions::default();
    let workers = options.jobs.map_or(defaults.workers, usize::from);
    spinner.set_message(format!("starting {workers} Ibis worker{}", if workers == 1 { "" } else { "s" }));
    let worker = WorkerOptions { timeout: Duration::from_secs(options.timeout.max(1)), attach: attach.to_vec(), ..WorkerOptions::default() };
    let pool = WorkerPool::start(env, PoolOptions { workers, worker, recycle_after }).context("starting the Ibis oracle workers")?;
    spinner.finish_and_clear();
    if pool.hello().seccomp != "on" {
        eprintln!("warning: the oracle's seccomp filter is {}; the allow-list and resource limits still apply", pool.hello().seccomp);
    }
    Ok(pool)
}
