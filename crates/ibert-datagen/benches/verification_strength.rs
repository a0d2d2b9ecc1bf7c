//! How well verification tells programs apart: each verified template example is mutated (one
//! operator at a time: `>` to `>=`, `sum` to `mean`, `count` to `nunique`, ...) and the mutants are
//! verified against the original SQL. A mutant that still verifies is either equivalent on all
//! inputs or a weakness of the fixtures; the share rejected is the kill rate.
//!
//! `cargo bench --workspace --bench verification_strength`

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use ibert_datagen::{Candidate, PipelineOptions, expand_template, load_embedded_templates, verify_candidates};
use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool};
use ibert_verify::DEFAULT_FIXTURES;

/// (name, text replaced, replacement): the first occurrence in the Ibis program is replaced.
const OPERATORS: &[(&str, &str, &str)] = &[
    ("gt_to_ge", " > ", " >= "),
    ("lt_to_le", " < ", " <= "),
    ("sum_to_mean", ".sum()", ".mean()"),
    ("mean_to_sum", ".mean()", ".sum()"),
    ("max_to_min", ".max()", ".min()"),
    ("min_to_max", ".min()", ".max()"),
    ("desc_to_asc", "ibis.desc(", "ibis.asc("),
    ("and_to_or", " & ", " | "),
    ("eq_to_ne", " == ", " != "),
    ("left_to_inner_join", ".left_join(", ".join("),
    ("count_to_nunique", ".count()", ".nunique()"),
    ("distinct_off", "distinct=True", "distinct=False"),
];

fn main() {
    let templates = load_embedded_templates().expect("embedded templates parse");
    let candidates: Vec<Candidate> = templates.iter().flat_map(|t| expand_template(t).expect("templates expand")).collect();
    let env = PythonEnv::ensure(&|_| {}).expect("python environment");
    let pool = WorkerPool::start(env, PoolOptions::default()).expect("pool");
    let options = PipelineOptions::new(pool.size(), DEFAULT_FIXTURES.to_vec());
    let never = AtomicBool::new(false);

    let report = verify_candidates(candidates, &pool, &options, &|_| {}, &never).expect("verification runs");
    let verified: Vec<Candidate> = report.outcomes.into_iter().filter(|o| o.verification.is_some()).map(|o| o.candidate).collect();

    let mut mutants = Vec::new();
    for candidate in &verified {
        for (name, from, to) in OPERATORS {
            if candidate.ibis.contains(from) {
                let mut mutant = candidate.clone();
                mutant.ibis = candidate.ibis.replacen(from, to, 1);
                mutant.id = format!("{}~{name}", candidate.id);
                mutant.template = (*name).to_string();
                mutants.push(mutant);
            }
        }
    }
    let total = mutants.len();
    let report = verify_candidates(mutants, &pool, &options, &|_| {}, &never).expect("verification runs");

    let mut per_operator: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut survivors = Vec::new();
    for outcome in &report.outcomes {
        let entry = per_operator.entry(outcome.candidate.template.clone()).or_default();
        entry.0 += 1;
        if outcome.verification.is_some() {
            entry.1 += 1;
            survivors.push(outcome.candidate.id.clone());
        }
    }
    println!("{} verified examples, {total} mutants", verified.len());
    println!("{:<22} {:>8} {:>9} {:>8}", "operator", "mutants", "survived", "killed");
    for (name, (count, survived)) in &per_operator {
        println!("{name:<22} {count:>8} {survived:>9} {:>7.1}%", 100.0 * (count - survived) as f64 / *count as f64);
    }
    let survived = survivors.len();
    println!("kill rate: {:.1}% ({} of {total} mutants rejected)", 100.0 * (total - survived) as f64 / total.max(1) as f64, total - survived);
    for id in survivors.iter().take(40) {
        println!("  survived: {id}");
    }
}
