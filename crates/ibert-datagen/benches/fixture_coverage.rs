//! How often generated fixtures make a query's own result empty (vacuous: nothing to compare)
//! or order-dependent, per source and per feature. Only the SQL side runs: whether a query can
//! be checked at all is a property of the query and the fixtures, not of any translation.
//!
//! `cargo bench --workspace --bench fixture_coverage [-- --data DIR] [--features N] [--default-only]`
//!
//! Sources: the built-in templates, the SQL corpus (`corpus/sql`), TPC-H and TPC-DS (on
//! generated fixtures, as a user without the benchmark data gets them), and every augmentation
//! candidate of the verified examples of a `data all` run (in `data/` by default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ibert_datagen::augment::augment;
use ibert_datagen::transpiled::tpc_suites;
use ibert_datagen::{expand_template, load_embedded_templates};
use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool};
use ibert_records::{Example, read_jsonl};
use ibert_transpile::corpus::Corpus;
use ibert_transpile::{SqlDialect, transpile};
use ibert_verify::{DEFAULT_FIXTURES, RejectReason, TableSchemas, Verifier};

/// One query to probe.
struct Probe {
    source: String,
    id: String,
    sql: String,
    tables: TableSchemas,
    features: Vec<String>,
}

#[derive(Default)]
struct Tally {
    total: usize,
    vacuous: usize,
    nondeterministic: usize,
    other: usize,
}

impl Tally {
    fn add(&mut self, outcome: Option<RejectReason>) {
        self.total += 1;
        match outcome {
            None => {}
            Some(RejectReason::Vacuous) => self.vacuous += 1,
            Some(RejectReason::Nondeterministic) => self.nondeterministic += 1,
            Some(_) => self.other += 1,
        }
    }

    fn line(&self, name: &str) -> String {
        let percent = |n: usize| if self.total == 0 { 0.0 } else { 100.0 * n as f64 / self.total as f64 };
        format!(
            "{name:<28} {:>6} {:>8} ({:>5.1}%) {:>8} ({:>4.1}%) {:>6}",
            self.total,
            self.vacuous,
            percent(self.vacuous),
            self.nondeterministic,
            percent(self.nondeterministic),
            self.other
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.windows(2).find(|pair| pair[0] == name).map(|pair| pair[1].clone());
    let root = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../..");
    let data_dir = flag("--data").map(PathBuf::from).unwrap_or_else(|| root.join("data"));
    let feature_rows: usize = flag("--features").and_then(|n| n.parse().ok()).unwrap_or(25);
    let env = PythonEnv::ensure(&|_| {}).expect("python environment");

    let mut probes = Vec::new();
    for template in load_embedded_templates().expect("templates") {
        for candidate in expand_template(&template).expect("template expands") {
            probes.push(Probe { source: "templates".into(), id: candidate.id, sql: candidate.sql, tables: candidate.tables, features: candidate.features });
        }
    }
    let mut corpora = Corpus::load_dir(&root.join("corpus/sql")).expect("corpus");
    corpora.extend(tpc_suites(&env, &root).expect("TPC suites"));
    for corpus in &corpora {
        let source = if corpus.name.starts_with("tpc") { corpus.name.clone() } else { "sql corpus".into() };
        let all: Vec<String> = corpus.catalog.tables().iter().map(|t| t.name.clone()).collect();
        for query in &corpus.queries {
            // The tables the query reads (all of them when the transpiler cannot tell).
            let used = transpile(&query.sql, &corpus.catalog, SqlDialect::DuckDb).map(|t| t.tables).unwrap_or_else(|_| all.clone());
            let tables = corpus.catalog.schemas_of(&used);
            probes.push(Probe { source: source.clone(), id: query.id.clone(), sql: query.sql.clone(), tables, features: query.features.clone() });
        }
    }
    // Every augmentation candidate of the verified originals (not only those that verified:
    // those are the ones whose fixtures served).
    let originals: Vec<Example> = ["sql2ibis/train.jsonl", "transpiled/train.jsonl"]
        .iter()
        .map(|file| data_dir.join(file))
        .filter(|path| path.exists())
        .flat_map(|path| read_jsonl::<Example>(&path).expect("verified examples"))
        .collect();
    if originals.is_empty() {
        println!("(no verified examples under {}: run `ibert data all` first, or pass --data DIR)", data_dir.display());
    }
    for example in &originals {
        for candidate in augment(example) {
            let kind = candidate.features.iter().find(|f| f.starts_with("augment:")).cloned().unwrap_or_default();
            probes.push(Probe { source: "augmented".into(), id: candidate.id, sql: candidate.sql, tables: candidate.tables, features: vec![kind] });
        }
    }

    let pool = WorkerPool::start(env, PoolOptions { workers: 1, ..PoolOptions::default() }).expect("pool");
    let mut verifier = Verifier::new(&pool, DEFAULT_FIXTURES);
    // `--default-only`: the default fixtures alone, as verification had them before fixtures
    // aimed at the query.
    verifier.aimed_fixtures = !args.iter().any(|arg| arg == "--default-only");
    let started = Instant::now();
    let mut by_source: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_feature: BTreeMap<String, Tally> = BTreeMap::new();
    let mut vacuous: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut other_reasons: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for probe in &probes {
        let rejected = verifier.reference_run(&probe.sql, &probe.tables).err();
        if let Some(reject) = rejected.as_ref().filter(|r| !matches!(r.reason, RejectReason::Vacuous | RejectReason::Nondeterministic)) {
            let entry = other_reasons.entry(format!("{} {}", probe.source, reject.reason)).or_insert((0, format!("{}: {}", probe.id, reject.detail)));
            entry.0 += 1;
        }
        let outcome = rejected.map(|reject| reject.reason);
        by_source.entry(probe.source.clone()).or_default().add(outcome);
        for feature in &probe.features {
            by_feature.entry(feature.clone()).or_default().add(outcome);
        }
        if matches!(outcome, Some(RejectReason::Vacuous | RejectReason::Nondeterministic)) {
            vacuous.entry(probe.source.clone()).or_default().push(format!("{} ({})", probe.id, outcome.unwrap()));
        }
    }
    let header = format!("{:<28} {:>6} {:>18} {:>18} {:>6}", "", "probed", "vacuous", "nondeterministic", "other");
    let fixtures = if verifier.aimed_fixtures { "default fixtures, then fixtures aimed at the query" } else { "default fixtures only" };
    println!("fixture coverage of {} queries ({fixtures}) in {:.1} s\n\n{header}", probes.len(), started.elapsed().as_secs_f64());
    let mut all = Tally::default();
    for (source, tally) in &by_source {
        println!("{}", tally.line(source));
        all.total += tally.total;
        all.vacuous += tally.vacuous;
        all.nondeterministic += tally.nondeterministic;
        all.other += tally.other;
    }
    println!("{}", all.line("all"));
    let mut features: Vec<(&String, &Tally)> = by_feature.iter().filter(|(_, t)| t.vacuous + t.nondeterministic > 0).collect();
    features.sort_by_key(|(name, t)| (std::cmp::Reverse(t.vacuous + t.nondeterministic), (*name).clone()));
    println!("\nfeatures with vacuous or nondeterministic queries (top {feature_rows}):\n{header}");
    for (feature, tally) in features.into_iter().take(feature_rows) {
        println!("{}", tally.line(feature));
    }
    for (reason, (count, example)) in &other_reasons {
        println!("other: {reason}: {count}, e.g. {example}");
    }
    for (source, ids) in &vacuous {
        println!("\n{source}: {}", ids.join(", "));
    }
}
