//! What a dataset holds: records per task, source, feature, difficulty and verification level,
//! as a terminal table and as JSON.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::path::Path;

use ibert_records::{Example, Task, VerificationLevel};

use super::split;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub total: usize,
    pub by_task: BTreeMap<String, usize>,
    pub by_source: BTreeMap<String, usize>,
    pub by_feature: BTreeMap<String, usize>,
    pub by_difficulty: BTreeMap<String, usize>,
    /// `executed`, `compiled`, `parsed`, or `unverified`.
    pub by_level: BTreeMap<String, usize>,
    /// Task -> level -> records.
    pub by_task_and_level: BTreeMap<String, BTreeMap<String, usize>>,
    /// Task -> split (`train`, `validation`, `test`, or `none`) -> records.
    pub by_task_and_split: BTreeMap<String, BTreeMap<String, usize>>,
    #[serde(default)]
    pub diversity: Diversity,
}

/// How varied a dataset is, beyond its size: a million literal swaps of a few hundred queries
/// would have many records and few structures.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Diversity {
    /// Distinct SQL shapes (names and literals abstracted, as the splits compare them).
    pub sql_structures: usize,
    /// Distinct Ibis shapes (method chains, names and literals abstracted).
    pub ibis_structures: usize,
    /// Distinct features named by the records.
    pub features: usize,
    /// Distinct token trigrams over all trigrams of the sql_to_ibis records' SQL shapes (1.0: no
    /// trigram repeats; literal swaps of one query repeat all of them).
    pub sql_distinct_trigrams: f64,
}

impl Diversity {
    fn of(examples: &[Example], features: usize) -> Diversity {
        let (mut sql, mut ibis) = (HashSet::new(), HashSet::new());
        let (mut trigrams, mut total) = (HashSet::new(), 0usize);
        for example in examples {
            for key in split::structure_keys(example) {
                if let Some(shape) = key.strip_prefix("sql:") {
                    sql.insert(shape.to_string());
                    if example.task() == Task::SqlToIbis {
                        let tokens: Vec<&str> = shape.split(' ').collect();
                        for window in tokens.windows(3) {
                            total += 1;
                            trigrams.insert(window.join(" "));
                        }
                    }
                } else if let Some(shape) = key.strip_prefix("ibis:") {
                    ibis.insert(shape.to_string());
                }
            }
        }
        let ratio = if total == 0 { 0.0 } else { trigrams.len() as f64 / total as f64 };
        Diversity { sql_structures: sql.len(), ibis_structures: ibis.len(), features, sql_distinct_trigrams: (ratio * 1e4).round() / 1e4 }
    }
}

impl Stats {
    pub fn of(examples: &[Example]) -> Stats {
        let mut stats = Stats { total: examples.len(), ..Stats::default() };
        for example in examples {
            let task = example.task().to_string();
            let level = match example.verification.as_ref().map(|v| v.level) {
                Some(VerificationLevel::Executed) => "executed",
                Some(VerificationLevel::Compiled) => "compiled",
                Some(VerificationLevel::Parsed) => "parsed",
                None => "unverified",
            };
            *stats.by_task.entry(task.clone()).or_default() += 1;
            *stats.by_source.entry(if example.meta.source.is_empty() { "unknown".into() } else { example.meta.source.clone() }).or_default() += 1;
            for feature in &example.meta.features {
                *stats.by_feature.entry(feature.clone()).or_default() += 1;
            }
            *stats.by_difficulty.entry(example.meta.difficulty.clone().unwrap_or_else(|| "unrated".into())).or_default() += 1;
            *stats.by_level.entry(level.into()).or_default() += 1;
            *stats.by_task_and_level.entry(task.clone()).or_default().entry(level.into()).or_default() += 1;
            let split = example.meta.split.clone().unwrap_or_else(|| "none".into());
            *stats.by_task_and_split.entry(task).or_default().entry(split).or_default() += 1;
        }
        stats.diversity = Diversity::of(examples, stats.by_feature.len());
        stats
    }

