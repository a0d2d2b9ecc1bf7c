//! The user's own data as a reference database (`--db`): a DuckDB file, or a folder of Parquet
//! and CSV files (one table per file, named after it). It is copied into a DuckDB file of our
//! own, in a temporary folder, with the `twin` schema verification needs (the same rows in
//! another physical order); the user's files are only read.

use std::path::{Path, PathBuf};

use duckdb::Connection;

use crate::column_type::quote_identifier;

#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    #[error("{}: no such file or folder", .0.display())]
    Missing(PathBuf),
    #[error("{}: no tables found\nhint: give a DuckDB database file, or a folder of .parquet / .csv files (one table per file)", .0.display())]
    NoTables(PathBuf),
    #[error("{path}: {detail}")]
    Unreadable { path: PathBuf, detail: String },
    #[error("preparing the data of {path}: {source}")]
    DuckDb { path: PathBuf, source: duckdb::Error },
    #[error("creating a temporary folder: {0}")]
    Io(std::io::Error),
}

/// A prepared copy of the user's data, alive as long as this value.
pub struct UserDatabase {
    _dir: tempfile::TempDir,
    /// The DuckDB file holding `main` (the data) and `twin`.
    pub path: PathBuf,
    /// Table names, sorted.
    pub tables: Vec<String>,
    /// Rows of each table, in the order of `tables`.
    pub rows: Vec<u64>,
}

/// Copies the tables of `source` (a DuckDB file, or a folder of Parquet/CSV files) into a new
/// DuckDB file with a twin schema.
pub fn prepare_user_database(source: &Path) -> Result<UserDatabase, UserDataError> {
    if !source.exists() {
        return Err(UserDataError::Missing(source.to_path_buf()));
    }
    let dir = tempfile::Builder::new().prefix("ibert-db-").tempdir().map_err(UserDataError::Io)?;
    let path = dir.path().join("data.duckdb");
    let duckdb_error = |source_error| UserDataError::DuckDb { path: source.to_path_buf(), source: source_error };
    let connection = Connection::open(&path).map_err(duckdb_error)?;
    connection.execute_batch("SET threads = 1; CREATE SCHEMA twin;").map_err(duckdb_error)?;
    let quoted_path = |path: &Path| format!("'{}'", path.to_string_lossy().replace('\'', "''"));
    let mut tables = Vec::new();
    if source.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(source)
            .map_err(|error| UserDataError::Unreadable { path: source.to_path_buf(), detail: error.to_string() })?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| reader_for(path).is_some())
            .collect();
        files.sort();
        for file in files {
            let name = table_name(&file);
            let reader = reader_for(&file).expect("filtered");
            connection
                .execute_batch(&format!("CREATE TABLE main.{} AS SELECT * FROM {reader}({})", quote_identifier(&name), quoted_path(&file)))
                .map_err(|error| UserDataError::Unreadable { path: file.clone(), detail: first_line(&error.to_string()) })?;
            tables.push(name);
        }
    } else {
        connection.execute_batch(&format!("ATTACH {} AS source (READ_ONLY)", quoted_path(source))).map_err(|error| UserDataError::Unreadable {
            path: source.to_path_buf(),
            detail: format!("not a DuckDB database ({})", first_line(&error.to_string())),
        })?;
        let names: Vec<String> = {
            let mut statement = connection
                .prepare("SELECT table_name FROM duckdb_tables() WHERE database_name = 'source' AND schema_name = 'main' ORDER BY table_name")
                .map_err(duckdb_error)?;
            statement.query_map([], |row| row.get(0)).map_err(duckdb_error)?.collect::<Result<_, _>>().map_err(duckdb_error)?
        };
        for name in names {
            let quoted = quote_identifier(&name);
            connection.execute_batch(&format!("CREATE TABLE main.{quoted} AS SELECT * FROM source.main.{quoted}")).map_err(duckdb_error)?;
            tables.push(name);
        }
        connection.execute_batch("DETACH source").map_err(duckdb_error)?;
    }
    if tables.is_empty() {
        return Err(UserDataError::NoTables(source.to_path_buf()));
    }
    tables.sort();
    let mut rows = Vec::new();
    for name in &tables {
        let quoted = quote_identifier(name);
        connection
            .execute_batch(&format!("CREATE TABLE twin.{quoted} AS SELECT * FROM main.{quoted} ORDER BY hash(rowid + 7), rowid"))
            .map_err(duckdb_error)?;
        rows.push(connection.query_row(&format!("SELECT COUNT(*) FROM main.{quoted}"), [], |row| row.get::<_, i64>(0)).map_err(duckdb_error)? as u64);
    }
    connection.execute_batch("CHECKPOINT").map_err(duckdb_error)?;
    drop(connection);
    Ok(UserDatabase { _dir: dir, path, tables, rows })
}

/// The DuckDB table function that reads a data file, by its extension.
fn reader_for(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".parquet") {
        Some("read_parquet")
    } else if name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".tsv") {
        Some("read_csv_auto")
    } else {
        None
    }
}

/// `orders.csv.gz` -> `orders`.
fn table_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('.').next().unwrap_or(&name).to_string()
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_csv_and_parquet_files_becomes_tables_with_twins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("people.csv"), "id,name\n1,Ana\n2,Bo\n3,Cy\n").unwrap();
        let writer = Connection::open_in_memory().unwrap();
        let parquet = dir.path().join("orders.parquet").to_string_lossy().replace('\'', "''");
        writer.execute_batch(&format!("COPY (SELECT range AS id, range * 1.5 AS amount FROM range(5)) TO '{parquet}' (FORMAT parquet)")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not data").unwrap();
        let prepared = prepare_user_database(dir.path()).unwrap();
        assert_eq!(prepared.tables, ["orders", "people"]);
        assert_eq!(prepared.rows, [5, 3]);
        let reader = Connection::open(&prepared.path).unwrap();
        let twin: i64 = reader.query_row("SELECT COUNT(*) FROM twin.people", [], |row| row.get(0)).unwrap();
        assert_eq!(twin, 3);
    }

    #[test]
    fn a_duckdb_file_is_copied_and_the_original_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.duckdb");
        let writer = Connection::open(&file).unwrap();
        writer.execute_batch("CREATE TABLE items (id INTEGER, price DECIMAL(10, 3)); INSERT INTO items VALUES (1, 2.5), (2, 3.25);").unwrap();
        drop(writer);
        let before = std::fs::read(&file).unwrap();
        let prepared = prepare_user_database(&file).unwrap();
        assert_eq!(prepared.tables, ["items"]);
        assert_eq!(std::fs::read(&file).unwrap(), before, "the user's file is only read");
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert!(prepare_user_database(&dir.path().join("absent.duckdb")).err().unwrap().to_string().contains("no such file"));
        let empty = prepare_user_database(dir.path()).err().unwrap().to_string();
        assert!(empty.contains("no tables found") && empty.contains("hint:"), "{empty}");
        std::fs::write(dir.path().join("junk.duckdb"), "not a database").unwrap();
        let junk = prepare_user_database(&dir.path().join("junk.duckdb")).err().unwrap().to_string();
        assert!(junk.contains("junk.duckdb") && junk.contains("not a DuckDB database"), "{junk}");
        std::fs::write(dir.path().join("bad.parquet"), "garbage").unwrap();
        let bad = prepare_user_database(dir.path()).err().unwrap().to_string();
        assert!(bad.contains("bad.parquet"), "{bad}");
    }
}
