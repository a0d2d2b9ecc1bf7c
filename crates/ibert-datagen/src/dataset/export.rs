//! A dataset's splits in the formats trainers read: Parquet in the Hugging Face layout
//! (`data/{split}-00000-of-00001.parquet`, zstd) with a dataset card, chat `messages` JSONL (TRL's
//! and Axolotl's conversational format) and `prompt` / `completion` JSONL (TRL's
//! prompt-completion format). Every row carries the record's stored prompt (the task library's
//! messages, so training reads what inference sends) and the answer as the assistant's message.
//!
//! Parquet is written by the embedded DuckDB (its `COPY ... (FORMAT parquet)`), which the
//! verifier already bundles: no second Parquet implementation in the binary.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ibert_records::{ChatMessage, Example, RecordError, read_jsonl};
use serde_json::{Value, json};

/// The splits, in the order the card lists them.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Messages,
    PromptCompletion,
}

impl Format {
    pub const NAMES: [&'static str; 3] = ["parquet", "messages", "prompt-completion"];

    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "parquet" => Some(Format::Parquet),
            "messages" => Some(Format::Messages),
            "prompt-completion" => Some(Format::PromptCompletion),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error("{path}: record {id} has no stored prompt (`messages`); rebuild the dataset with `ibert data all`")]
    NoMessages { path: PathBuf, id: String },
    #[error("none of {} exists in {dir}; run `ibert data all` first (it writes the splits there)", SPLITS.map(|s| format!("{s}.jsonl")).join(", "))]
    NoSplits { dir: PathBuf },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("writing {path} as Parquet: {message}")]
    Parquet { path: PathBuf, message: String },
}

/// What was written: the files, and the rows per split and per task.
#[derive(Debug, Default)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    /// Rows per split, in the order of [`SPLITS`].
    pub rows: Vec<(String, usize)>,
    pub tasks: BTreeMap<String, usize>,
}

/// Writes the splits of `splits_dir` (`train.jsonl`, `validation.jsonl`, `test.jsonl`; those that
/// exist) to `out` in `format`. `answer` renders a record's target as the assistant's message.
/// Each file is written beside its place and renamed into it, so a stopped export leaves no
/// half-written file.
pub fn export(splits_dir: &Path, out: &Path, format: Format, answer: &dyn Fn(&Example) -> String) -> Result<Exported, ExportError> {
    let mut exported = Exported::default();
    // Every record is read and converted before anything is written: a bad record stops the
    // export with nothing of it on disk.
    let mut converted = Vec::new();
    for split in SPLITS {
        let path = splits_dir.join(format!("{split}.jsonl"));
        if !path.exists() {
            continue;
        }
        let records: Vec<Example> = read_jsonl(&path)?;
        let mut rows = Vec::with_capacity(records.len());
        for record in &records {
            rows.push(row(record, &path, format, answer)?);
            *exported.tasks.entry(record.task().as_str().to_string()).or_insert(0) += 1;
        }
        exported.rows.push((split.to_string(), rows.len()));
        converted.push((split, rows));
    }
    if converted.is_empty() {
        return Err(ExportError::NoSplits { dir: splits_dir.to_path_buf() });
    }
    for (split, rows) in &converted {
        let target = match format {
            Format::Parquet => out.join("data").join(format!("{split}-00000-of-00001.parquet")),
            Format::Messages | Format::PromptCompletion => out.join(format!("{split}.jsonl")),
        };
        match format {
            Format::Parquet => write_parquet(rows, &target)?,
            Format::Messages | Format::PromptCompletion => write_lines(rows, &target)?,
        }
        exported.files.push(target);
    }
    if format == Format::Parquet {
        let card = out.join("README.md");
        write_atomically(&card, dataset_card(&exported).as_bytes())?;
        exported.files.push(card);
    }
    Ok(exported)
}

/// One record as a row of `format`.
fn row(record: &Example, path: &Path, format: Format, answer: &dyn Fn(&Example) -> String) -> Result<Value, ExportError> {
    let prompt = record.messages.as_ref().ok_or_else(|| ExportError::NoMessages { path: path.to_path_buf(), id: record.id.clone() })?;
    let completion = ChatMessage::new("assistant", &answer(record));
    Ok(match format {
        Format::Messages => json!({"messages": prompt.iter().chain([&completion]).collect::<Vec<_>>()}),
        Format::PromptCompletion => json!({"prompt": prompt, "completion": [completion]}),
        Format::Parquet => json!({
            "id": record.id,
            "task": record.task().as_str(),
            "messages": prompt,
            "completion": completion.content,
            "source": record.meta.source,
            "features": record.meta.features,
            "difficulty": record.meta.difficulty,
            "dialect": record.dialect,
            "verification_level": record.verification.as_ref().map(|v| serde_json::to_value(v.level).unwrap_or(Value::Null)),
            "record": serde_json::to_string(record).unwrap_or_default(),
        }),
    })
}

