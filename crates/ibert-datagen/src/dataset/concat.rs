//! Merging dataset files: every record kept with its provenance, exact duplicates (the same task,
//! input and target) and near duplicates (the same tokens: layout, comments, quote style and the
//! case of SQL keywords and names aside; literals must match exactly) removed, the first
//! occurrence winning, in the order the sources are given. SQL->Ibis pairs are also removed when
//! they are similar to an earlier pair (token trigrams at least 90% alike, by MinHash: one
//! literal changed in a long query), so that a corpus is not a pile of literal swaps.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use ibert_records::{Example, Payload, RecordError, read_jsonl};
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token as SqlToken, Tokenizer};

use crate::dataset::minhash::NearDuplicates;
use crate::python_tokens::{Kind, string_content, tokenize};
use crate::stable_hash::fnv1a;

/// One input of a merge: a label (its path) and its records.
pub struct Source {
    pub label: String,
    pub examples: Vec<Example>,
}

#[derive(Debug, Default)]
pub struct Merged {
    pub examples: Vec<Example>,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    /// SQL->Ibis pairs similar to an earlier one ([`SIMILARITY`]).
    pub similar_pairs: usize,
    /// Records derived from those pairs (`meta.derived_from`), dropped with them.
    pub derived_from_similar: usize,
    /// Source label -> (records read, records kept).
    pub per_source: BTreeMap<String, (usize, usize)>,
}

/// The estimated Jaccard similarity of token trigrams from which a pair is a near duplicate.
pub const SIMILARITY: f64 = 0.9;

pub fn concat(sources: Vec<Source>) -> Merged {
    let mut merged = Merged::default();
    let mut exact: HashSet<String> = HashSet::new();
    let mut near: HashSet<String> = HashSet::new();
    let mut similar = NearDuplicates::new(SIMILARITY);
    let mut similar_ids: HashSet<String> = HashSet::new();
    for source in sources {
        let read = source.examples.len();
        let mut kept = 0;
        for example in source.examples {
            let exact_key = serde_json::to_string(&example.payload).unwrap_or_default();
            if !exact.insert(exact_key) {
                merged.exact_duplicates += 1;
                continue;
            }
            let near_key = near_key(&example.payload);
            if !near.insert(near_key.clone()) {
                merged.near_duplicates += 1;
                continue;
            }
            if example.meta.derived_from.as_ref().is_some_and(|source| similar_ids.contains(source)) {
                merged.derived_from_similar += 1;
                continue;
            }
            if example.task() == ibert_records::Task::SqlToIbis {
                // Similar only to a pair that differs in its literals alone: another operator,
                // function or keyword makes another pair, however long the query.
                let tokens: Vec<&str> = near_key.split(' ').collect();
                let masked: Vec<&str> = tokens.iter().map(|token| if is_literal(token) { "?" } else { token }).collect();
                if similar.insert(fnv1a(masked.join(" ").as_bytes()), &tokens) {
                    merged.similar_pairs += 1;
                    similar_ids.insert(example.id.clone());
                    continue;
                }
            }
            kept += 1;
            merged.examples.push(example);
        }
        let entry = merged.per_source.entry(source.label).or_default();
        entry.0 += read;
        entry.1 += kept;
    }
    merged
}

/// The records of every file of `paths` merged, in that order, each labelled with its path.
pub fn concat_files(paths: &[PathBuf]) -> Result<Merged, RecordError> {
    let mut sources = Vec::new();
    for path in paths {
        sources.push(Source { label: path.display().to_string(), examples: read_jsonl(path)? });
    }
    Ok(concat(sources))
}

/// The task and its normalized fields: code without layout and with one quote style, SQL also
/// in lower case.
fn near_key(payload: &Payload) -> String {
    let fields: Vec<String> = match payload {
        Payload::SqlToIbis { input, target } => vec![sql(&input.sql), code(&target.ibis)],
        Payload::IbisToSql { input, target } => vec![code(&input.ibis), input.dialect.clone(), sql(&target.sql)],
        Payload::CodeCompletion { input, target } => vec![code(&input.partial_code), code(&target.completed_code)],
        Payload::ErrorResolution { input, target } => vec![code(&input.broken_code), code(&target.fixed_code)],
        Payload::Qa { input, target } => vec![text(&input.question), text(&target.answer)],
        Payload::Documentation { input, target } => vec![code(&input.code), format!("{:?}", input.style), text(&target.docstring)],
    };
    format!("{}\u{1}{}", payload.task(), fields.join("\u{1}"))
}

/// Python code as its tokens: layout and comments gone, string contents kept exactly (one
/// quote style). Code the tokenizer cannot read is compared as is.
fn code(source: &str) -> String {
    let Some(tokens) = tokenize(source) else { return source.to_string() };
    let texts: Vec<String> = tokens
        .iter()
        .filter(|t| t.kind != Kind::Newline)
        .map(|t| match string_content(t, source) {
            Some(content) => format!("\"{content}\""),
            None => t.text(source).to_string(),
        })
        .collect();
    texts.join(" ")
}

/// SQL as its tokens: keywords and unquoted names in lower case, literals kept exactly.
fn sql(source: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, source).tokenize() else { return source.to_string() };
    let texts: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t, SqlToken::Whitespace(_)))
        .map(|t| match t {
            SqlToken::Word(word) if word.quote_style.is_none() => word.value.to_lowercase(),
            other => other.to_string(),
        })
        .collect();
    texts.join(" ")
}

