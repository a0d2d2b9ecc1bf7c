//! Verified examples per second with 1 worker and with one worker per core, on the built-in
//! templates, and where the time goes (oracle compile, DuckDB, fixtures, the rest).
//!
//! `cargo bench --workspace --bench verify_throughput [-- --rounds N]` (with `--workspace`: a
//! single-package build resolves features differently and would compile DuckDB again).

use std::sync::atomic::AtomicBool;

use ibert_datagen::{Candidate, PipelineOptions, expand_template, load_embedded_templates, verify_candidates};
use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool};
use ibert_verify::DEFAULT_FIXTURES;

fn main() {
    let rounds: usize = std::env::args().skip_while(|arg| arg != "--rounds").nth(1).and_then(|n| n.parse().ok()).unwrap_or(1);
    let templates = load_embedded_templates().expect("embedded templates parse");
    let candidates: Vec<Candidate> = templates.iter().flat_map(|t| expand_template(t).expect("templates expand")).collect();
    let env = PythonEnv::ensure(&|_| {}).expect("python environment");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut worker_counts = vec![1];
    if cores > 1 {
        worker_counts.push(cores);
    }

    println!("{} candidates from {} templates, {rounds} round(s) per setting", candidates.len(), templates.len());
    println!("{:>7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}", "workers", "verified", "per_sec", "wall_s", "compile", "duckdb", "fixtures", "rest");
    let mut baseline = None;
    for workers in worker_counts {
        let pool = WorkerPool::start(env.clone(), PoolOptions { workers, ..PoolOptions::default() }).expect("pool");
        let options = PipelineOptions::new(workers, DEFAULT_FIXTURES.to_vec());
        // Warm-up: first requests import lazily loaded compiler parts.
        let _ = verify_candidates(candidates[..candidates.len().min(8)].to_vec(), &pool, &options, &|_| {}, &AtomicBool::new(false));
        let mut best: Option<ibert_datagen::PipelineReport> = None;
        for _ in 0..rounds {
            let report = verify_candidates(candidates.clone(), &pool, &options, &|_| {}, &AtomicBool::new(false)).expect("run");
            if best.as_ref().is_none_or(|b| report.wall < b.wall) {
                best = Some(report);
            }
        }
        let report = best.expect("at least one round");
        let verified = report.outcomes.iter().filter(|o| o.verification.is_some()).count();
        let wall = report.wall.as_secs_f64();
        let thread_seconds = wall * workers as f64;
        let t = &report.timings;
        let share = |seconds: f64| format!("{:.0}%", 100.0 * seconds / thread_seconds);
        let accounted = t.compile.as_secs_f64() + t.execute.as_secs_f64() + t.fixtures.as_secs_f64() + t.compare.as_secs_f64();
        let per_sec = verified as f64 / wall;
        println!(
            "{workers:>7} {verified:>9} {per_sec:>10.1} {wall:>9.2} {:>9} {:>9} {:>9} {:>9}",
            share(t.compile.as_secs_f64()),
            share(t.execute.as_secs_f64()),
            share(t.fixtures.as_secs_f64()),
            share((thread_seconds - accounted).max(0.0) + t.compare.as_secs_f64()),
        );
        match baseline {
            None => baseline = Some(per_sec),
            Some(one) => println!("scaling: {:.2}x with {workers} workers ({:.0}% of linear)", per_sec / one, 100.0 * per_sec / one / workers as f64),
        }
    }
}