fn write_lines(rows: &[Value], target: &Path) -> Result<(), ExportError> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.to_string());
        text.push('\n');
    }
    write_atomically(target, text.as_bytes())
}

/// The rows through DuckDB into a zstd Parquet file, with the column types spelled out (not
/// guessed from the data, so that every split has the same schema).
fn write_parquet(rows: &[Value], target: &Path) -> Result<(), ExportError> {
    let failed = |message: String| ExportError::Parquet { path: target.to_path_buf(), message };
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io { action: "creating", path: dir.to_path_buf(), source })?;
    let staging = tempfile::Builder::new().prefix(".rows.").suffix(".jsonl").tempfile_in(dir).map_err(|e| failed(e.to_string()))?;
    write_lines(rows, staging.path())?;
    let partial = tempfile::Builder::new().prefix(".partial.").suffix(".parquet").tempfile_in(dir).map_err(|e| failed(e.to_string()))?;
    let connection = duckdb::Connection::open_in_memory().map_err(|e| failed(e.to_string()))?;
    let columns = "{id: 'VARCHAR', task: 'VARCHAR', messages: 'STRUCT(role VARCHAR, content VARCHAR)[]', completion: 'VARCHAR', \
                   source: 'VARCHAR', features: 'VARCHAR[]', difficulty: 'VARCHAR', dialect: 'VARCHAR', verification_level: 'VARCHAR', record: 'VARCHAR'}";
    let quote = |path: &Path| path.display().to_string().replace('\'', "''");
    let copy = format!(
        "COPY (SELECT * FROM read_json('{}', format = 'newline_delimited', columns = {columns})) TO '{}' (FORMAT parquet, COMPRESSION zstd)",
        quote(staging.path()),
        quote(partial.path())
    );
    connection.execute_batch(&copy).map_err(|e| failed(e.to_string()))?;
    partial.persist(target).map_err(|e| ExportError::Io { action: "renaming into", path: target.to_path_buf(), source: e.error })?;
    Ok(())
}

fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let io = |action, source| ExportError::Io { action, path: target.to_path_buf(), source };
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("creating the folder of", e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".export.").suffix(".tmp");
    // Readable like any other file once in place (temporary files default to owner-only).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut file = builder.tempfile_in(dir).map_err(|e| io("creating a temporary file for", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.persist(target).map_err(|e| io("renaming into", e.error))?;
    Ok(())
}

/// The Hugging Face dataset card: the `configs` / `data_files` front matter the `datasets`
/// library reads, then the counts, the columns and how every record was checked.
fn dataset_card(exported: &Exported) -> String {
    let mut card = String::from("---\nconfigs:\n- config_name: default\n  data_files:\n");
    for (split, _) in &exported.rows {
        card.push_str(&format!("  - split: {split}\n    path: data/{split}-*.parquet\n"));
    }
    card.push_str("license: mit\ntask_categories:\n- text-generation\nlanguage:\n- en\ntags:\n- code\n- ibis\n- sql\n---\n\n");
    card.push_str("# iBERT: verified SQL <-> Ibis examples\n\n");
    card.push_str("Six tasks for code models of the Ibis dataframe language (SQL to Ibis, Ibis to SQL, completion, error resolution, ");
    card.push_str("questions and answers, docstrings), written by `ibert data all` and exported with `ibert data export`.\n\n");
    card.push_str("| split | rows |\n| --- | --- |\n");
    for (split, rows) in &exported.rows {
        card.push_str(&format!("| {split} | {rows} |\n"));
    }
    card.push_str("\n| task | rows |\n| --- | --- |\n");
    for (task, rows) in &exported.tasks {
        card.push_str(&format!("| {task} | {rows} |\n"));
    }
    card.push_str(
        "\n## Columns\n\n- `messages`: the prompt (system and user messages) exactly as the task library renders it for inference.\n\
         - `completion`: the answer, as the assistant's message.\n- `task`, `source`, `features`, `difficulty`, `dialect`, `verification_level`: \
         what the record is and how far it was checked.\n- `record`: the whole record as JSON (`docs/records.md`).\n\n\
         ## How it was verified\n\nEvery SQL <-> Ibis pair was executed: real Ibis compiled the Ibis side and executed it as a user does \
         (`to_pyarrow`), embedded DuckDB ran both sides on several fixture databases, and the results had to match, types and decimals \
         included. The splits are by structure: no test record shares its template or SQL/Ibis shape with a train record.\n",
    );
    card
}
