//! Query corpora: YAML files of table schemas and SQL queries (`corpus/sql/*.yaml`), and the
//! TPC-H / TPC-DS query folders (one `NN.sql` per query).

use crate::SqlDialect;
use crate::catalog::Catalog;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
pub struct CorpusQuery {
    pub id: String,
    #[serde(default)]
    pub features: Vec<String>,
    pub sql: String,
}

/// One corpus file: the schemas its queries read, the dialect they are written in, and the
/// queries.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub name: String,
    pub catalog: Catalog,
    pub dialect: SqlDialect,
    pub queries: Vec<CorpusQuery>,
}

#[derive(Debug, Deserialize)]
struct CorpusFile {
    tables: serde_json::Value,
    /// `duckdb` (the default) or `postgres`.
    #[serde(default)]
    dialect: Option<String>,
    #[serde(default)]
    queries: Vec<CorpusQuery>,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Corpus {
    /// Reads a corpus YAML file; a file with `tables:` only gives a corpus without queries.
    pub fn load(path: &Path) -> Result<Corpus, CorpusError> {
        let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io { path: path.to_path_buf(), source })?;
        let invalid = |message: String| CorpusError::Invalid { path: path.to_path_buf(), message };
        let file: CorpusFile = serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let catalog = Catalog::from_json(&file.tables).map_err(|e| invalid(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for query in &file.queries {
            if !seen.insert(query.id.as_str()) {
                return Err(invalid(format!("the query id `{}` is used twice", query.id)));
            }
        }
        let dialect = match file.dialect.as_deref() {
            None => SqlDialect::DuckDb,
            Some(name) => SqlDialect::from_name(name).ok_or_else(|| invalid(format!("the dialect `{name}` is not one of {}", SqlDialect::NAMES.join(", "))))?,
        };
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("corpus").to_string();
        Ok(Corpus { name, catalog, dialect, queries: file.queries })
    }

    /// Every `*.yaml` corpus of a folder, by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Corpus>, CorpusError> {
        Corpus::files(dir)?.iter().map(|p| Corpus::load(p)).collect()
    }

    /// The corpus files of a folder (`*.yaml`, `*.yml`), by file name.
    pub fn files(dir: &Path) -> Result<Vec<PathBuf>, CorpusError> {
        let entries = std::fs::read_dir(dir).map_err(|source| CorpusError::Io { path: dir.to_path_buf(), source })?;
        let mut paths: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")).collect();
        paths.sort();
        Ok(paths)
    }

    /// A TPC suite: the schemas from `schema_file` and the queries `NN.sql` of `queries_dir`,
    /// in numeric order, with ids `<name>_qNN`.
    pub fn load_tpc(name: &str, schema_file: &Path, queries_dir: &Path) -> Result<Corpus, CorpusError> {
        let schema = Corpus::load(schema_file)?;
        let entries = std::fs::read_dir(queries_dir).map_err(|source| CorpusError::Io { path: queries_dir.to_path_buf(), source })?;
        let mut numbered: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).map(|n| (n, p.clone())))
            .filter(|(_, p)| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        numbered.sort();
        let mut queries = Vec::new();
        for (number, path) in numbered {
            let sql = std::fs::read_to_string(&path).map_err(|source| CorpusError::Io { path: path.clone(), source })?;
            let sql = sql.trim().trim_end_matches(';').trim().to_string();
            queries.push(CorpusQuery { id: format!("{name}_q{number:02}"), features: vec![name.to_string()], sql });
        }
        Ok(Corpus { name: name.to_string(), catalog: schema.catalog, dialect: SqlDialect::DuckDb, queries })
    }
}
