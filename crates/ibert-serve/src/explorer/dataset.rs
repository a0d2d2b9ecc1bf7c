//! The dataset the explorer browses, indexed once at start: for every record of the splits and
//! every reject, where its line is and what the filters need (task, split, source, features,
//! difficulty, verification level, a short preview). Pages read only their own lines back from
//! the files, so a large dataset is never held in memory or sent whole to the page.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

/// The split files of `data all`, in the order the explorer lists them.
const SPLITS: [&str; 3] = ["train", "validation", "test"];
const PREVIEW_CHARS: usize = 160;

/// One line of one file.
#[derive(Debug, Clone, Copy)]
struct Line {
    file: usize,
    offset: u64,
    len: usize,
}

/// What the filters and the list show of a record.
#[derive(Debug, Clone, Serialize)]
pub struct RecordSummary {
    /// Its number in the index, for `/api/records/{n}`.
    pub n: usize,
    pub id: String,
    pub task: String,
    pub split: String,
    pub source: String,
    pub difficulty: String,
    pub level: String,
    pub features: Vec<String>,
    pub preview: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectSummary {
    pub n: usize,
    pub id: String,
    pub reason: String,
    /// The file it was written to, relative to the dataset folder (the step that rejected it).
    pub file: String,
    pub detail: String,
}

/// A filter of the record list; empty fields match everything.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordQuery {
    pub task: String,
    pub split: String,
    pub source: String,
    pub feature: String,
    pub difficulty: String,
    pub level: String,
    /// Case-insensitive text anywhere in the record.
    pub q: String,
    pub offset: usize,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RejectQuery {
    pub reason: String,
    pub q: String,
    pub offset: usize,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub items: Vec<T>,
}

pub struct Dataset {
    root: PathBuf,
    files: Vec<PathBuf>,
    records: Vec<(Line, RecordSummary)>,
    rejects: Vec<(Line, RejectSummary)>,
    /// `stats.json` of `data all`, when there is one.
    stats: Option<Value>,
}

/// The most items one page may hold.
pub const MAX_PAGE: usize = 200;

impl Dataset {
    /// Indexes `root/splits/*.jsonl` and every `*rejects*.jsonl` below `root` (one level of
    /// folders, as `data all` writes them).
    pub fn open(root: &Path) -> anyhow::Result<Dataset> {
        let mut dataset = Dataset { root: root.to_path_buf(), files: Vec::new(), records: Vec::new(), rejects: Vec::new(), stats: None };
        for split in SPLITS {
            let path = root.join("splits").join(format!("{split}.jsonl"));
            if path.exists() {
                dataset.index_records(&path, split)?;
            }
        }
        if dataset.records.is_empty() {
            anyhow::bail!("{}: no split files (splits/train.jsonl, ...); point --data at a folder `ibert data all` wrote", root.display());
        }
        for path in reject_files(root)? {
            dataset.index_rejects(&path)?;
        }
        let stats_path = root.join("stats.json");
        if stats_path.exists() {
            let text = std::fs::read_to_string(&stats_path).with_context(|| format!("reading {}", stats_path.display()))?;
            dataset.stats = Some(serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", stats_path.display()))?);
        }
        Ok(dataset)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    pub fn reject_count(&self) -> usize {
        self.rejects.len()
    }

    fn index_records(&mut self, path: &Path, split: &str) -> anyhow::Result<()> {
        let file = self.files.len();
        self.files.push(path.to_path_buf());
        for_each_line(path, |line, offset, number| {
            let record: Value = serde_json::from_str(line).with_context(|| format!("{}:{number}: not a JSON record", path.display()))?;
            let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_string();
            let meta = record.get("meta");
            let summary = RecordSummary {
                n: self.records.len(),
                id: text(record.get("id")),
                task: text(record.get("task")),
                split: meta.and_then(|m| m.get("split")).and_then(Value::as_str).unwrap_or(split).to_string(),
                source: text(meta.and_then(|m| m.get("source"))),
                difficulty: text(meta.and_then(|m| m.get("difficulty"))),
                level: text(record.get("verification").and_then(|v| v.get("level"))),
                features: meta
                    .and_then(|m| m.get("features"))
                    .and_then(Value::as_array)
                    .map(|features| features.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default(),
                preview: preview(record.get("input")),
            };
            self.records.push((Line { file, offset, len: line.len() }, summary));
            Ok(())
        })
    }

    fn index_rejects(&mut self, path: &Path) -> anyhow::Result<()> {
        let file = self.files.len();
        self.files.push(path.to_path_buf());
        let relative = path.strip_prefix(&self.root).unwrap_or(path).display().to_string();
        for_each_line(path, |line, offset, number| {
            let reject: Value = serde_json::from_str(line).with_context(|| format!("{}:{number}: not a JSON reject", path.display()))?;
            let text = |key: &str| reject.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
            let summary = RejectSummary {
                n: self.rejects.len(),
                id: text("id"),
                reason: text("reason"),
                file: relative.clone(),
                detail: text("detail").chars().take(PREVIEW_CHARS).collect(),
            };
            self.rejects.push((Line { file, offset, len: line.len() }, summary));
            Ok(())
        })
    }

    /// Counts of every filter's values, and the statistics of `data all`.
    pub fn summary(&self) -> Value {
        let mut facets: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for (_, record) in &self.records {
            for (facet, value) in
                [("task", &record.task), ("split", &record.split), ("source", &record.source), ("difficulty", &record.difficulty), ("level", &record.level)]
            {
                *facets.entry(facet).or_default().entry(value.as_str()).or_default() += 1;
            }
            for feature in &record.features {
                *facets.entry("feature").or_default().entry(feature.as_str()).or_default() += 1;
            }
        }
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, reject) in &self.rejects {
            *reasons.entry(reject.reason.as_str()).or_default() += 1;
        }
        serde_json::json!({
            "folder": self.root.display().to_string(),
            "records": self.records.len(),
            "rejects": self.rejects.len(),
            "facets": facets,
            "reject_reasons": reasons,
            "stats": self.stats,
        })
    }

    pub fn records(&self, query: &RecordQuery) -> anyhow::Result<Page<RecordSummary>> {
        let needle = query.q.to_lowercase();
        let mut matched = Vec::new();
        for (line, record) in &self.records {
            let facets_match = matches(&query.task, &record.task)
                && matches(&query.split, &record.split)
                && matches(&query.source, &record.source)
                && matches(&query.difficulty, &record.difficulty)
                && matches(&query.level, &record.level)
                && (query.feature.is_empty() || record.features.contains(&query.feature));
            if facets_match && (needle.is_empty() || self.read(*line)?.to_lowercase().contains(&needle)) {
                matched.push(record);
            }
        }
        Ok(page(matched, query.offset, query.limit))
    }

    pub fn rejects(&self, query: &RejectQuery) -> anyhow::Result<Page<Value>> {
        let needle = query.q.to_lowercase();
        let mut matched = Vec::new();
        for (line, reject) in &self.rejects {
            if matches(&query.reason, &reject.reason) {
                let text = self.read(*line)?;
                if needle.is_empty() || text.to_lowercase().contains(&needle) {
                    matched.push((reject, text));
                }
            }
        }
        let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let total = matched.len();
        let items = matched
            .into_iter()
            .skip(query.offset)
            .take(limit)
            .map(|(reject, text)| {
                let mut value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Value::Object(object) = &mut value {
                    object.insert("n".to_string(), reject.n.into());
                    object.insert("file".to_string(), reject.file.clone().into());
                }
                value
            })
            .collect();
        Ok(Page { total, offset: query.offset, limit, items })
    }

    /// Record `n` as written, or None past the end.
    pub fn record(&self, n: usize) -> anyhow::Result<Option<Value>> {
        let Some((line, summary)) = self.records.get(n) else { return Ok(None) };
        let mut value: Value = serde_json::from_str(&self.read(*line)?).context("a record changed on disk since the server started")?;
        if let Value::Object(object) = &mut value {
            object.insert("n".to_string(), n.into());
            object.insert("split".to_string(), summary.split.clone().into());
        }
        Ok(Some(value))
    }

    fn read(&self, line: Line) -> anyhow::Result<String> {
        let path = &self.files[line.file];
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        file.seek(SeekFrom::Start(line.offset)).with_context(|| format!("reading {}", path.display()))?;
        let mut bytes = vec![0; line.len];
        file.read_exact(&mut bytes).with_context(|| format!("{}: shorter than when the server started", path.display()))?;
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 at byte {}", path.display(), line.offset))
    }
}

fn matches(wanted: &str, value: &str) -> bool {
    wanted.is_empty() || wanted == value
}

fn page<T: Clone>(matched: Vec<&T>, offset: usize, limit: Option<usize>) -> Page<T> {
    let limit = limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let total = matched.len();
    Page { total, offset, limit, items: matched.into_iter().skip(offset).take(limit).cloned().collect() }
}

/// The first text field of a record's input, shortened to one line.
fn preview(input: Option<&Value>) -> String {
    let text = input.and_then(Value::as_object).and_then(|fields| fields.values().find_map(Value::as_str)).unwrap_or_default();
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = flat.chars().take(PREVIEW_CHARS).collect();
    if flat.chars().count() > PREVIEW_CHARS {
        short.push('…');
    }
    short
}

/// Calls `each(line, byte offset, 1-based line number)` for every non-empty line of `path`.
fn for_each_line(path: &Path, mut each: impl FnMut(&str, u64, usize) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let (mut offset, mut number, mut line) = (0u64, 0usize, String::new());
    loop {
        line.clear();
        let read = reader.read_line(&mut line).with_context(|| format!("{}:{}: not UTF-8 text", path.display(), number + 1))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let content = line.trim_end_matches(['\n', '\r']);
        if !content.trim().is_empty() {
            each(content, offset, number)?;
        }
        offset += read as u64;
    }
}

/// `*rejects*.jsonl` files in `root` and its direct subfolders, sorted.
fn reject_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            folders.push(path);
        }
    }
    for folder in folders {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_file() && name.contains("rejects") && name.ends_with(".jsonl") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, relative: &str, lines: &[&str]) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn record(id: &str, task: &str, source: &str, sql: &str) -> String {
        serde_json::json!({"id": id, "task": task, "input": {"sql": sql}, "meta": {"source": source, "features": ["join"]}, "verification": {"level": "executed"}}).to_string()
    }

