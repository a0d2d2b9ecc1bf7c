//! Worked examples for a prompt, retrieved from the train split by likeness: records of the
//! same task whose request shares the most words with this one, and whose tables are this
//! request's tables where possible (a worked example over other tables teaches the model their
//! names). Only train records may be indexed: eval reads the test split.

use std::collections::{BTreeSet, HashSet};

use ibert_records::{Example, Task};

use crate::prompt::{Shot, Tables, TaskInput, user_message};

/// The train records of one task, ready to search.
pub struct ShotIndex {
    entries: Vec<Entry>,
}

struct Entry {
    words: HashSet<String>,
    tables: BTreeSet<String>,
    shot: Shot,
    id: String,
}

impl ShotIndex {
    /// Indexes the records of `task` among `train` (records of other tasks are skipped).
    pub fn new(task: Task, train: &[Example]) -> ShotIndex {
        let entries = train
            .iter()
            .filter(|example| example.task() == task)
            .map(|example| Entry {
                words: words(&user_message(&TaskInput::of(example))),
                tables: example.context.tables.keys().cloned().collect(),
                shot: Shot::of(example),
                id: example.id.clone(),
            })
            .collect();
        ShotIndex { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `k` records most like `input` over `tables`, best first; never the record `exclude`
    /// (a request's own record, when the index holds it).
    pub fn nearest(&self, input: &TaskInput, tables: &Tables, k: usize, exclude: Option<&str>) -> Vec<Shot> {
        let wanted = words(&user_message(input));
        let names: BTreeSet<String> = tables.keys().cloned().collect();
        let mut scored: Vec<(f64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| Some(entry.id.as_str()) != exclude)
            .map(|(index, entry)| {
                let shared = entry.words.intersection(&wanted).count() as f64;
                let union = entry.words.union(&wanted).count().max(1) as f64;
                let same_tables = !entry.tables.is_empty() && entry.tables.is_subset(&names);
                (shared / union + if same_tables { 1.0 } else { 0.0 }, index)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, index)| self.entries[index].shot.clone()).collect()
    }
}

/// The lowercase words (identifiers, keywords, numbers) of a text.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|word| word.len() > 1).map(str::to_ascii_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, sql: &str, table: &str) -> Example {
        serde_json::from_value(serde_json::json!({
            "id": id, "task": "sql_to_ibis", "input": {"sql": sql}, "target": {"ibis": format!("expr = {table}")},
            "context": {"tables": {table: {"schema": {"id": "int64"}}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_nearest_records_over_the_same_tables_come_first_and_never_the_request_itself() {
        let train = vec![
            record("a", "SELECT status, COUNT(*) FROM orders GROUP BY status", "orders"),
            record("b", "SELECT status, COUNT(*) FROM tickets GROUP BY status", "tickets"),
            record("c", "SELECT id FROM tickets WHERE id > 3", "tickets"),
        ];
        let index = ShotIndex::new(Task::SqlToIbis, &train);
        let tables: Tables = serde_json::from_value(serde_json::json!({"tickets": {"id": "int64", "status": "string"}})).unwrap();
        let input = TaskInput::SqlToIbis { sql: "SELECT status, COUNT(*) AS n FROM tickets GROUP BY status" };
        let shots = index.nearest(&input, &tables, 2, None);
        assert_eq!(shots[0].assistant, "```python\nexpr = tickets\n```");
        assert!(shots[0].user.contains("FROM tickets GROUP BY"), "{}", shots[0].user);
        let without_b = index.nearest(&input, &tables, 1, Some("b"));
        assert!(without_b[0].user.contains("WHERE id > 3"), "{}", without_b[0].user);
    }
}
