//! Real Ibis as an oracle: a pool of long-lived Python worker processes running the pinned
//! `ibis-framework`, driven over a JSON-lines protocol.
//!
//! The Rust side never guesses Ibis behaviour; it asks these workers. Each worker checks a program
//! against an `ast` allow-list before running it, under OS limits (see `python/ibert_worker`), and
//! the pool restarts a worker that crashes or runs past its per-request timeout.
//!
//! * [`PythonEnv`] creates the virtual environment from the lock file in the repository, once, in
//!   the user cache directory.
//! * [`Worker`] is one process; [`WorkerPool`] runs several in parallel.
//! * [`protocol`] holds the request and response types, documented in `docs/oracle-protocol.md`.

pub mod cpu_clock;
mod error;
mod pool;
pub mod protocol;
mod python_env;
mod worker;

pub use error::OracleError;
pub use ibert_fetch::cache_dir;
pub use pool::{PoolOptions, PoolStats, WorkerPool};
pub use protocol::{CompileRequest, Compiled, DocumentedFunction, FailureKind, Outline, ProgramFailure, SqlCall, WorkerHello};
pub use python_env::{LOCK_FILE, PINNED_IBIS_VERSION, PythonEnv, ensure_requirements_venv};
pub use worker::{Worker, WorkerOptions};