    /// Writes the statistics as pretty JSON, through a temporary file renamed into place.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut builder = tempfile::Builder::new();
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let temp = builder.tempfile_in(dir)?;
        serde_json::to_writer_pretty(&temp, self)?;
        temp.persist(path)?;
        Ok(())
    }

    /// The statistics as aligned text; `features` limits the feature list to the most common.
    pub fn render(&self, features: usize) -> String {
        let mut out = String::new();
        let levels = ["executed", "compiled", "parsed", "unverified"];
        let _ = writeln!(out, "{} records", self.total);
        let diversity = &self.diversity;
        let _ = writeln!(
            out,
            "{} distinct SQL structures, {} distinct Ibis structures, {} features; distinct SQL trigrams {:.3}",
            diversity.sql_structures, diversity.ibis_structures, diversity.features, diversity.sql_distinct_trigrams
        );
        let _ = writeln!(out, "\n{:<20} {:>8} {:>9} {:>9} {:>7} {:>10}", "task", "records", "executed", "compiled", "parsed", "unverified");
        for (task, count) in &self.by_task {
            let per_level = &self.by_task_and_level[task];
            let cells: Vec<String> = levels.iter().map(|l| per_level.get(*l).copied().unwrap_or(0).to_string()).collect();
            let _ = writeln!(out, "{task:<20} {count:>8} {:>9} {:>9} {:>7} {:>10}", cells[0], cells[1], cells[2], cells[3]);
        }
        if self.by_task_and_split.values().any(|splits| splits.keys().any(|split| split != "none")) {
            let _ = writeln!(out, "\n{:<20} {:>8} {:>11} {:>8}", "task", "train", "validation", "test");
            for (task, splits) in &self.by_task_and_split {
                let count = |split: &str| splits.get(split).copied().unwrap_or(0);
                let _ = writeln!(out, "{task:<20} {:>8} {:>11} {:>8}", count("train"), count("validation"), count("test"));
            }
        }
        for (title, counts) in [("source", &self.by_source), ("difficulty", &self.by_difficulty)] {
            let _ = writeln!(out, "\n{title:<20} {:>8}", "records");
            for (name, count) in counts {
                let _ = writeln!(out, "{name:<20} {count:>8}");
            }
        }
        let mut common: Vec<(&String, &usize)> = self.by_feature.iter().collect();
        common.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(out, "\n{:<32} {:>8}   ({} features; the {} most common)", "feature", "records", common.len(), features.min(common.len()));
        for (name, count) in common.into_iter().take(features) {
            let _ = writeln!(out, "{name:<32} {count:>8}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibert_records::{Context, Meta, Payload, QaInput, QaTarget, Verification};

    fn qa(source: &str, level: Option<VerificationLevel>) -> Example {
        Example {
            id: "x".into(),
            payload: Payload::Qa { input: QaInput { question: "q".into() }, target: QaTarget { answer: "a".into(), code_example: None } },
            dialect: "duckdb".into(),
            backend: "duckdb".into(),
            ibis_version: String::new(),
            system_prompt: None,
            messages: None,
            context: Context::default(),
            meta: Meta { source: source.into(), features: vec!["join".into()], ..Meta::default() },
            verification: level.map(|level| Verification {
                level,
                ibis_version: "12.0.0".into(),
                duckdb_version: "1.5".into(),
                fixture_seeds: vec![],
                fixture_rows: vec![],
                comparison: None,
                result_fingerprint: None,
                executed_with_ibis: vec![],
                fixture_profile: None,
            }),
        }
    }

    fn pair(sql: &str, ibis: &str) -> Example {
        let payload = Payload::SqlToIbis {
            input: ibert_records::SqlToIbisInput { sql: sql.into() },
            target: ibert_records::SqlToIbisTarget { ibis: ibis.into(), expr_name: "expr".into() },
        };
        Example { payload, meta: Meta { source: "transpiler".into(), ..Meta::default() }, ..qa("transpiler", None) }
    }

    #[test]
    fn diversity_counts_structures_not_literal_swaps() {
        let swaps = [pair("SELECT a FROM t WHERE a > 1", "expr = t.filter(t.a > 1)"), pair("SELECT b FROM u WHERE b > 7", "expr = u.filter(u.b > 7)")];
        let swapped = Stats::of(&swaps).diversity;
        assert_eq!((swapped.sql_structures, swapped.ibis_structures), (1, 1));
        assert_eq!(swapped.sql_distinct_trigrams, 0.5, "the second query repeats every trigram of the first");
        let different = [swaps[0].clone(), pair("SELECT count(*) FROM t GROUP BY a ORDER BY a", "expr = t.group_by(t.a).aggregate(n=_.count())")];
        let varied = Stats::of(&different).diversity;
        assert_eq!((varied.sql_structures, varied.ibis_structures), (2, 2));
        assert!(varied.sql_distinct_trigrams > 0.9, "{}", varied.sql_distinct_trigrams);
    }

    #[test]
    fn counts_every_dimension() {
        let stats = Stats::of(&[qa("template", Some(VerificationLevel::Executed)), qa("mined", None), qa("mined", Some(VerificationLevel::Parsed))]);
        assert_eq!(stats.total, 3);
        assert_eq!(stats.by_source["mined"], 2);
        assert_eq!(stats.by_feature["join"], 3);
        assert_eq!(stats.by_task_and_level["qa"]["unverified"], 1);
        assert_eq!(stats.by_level["executed"], 1);
        let table = stats.render(10);
        assert!(table.contains("qa                          3         1         0       1          1"), "{table}");
    }
}
