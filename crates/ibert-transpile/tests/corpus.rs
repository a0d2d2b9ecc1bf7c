//! Every query of the project's corpus translates, and the translations are pinned by snapshots
//! (their verification by execution is in `crates/ibert-datagen/tests/transpiled.rs`).

use ibert_transpile::corpus::Corpus;
use ibert_transpile::{SqlDialect, transpile};
use std::collections::BTreeMap;
use std::path::Path;

fn corpus_dir() -> std::path::PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../corpus/sql")
}

#[test]
fn corpus_translations_match_their_snapshots() {
    let corpora = Corpus::load_dir(&corpus_dir()).expect("the corpus loads");
    assert!(corpora.len() >= 3, "at least three schemas");
    let mut failures = Vec::new();
    let mut total = 0;
    for corpus in &corpora {
        let mut translations = BTreeMap::new();
        for query in &corpus.queries {
            total += 1;
            match transpile(&query.sql, &corpus.catalog, corpus.dialect) {
                Ok(translation) => {
                    // PostgreSQL-flavoured corpora are DuckDB SQL too (DuckDB runs them), and
                    // must mean the same read either way.
                    if corpus.dialect != SqlDialect::DuckDb {
                        let as_duckdb = transpile(&query.sql, &corpus.catalog, SqlDialect::DuckDb).map(|t| t.code);
                        if as_duckdb.as_ref() != Ok(&translation.code) {
                            failures.push(format!("{}/{}: read as DuckDB SQL it gives {as_duckdb:?}", corpus.name, query.id));
                        }
                    }
                    translations.insert(query.id.clone(), translation.code);
                }
                Err(error) => failures.push(format!("{}/{}: {error}", corpus.name, query.id)),
            }
        }
        insta::assert_yaml_snapshot!(format!("corpus_{}", corpus.name), translations);
    }
    assert!(total >= 300, "the corpus has {total} queries");
    assert!(corpora.iter().filter(|c| c.dialect == SqlDialect::Postgres).count() >= 2, "two PostgreSQL-flavoured corpora");
    assert!(failures.is_empty(), "{} of {total} queries did not translate:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn translation_is_deterministic() {
    for corpus in Corpus::load_dir(&corpus_dir()).unwrap() {
        for query in corpus.queries.iter().take(40) {
            let first = transpile(&query.sql, &corpus.catalog, SqlDialect::DuckDb);
            let second = transpile(&query.sql, &corpus.catalog, SqlDialect::DuckDb);
            assert_eq!(first, second, "{}", query.id);
        }
    }
}
