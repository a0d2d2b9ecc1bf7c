//! Merging dataset files: every record kept with its provenance, exact duplicates (the same task,
//! input and target) and near duplicates (the same after normalizing whitespace, quotes and the
//! case of SQL) removed, the first occurrence winning, in the order the sources are given.

use std::collections::{BTreeMap, HashSet};

use ibert_records::{Example, Payload};

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
    /// Source label -> (records read, records kept).
    pub per_source: BTreeMap<String, (usize, usize)>,
}

pub fn concat(sources: Vec<Source>) -> Merged {
    let mut merged = Merged::default();
    let mut exact: HashSet<String> = HashSet::new();
    let mut near: HashSet<String> = HashSet::new();
    for source in sources {
        let read = source.examples.len();
        let mut kept = 0;
        for example in source.examples {
            let exact_key = serde_json::to_string(&example.payload).unwrap_or_default();
            if !exact.insert(exact_key) {
                merged.exact_duplicates += 1;
                continue;
            }
            if !near.insert(near_key(&example.payload)) {
                merged.near_duplicates += 1;
                continue;
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

fn code(source: &str) -> String {
    source.chars().filter(|c| !c.is_whitespace()).map(|c| if c == '\'' { '"' } else { c }).collect()
}

fn sql(source: &str) -> String {
    code(source).to_lowercase()
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
    fn the_same_code_in_another_task_is_not_a_duplicate() {
        let mut other = example("2", "SELECT a FROM t", "expr = t.select('a')");
        other.payload = Payload::IbisToSql { input: ibert_records::IbisToSqlInput { ibis: "expr = t.select('a')".into(), dialect: "duckdb".into() }, target: ibert_records::IbisToSqlTarget { sql: "SELECT a FROM t".into() } };
        let merged = concat(vec![Source { label: "x".into(), examples: vec![example("1", "SELECT a FROM t", "expr = t.select('a')"), other] }]);
        assert_eq!(merged.examples.len(), 2);
    }
}
