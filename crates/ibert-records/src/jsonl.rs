use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Example;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
    #[error("{action} `{path}`: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// Reads records one line at a time, keeping line numbers for error messages. Blank lines are
/// skipped. Each item is the 1-based line number and the record or the reason it is malformed.
pub struct JsonlReader<T = Example> {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line_number: usize,
    /// Set after an I/O error (a directory, a failing disk): reading stops there.
    failed: bool,
    _record: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> JsonlReader<T> {
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = File::open(path).map_err(|source| RecordError::Io { action: "opening", path: path.into(), source })?;
        Ok(JsonlReader { path: path.into(), lines: BufReader::new(file).lines(), line_number: 0, failed: false, _record: std::marker::PhantomData })
    }
}

impl<T: DeserializeOwned> Iterator for JsonlReader<T> {
    type Item = Result<(usize, T), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            let line = self.lines.next()?;
            self.line_number += 1;
            let line_number = self.line_number;
            let parse_error = |message: String| RecordError::Parse { path: self.path.clone(), line: line_number, message };
            let line = match line {
                Ok(line) => line,
                Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                    return Some(Err(parse_error(format!("not UTF-8 text: {error}"))));
                }
                Err(error) => {
                    self.failed = true;
                    return Some(Err(parse_error(format!("reading failed: {error}"))));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(serde_json::from_str(&line).map(|record| (line_number, record)).map_err(|error| parse_error(error.to_string())));
        }
    }
}

/// Reads a whole file, stopping at the first malformed line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, RecordError> {
    JsonlReader::open(path)?.map(|item| item.map(|(_, record)| record)).collect()
}

/// Writes a whole file completely or not at all (see [`JsonlWriter`]).
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), RecordError> {
    let mut writer = JsonlWriter::create(path)?;
    for record in records {
        writer.write(record)?;
    }
    writer.commit()?;
    Ok(())
}

/// Writes records to a temporary file beside `path`; [`JsonlWriter::commit`] renames it into
/// place. Dropped without a commit (an error, Ctrl-C), it leaves `path` as it was.
pub struct JsonlWriter {
    path: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    written: u64,
}

impl JsonlWriter {
    pub fn create(path: &Path) -> Result<Self, RecordError> {
        let io_error = |action, source| RecordError::Io { action, path: path.into(), source };
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io_error("creating the folder of", e))?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!(".{file_name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // A dataset file is readable like any other file once renamed into place (temporary
        // files default to owner-only).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let temp = builder.tempfile_in(&dir).map_err(|e| io_error("creating a temporary file for", e))?;
        Ok(JsonlWriter { path: path.into(), file: BufWriter::new(temp), written: 0 })
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), RecordError> {
        let io_error = |source| RecordError::Io { action: "writing", path: self.path.clone(), source };
        serde_json::to_writer(&mut self.file, record).map_err(|e| io_error(std::io::Error::other(e)))?;
        self.file.write_all(b"\n").map_err(io_error)?;
        self.written += 1;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and renames the finished file into place.
    pub fn commit(self) -> Result<PathBuf, RecordError> {
        let path = self.path;
        let io_error = |action, source| RecordError::Io { action, path: path.clone(), source };
        let temp = self.file.into_inner().map_err(|e| io_error("flushing", e.into_error()))?;
        temp.as_file().sync_all().map_err(|e| io_error("syncing", e))?;
        temp.persist(&path).map_err(|e| io_error("renaming into place", e.error))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_line_reports_file_line_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        let good = r#"{"id": "a", "task": "qa", "input": {"question": "q"}, "target": {"answer": "a"}}"#;
        std::fs::write(&path, format!("{good}\n\n{{\"id\": \"b\", \"task\": \"qa\"\n")).unwrap();
        let error = read_jsonl::<Example>(&path).unwrap_err().to_string();
        assert!(error.starts_with(&format!("{}:3: ", path.display())), "{error}");
        assert!(error.contains("EOF"), "{error}");
    }

    #[test]
    fn a_directory_gives_one_error_not_an_endless_stream() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<_> = JsonlReader::<Example>::open(dir.path()).map(|reader| reader.take(5).collect()).unwrap_or_default();
        assert!(items.len() <= 1, "{} items", items.len());
    }

    #[test]
    fn missing_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        std::fs::write(&path, r#"{"id": "a", "task": "sql_to_ibis", "input": {"sql": "SELECT 1"}, "target": {}}"#).unwrap();
        let error = read_jsonl::<Example>(&path).unwrap_err().to_string();
        assert!(error.contains(":1: ") && error.contains("`ibis`"), "{error}");
    }

    #[test]
    fn uncommitted_writer_leaves_no_file_and_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        {
            let mut writer = JsonlWriter::create(&path).unwrap();
            writer.write(&serde_json::json!({"a": 1})).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temporary file is removed");
    }

    #[test]
    fn committed_writer_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("out.jsonl");
        let mut writer = JsonlWriter::create(&path).unwrap();
        writer.write(&serde_json::json!({"a": 1})).unwrap();
        writer.write(&serde_json::json!({"a": 2})).unwrap();
        assert_eq!(writer.written(), 2);
        writer.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }
}