    #[test]
    fn filters_search_and_pages_read_only_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let a = record("a", "sql_to_ibis", "template", "SELECT 1 FROM orders");
        let b = record("b", "qa", "mined", "SELECT 2 FROM customers");
        let c = record("c", "sql_to_ibis", "mined", "SELECT 3 FROM Orders");
        write(dir.path(), "splits/train.jsonl", &[&a, &b]);
        write(dir.path(), "splits/test.jsonl", &[&c]);
        write(dir.path(), "sql2ibis/rejects.jsonl", &[r#"{"id":"x","reason":"ibis_error","detail":"AttributeError: no"}"#]);
        let dataset = Dataset::open(dir.path()).unwrap();
        assert_eq!((dataset.record_count(), dataset.reject_count()), (3, 1));

        let ids = |query: RecordQuery| dataset.records(&query).unwrap().items.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(RecordQuery { task: "sql_to_ibis".into(), ..Default::default() }), ["a", "c"]);
        assert_eq!(ids(RecordQuery { split: "test".into(), ..Default::default() }), ["c"]);
        assert_eq!(ids(RecordQuery { source: "mined".into(), q: "orders".into(), ..Default::default() }), ["c"]);
        assert_eq!(ids(RecordQuery { offset: 1, limit: Some(1), ..Default::default() }), ["b"]);
        assert_eq!(dataset.records(&RecordQuery { limit: Some(1), ..Default::default() }).unwrap().total, 3);

        let third = dataset.record(2).unwrap().unwrap();
        assert_eq!(third["input"]["sql"], "SELECT 3 FROM Orders");
        assert_eq!(third["split"], "test");
        assert!(dataset.record(3).unwrap().is_none());
        let rejects = dataset.rejects(&RejectQuery { reason: "ibis_error".into(), ..Default::default() }).unwrap();
        assert_eq!(rejects.items[0]["file"], "sql2ibis/rejects.jsonl");
        assert_eq!(dataset.summary()["facets"]["task"]["sql_to_ibis"], 2);
    }

    #[test]
    fn a_malformed_line_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "splits/train.jsonl", &[&record("a", "qa", "mined", "x"), "{not json"]);
        let error = format!("{:#}", Dataset::open(dir.path()).err().unwrap());
        assert!(error.contains("splits/train.jsonl:2: not a JSON record"), "{error}");
        let empty = tempfile::tempdir().unwrap();
        let error = format!("{:#}", Dataset::open(empty.path()).err().unwrap());
        assert!(error.contains("no split files"), "{error}");
    }
}
