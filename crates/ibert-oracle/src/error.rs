use std::path::PathBuf;

/// Failures of the oracle's machinery (environment, processes, protocol), as opposed to a program
/// that Ibis rejects, which is a [`crate::ProgramFailure`] and an ordinary answer.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("`{python}` was not found or does not run ({source}); install Python 3.10 or newer, or point `IBERT_PYTHON` at one")]
    PythonMissing { python: String, source: std::io::Error },
    #[error("`{python}` is Python {found}; the Ibis oracle needs Python 3.10 or newer (set `IBERT_PYTHON`)")]
    PythonTooOld { python: String, found: String },
    #[error("creating the virtual environment at `{path}` failed: {detail}\nhint: on Debian/Ubuntu install `python3-venv`, then run again")]
    VenvCreation { path: PathBuf, detail: String },
    #[error(
        "installing the pinned Python packages into `{path}` failed (pip exit status {status}):\n{log_tail}\nhint: check network access to the Python package index, then run again; the environment is rebuilt from scratch"
    )]
    PipInstall { path: PathBuf, status: String, log_tail: String },
    #[error("{action} `{path}`: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("starting an oracle worker failed: {0}")]
    Spawn(std::io::Error),
    #[error("an oracle worker did not start: {detail}")]
    Startup { detail: String },
    #[error("oracle protocol error: {0}")]
    Protocol(String),
    #[error("the oracle pool has no workers left: a dead worker could not be replaced")]
    ShutDown,
}

impl OracleError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OracleError::Io { action, path: path.into(), source }
    }
}