/// A literal of the normalized SQL or code: a quoted string or a number.
fn is_literal(token: &str) -> bool {
    token.starts_with(['\'', '"']) || token.starts_with(|c: char| c.is_ascii_digit())
}

fn text(source: &str) -> String {
    source.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibert_records::{Context, Meta, SqlToIbisInput, SqlToIbisTarget};

    fn example(id: &str, sql: &str, ibis: &str) -> Example {
        Example {
            id: id.into(),
            payload: Payload::SqlToIbis { input: SqlToIbisInput { sql: sql.into() }, target: SqlToIbisTarget { ibis: ibis.into(), expr_name: "expr".into() } },
            dialect: "duckdb".into(),
            backend: "duckdb".into(),
            ibis_version: String::new(),
            system_prompt: None,
            messages: None,
            context: Context::default(),
            meta: Meta { source: id.into(), ..Meta::default() },
            verification: None,
        }
    }

    #[test]
    fn exact_and_near_duplicates_are_removed_and_the_first_kept() {
        let a = Source {
            label: "a.jsonl".into(),
            examples: vec![example("1", "SELECT a FROM t", "expr = t.select('a')"), example("2", "SELECT a FROM t", "expr = t.select('a')")],
        };
        let b = Source {
            label: "b.jsonl".into(),
            examples: vec![example("3", "select a\nfrom t", "expr = t.select(\"a\")"), example("4", "SELECT b FROM t", "expr = t.select('b')")],
        };
        let merged = concat(vec![a, b]);
        assert_eq!(merged.examples.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "4"]);
        assert_eq!((merged.exact_duplicates, merged.near_duplicates), (1, 1));
        assert_eq!(merged.per_source["a.jsonl"], (2, 1));
        assert_eq!(merged.per_source["b.jsonl"], (2, 1));
        assert_eq!(merged.examples[1].meta.source, "4", "provenance travels with the record");
    }

    #[test]
    fn literals_must_match_for_a_near_duplicate() {
        let merged = concat(vec![Source {
            label: "x".into(),
            examples: vec![
                example("1", "SELECT a FROM t WHERE c = 'Paid'", "expr = t.filter(t.c == 'Paid')"),
                example("2", "select a from t where c = 'paid'", "expr = t.filter(t.c == 'paid')"),
                example("3", "SELECT a FROM t WHERE c = 'New York'", "expr = t.filter(t.c == 'New York')"),
                example("4", "SELECT a FROM t WHERE c = 'NewYork'", "expr = t.filter(t.c == 'NewYork')"),
                example("5", "SELECT  a\nFROM t WHERE c = 'Paid'", "expr = t.filter(\n    t.c == \"Paid\"  # same\n)"),
            ],
        }]);
        assert_eq!(merged.examples.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "2", "3", "4"]);
        assert_eq!(merged.near_duplicates, 1);
    }

    #[test]
    fn a_pair_that_only_changes_a_literal_of_a_long_query_is_similar() {
        let long = |limit: u32| {
            let columns: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
            (
                format!("SELECT {} FROM t LIMIT {limit}", columns.join(", ")),
                format!("expr = t.select({}).limit({limit})", columns.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ")),
            )
        };
        let ((sql_a, ibis_a), (sql_b, ibis_b)) = (long(5), long(6));
        let merged = concat(vec![Source {
            label: "x".into(),
            examples: vec![
                example("1", &sql_a, &ibis_a),
                example("2", &sql_b, &ibis_b),
                example("3", "SELECT a FROM t LIMIT 5", "expr = t.select('a').limit(5)"),
                example("4", "SELECT a FROM t LIMIT 6", "expr = t.select('a').limit(6)"),
            ],
        }]);
        assert_eq!(merged.examples.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "3", "4"], "a short query with another literal is another pair");
        assert_eq!(merged.similar_pairs, 1);

        // Another operator in the same long query is another pair; what derives from a dropped
        // pair goes with it.
        let (sql_c, ibis_c) = (sql_a.replace("LIMIT 5", "WHERE c1 >= 5"), ibis_a.replace(".limit(5)", ".filter(t.c1 >= 5)"));
        let (sql_d, ibis_d) = (sql_a.replace("LIMIT 5", "WHERE c1 > 5"), ibis_a.replace(".limit(5)", ".filter(t.c1 > 5)"));
        let mut derived = example("2.derived", "SELECT 1", "expr = t.count()");
        derived.meta.derived_from = Some("2".into());
        let merged = concat(vec![Source {
            label: "y".into(),
            examples: vec![example("1", &sql_a, &ibis_a), example("2", &sql_b, &ibis_b), derived, example("c", &sql_c, &ibis_c), example("d", &sql_d, &ibis_d)],
        }]);
        assert_eq!(merged.examples.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "c", "d"]);
        assert_eq!((merged.similar_pairs, merged.derived_from_similar), (1, 1));
    }

    #[test]
    fn the_same_code_in_another_task_is_not_a_duplicate() {
        let mut other = example("2", "SELECT a FROM t", "expr = t.select('a')");
        other.payload = Payload::IbisToSql {
            input: ibert_records::IbisToSqlInput { ibis: "expr = t.select('a')".into(), dialect: "duckdb".into() },
            target: ibert_records::IbisToSqlTarget { sql: "SELECT a FROM t".into() },
        };
        let merged = concat(vec![Source { label: "x".into(), examples: vec![example("1", "SELECT a FROM t", "expr = t.select('a')"), other] }]);
        assert_eq!(merged.examples.len(), 2);
    }
}
