//! What the task library's tests share: one real oracle worker.

use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool};

pub fn pool() -> WorkerPool {
    let env = PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment for the oracle: {error}"));
    WorkerPool::start(env, PoolOptions { workers: 1, ..PoolOptions::default() }).expect("pool starts")
}
