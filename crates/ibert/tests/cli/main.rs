//! The real `ibert` binary end to end, one test binary for the whole command line: each test runs
//! it in a fresh temporary folder, with the real Ibis oracle, DuckDB and default model.

mod basics;
mod common;
mod data_pipeline;
mod serve;
mod synth;
mod tasks;
mod train;
mod transpile;
