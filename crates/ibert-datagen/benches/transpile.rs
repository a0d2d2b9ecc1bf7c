//! The SQL -> Ibis transpiler on the project corpus, TPC-H and TPC-DS: translation latency
//! (p50/p99 of parse + resolve + emit), verified counts per suite and per feature, verified
//! translations per second end to end, and (with `--side-by-side`) Ibis's own
//! `parse_sql` + `decompile` on the same queries, verified the same way.
//!
//! `cargo bench --workspace --bench transpile [-- --side-by-side] [--rounds N] [--suite NAME]...
//! [--tpch-scale F] [--tpcds-scale F]`
//! The TPC queries are the DuckDB versions shipped inside the pinned ibis-framework package; they
//! are verified on the benchmarks' own data (generated once into the cache folder), the corpus
//! on generated fixtures.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ibert_datagen::transpiled::{tpc_suites, transpile_corpus};
use ibert_datagen::{Candidate, PipelineOptions, verify_candidates};
use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool, cache_dir};
use ibert_tpc::{Benchmark, ensure_database};
use ibert_transpile::corpus::Corpus;
use ibert_verify::{DEFAULT_FIXTURES, Verdict};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let side_by_side = args.iter().any(|a| a == "--side-by-side");
    let flag = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let rounds: usize = flag("--rounds").and_then(|n| n.parse().ok()).unwrap_or(20);
    let tpch_scale: f64 = flag("--tpch-scale").and_then(|n| n.parse().ok()).unwrap_or(0.1);
    let tpcds_scale: f64 = flag("--tpcds-scale").and_then(|n| n.parse().ok()).unwrap_or(1.0);
    let wanted: Vec<&String> = args.windows(2).filter(|pair| pair[0] == "--suite").map(|pair| &pair[1]).collect();
    let root = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../..");
    let env = PythonEnv::ensure(&|_| {}).expect("python environment");
    let mut suites = Corpus::load_dir(&root.join("corpus/sql")).expect("corpus");
    suites.extend(tpc_suites(&env, &root).expect("TPC suites"));
    suites.retain(|suite| wanted.is_empty() || wanted.contains(&&suite.name));

    let mut references = Vec::new();
    for (suite, benchmark, scale) in [("tpch", Benchmark::H, tpch_scale), ("tpcds", Benchmark::Ds, tpcds_scale)] {
        let Some(suite) = suites.iter().find(|s| s.name == suite) else { continue };
        let started = Instant::now();
        let reference = ensure_database(benchmark, scale, &suite.catalog.schemas(), &cache_dir()).expect("TPC data");
        println!("{} data at scale {scale}: {} ({:.1} s)", benchmark.name(), reference.path.display(), started.elapsed().as_secs_f64());
        references.push(reference);
    }

    // Latency: every query translated `rounds` times, best of the rounds per query.
    let mut best: Vec<Duration> = Vec::new();
    for round in 0..rounds {
        let mut index = 0;
        for suite in &suites {
            for latency in transpile_corpus(suite).latencies {
                if round == 0 {
                    best.push(latency);
                } else {
                    best[index] = best[index].min(latency);
                }
                index += 1;
            }
        }
    }
    best.sort();
    let percentile = |p: f64| best[((best.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "translation latency over {} queries (best of {rounds}): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        best.len(),
        micros(percentile(0.5)),
        micros(percentile(0.99)),
        micros(*best.last().unwrap())
    );

    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pool_options = PoolOptions { workers, ..PoolOptions::default() };
    pool_options.worker.attach.extend(references.iter().map(|reference| reference.worker_attachment()));
    let pool = WorkerPool::start(env.clone(), pool_options).expect("pool");
    let options = PipelineOptions { references, ..PipelineOptions::new(workers, DEFAULT_FIXTURES.to_vec()) };
    let start = Instant::now();
    let mut ours: BTreeMap<String, bool> = BTreeMap::new();
    let mut features: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut candidates = Vec::new();
    let mut refused = Vec::new();
    for suite in &suites {
        let translated = transpile_corpus(suite);
        for query in &suite.queries {
            let id = format!("{}.{}", suite.name, query.id);
            features.insert(id.clone(), query.features.clone());
            ours.insert(id, false);
        }
        for r in translated.refused {
            refused.push((format!("{}.{}", suite.name, r.id), r.error.to_string()));
        }
        candidates.extend(translated.candidates);
    }
    let report = verify_candidates(candidates, &pool, &options, &|_| {}, &AtomicBool::new(false)).expect("verification");
    let elapsed = start.elapsed().as_secs_f64();
    let mut rejects = Vec::new();
    for outcome in &report.outcomes {
        match &outcome.verdict {
            Verdict::Verified(_) => {
                ours.insert(outcome.candidate.id.clone(), true);
            }
            Verdict::Rejected(reject) => rejects.push((outcome.candidate.id.clone(), format!("{}: {}", reject.reason, first_line(&reject.detail)))),
        }
    }
    let verified = ours.values().filter(|v| **v).count();
    println!(
        "end to end (translate + verify, {workers} workers): {verified} verified in {elapsed:.1} s = {:.1} verified translations/s",
        verified as f64 / elapsed
    );

    println!("\n{:<10} {:>8} {:>10} {:>8} {:>9}", "suite", "queries", "verified", "refused", "rejected");
    for suite in &suites {
        let prefix = format!("{}.", suite.name);
        let count = |f: &dyn Fn(&String) -> bool| ours.keys().filter(|id| id.starts_with(&prefix) && f(id)).count();
        println!(
            "{:<10} {:>8} {:>10} {:>8} {:>9}",
            suite.name,
            suite.queries.len(),
            count(&|id| ours[id]),
            refused.iter().filter(|(id, _)| id.starts_with(&prefix)).count(),
            rejects.iter().filter(|(id, _)| id.starts_with(&prefix)).count()
        );
    }
    println!("\nrefused by the transpiler:");
    for (id, error) in &refused {
        println!("  {id}: {error}");
    }
    println!("rejected by the verifier:");
    for (id, why) in &rejects {
        println!("  {id}: {why}");
    }

    if side_by_side {
        let theirs = ibis_decompile(&env, &suites, &pool, &options);
        println!("\nside by side, verified per feature (ours = ibert transpiler, ibis = ibis.parse_sql + ibis.decompile):");
        let mut per_feature: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for (id, tags) in &features {
            for tag in tags {
                let entry = per_feature.entry(tag.clone()).or_default();
                entry.0 += 1;
                entry.1 += usize::from(ours[id]);
                entry.2 += usize::from(theirs.get(id).copied().unwrap_or(false));
            }
        }
        println!("{:<22} {:>7} {:>6} {:>6}", "feature", "queries", "ours", "ibis");
        for (tag, (n, a, b)) in &per_feature {
            println!("{tag:<22} {n:>7} {a:>6} {b:>6}");
        }
        let total_theirs = theirs.values().filter(|v| **v).count();
        println!("{:<22} {:>7} {:>6} {:>6}", "ALL", ours.len(), verified, total_theirs);
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(160).collect()
}

/// Ibis's own path on every query; its programs go through the same verifier.
fn ibis_decompile(env: &PythonEnv, suites: &[Corpus], pool: &WorkerPool, options: &PipelineOptions) -> BTreeMap<String, bool> {
    let script = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../python/bench/ibis_decompile.py");
    let mut child = Command::new(env.python()).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("decompile script");
    let mut input = String::new();
    let mut by_id = BTreeMap::new();
    for suite in suites {
        let tables = suite.catalog.schemas();
        for query in &suite.queries {
            let id = format!("{}.{}", suite.name, query.id);
            input.push_str(&serde_json::json!({"id": id, "sql": query.sql, "tables": tables}).to_string());
            input.push('\n');
            by_id.insert(id, (suite.name.clone(), query.clone(), tables.clone()));
        }
    }
    // Written from another thread: the script answers as it reads, and a full stdout pipe
    // would otherwise block both sides.
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("decompile output");
    writer.join().expect("writer thread").expect("writing queries");
    let mut candidates = Vec::new();
    let mut result = BTreeMap::new();
    let mut failed = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let reply: serde_json::Value = serde_json::from_str(line).expect("decompile reply");
        let id = reply["id"].as_str().unwrap_or_default().to_string();
        result.insert(id.clone(), false);
        let Some(code) = reply["code"].as_str() else {
            failed += 1;
            continue;
        };
        let (suite, query, tables) = &by_id[&id];
        let code: String = code.lines().filter(|l| !l.starts_with("import ")).collect::<Vec<_>>().join("\n");
        candidates.push(Candidate {
            id: id.clone(),
            template: suite.clone(),
            variation: query.id.clone(),
            sql: query.sql.clone(),
            ibis: code,
            expr_name: "result".into(),
            tables: tables.clone(),
            features: query.features.clone(),
            difficulty: None,
            derived_from: None,
            align_types: false,
            shared_fixtures: None,
        });
    }
    let report = verify_candidates(candidates, pool, options, &|_| {}, &AtomicBool::new(false)).expect("verification");
    for outcome in report.outcomes {
        if matches!(outcome.verdict, Verdict::Verified(_)) {
            result.insert(outcome.candidate.id, true);
        }
    }
    println!("\nibis.parse_sql + decompile: {} queries, {failed} failed in Ibis before verification", result.len());
    result
}
