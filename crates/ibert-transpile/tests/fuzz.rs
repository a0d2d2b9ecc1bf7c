//! Robustness of the SQL front end: corpus queries mangled at random (deleted, repeated and
//! swapped tokens, cut text, random bytes) never make the transpiler panic; they translate or
//! fail with an error. `IBERT_FUZZ_RUNS` sets the number of runs (default 20000).

use ibert_transpile::corpus::Corpus;
use ibert_transpile::{SqlDialect, transpile};
use std::path::Path;

/// xorshift64*: deterministic, so a failure reproduces from its run number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    ",",
    "*",
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "OVER (",
    "PARTITION BY",
    "JOIN",
    "ON",
    "AND",
    "OR",
    "NOT",
    "CASE WHEN",
    "THEN",
    "END",
    "EXISTS (SELECT 1",
    "IN (",
    "'",
    "\"",
    "1e999",
    "-",
    "::",
    "INTERVAL",
    "UNION",
    "WITH x AS (",
    "LIMIT",
    "NULL",
    "DISTINCT",
    "COUNT(*)",
    "ü",
    "\u{0}",
    ";",
];

fn mutate(sql: &str, rng: &mut Rng) -> String {
    let mut tokens: Vec<String> = sql.split_whitespace().map(str::to_string).collect();
    for _ in 0..=rng.below(4) {
        if tokens.is_empty() {
            break;
        }
        let at = rng.below(tokens.len());
        match rng.below(6) {
            0 => {
                tokens.remove(at);
            }
            1 => {
                let copy = tokens[at].clone();
                tokens.insert(rng.below(tokens.len()), copy);
            }
            2 => {
                let other = rng.below(tokens.len());
                tokens.swap(at, other);
            }
            3 => tokens.insert(at, FRAGMENTS[rng.below(FRAGMENTS.len())].to_string()),
            4 => tokens.truncate(at),
            _ => {
                let byte = (rng.next() % 94 + 33) as u8 as char;
                tokens[at].insert(0, byte);
            }
        }
    }
    tokens.join(" ")
}

#[test]
fn mangled_queries_never_panic() {
    let runs: usize = std::env::var("IBERT_FUZZ_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let corpora = Corpus::load_dir(&Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../corpus/sql")).unwrap();
    let queries: Vec<(&Corpus, &str)> = corpora.iter().flat_map(|c| c.queries.iter().map(move |q| (c, q.sql.as_str()))).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut translated, mut refused) = (0usize, 0usize);
    for run in 0..runs {
        let (corpus, sql) = queries[rng.below(queries.len())];
        let mangled = mutate(sql, &mut rng);
        let outcome = std::panic::catch_unwind(|| transpile(&mangled, &corpus.catalog, SqlDialect::DuckDb));
        match outcome {
            Ok(Ok(_)) => translated += 1,
            Ok(Err(error)) => {
                assert!(!error.to_string().is_empty());
                refused += 1;
            }
            Err(_) => panic!("run {run} panicked on:\n{mangled}"),
        }
    }
    eprintln!("fuzz: {runs} runs, {translated} translated, {refused} refused with an error, 0 panics");
    assert_eq!(translated + refused, runs);
    assert!(refused > runs / 4, "the mutations should break most queries");
}
