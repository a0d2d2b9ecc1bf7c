//! `--db FILE|DIR`: the user's own data (a DuckDB file, or a folder of Parquet/CSV files),
//! verified on besides the fixtures. It is copied with a twin (`ibert_verify::user_data`),
//! attached read-only to the oracle's workers (so Ibis executes expressions on it too), and
//! described by Ibis itself (its schemas are what a user's `con.table(name)` gives).

use std::path::{Path, PathBuf};

use anyhow::Context;
use ibert_oracle::WorkerPool;
use ibert_verify::{ReferenceDatabase, TableSchemas, UserDatabase, prepare_user_database};

use crate::cli::VerifyOptions;
use crate::{oracle_setup, ui};

/// The name the user's data goes by (its catalog in the workers is `ref_user`).
const NAME: &str = "user";

/// The user's data, ready: keep it alive while the pool uses it.
pub struct UserData {
    _prepared: UserDatabase,
    pub reference: ReferenceDatabase,
    /// Rows per table, for messages.
    pub summary: String,
}

impl UserData {
    /// The user's tables as Ibis reads them.
    pub fn schemas(&self) -> &TableSchemas {
        &self.reference.tables
    }
}

/// The oracle, with the user's data (if `--db` was given) attached to its workers and described.
pub fn start_pool_with(options: &VerifyOptions, db: Option<&Path>) -> anyhow::Result<(WorkerPool, Option<UserData>)> {
    let Some(path) = db else { return Ok((oracle_setup::start_pool(options, &[])?, None)) };
    let spinner = ui::spinner(&format!("reading {}", path.display()));
    let prepared = prepare_user_database(path).with_context(|| format!("--db {}", path.display()))?;
    spinner.finish_and_clear();
    let mut reference = ReferenceDatabase { name: NAME.into(), path: prepared.path.clone(), tables: TableSchemas::new(), replaces_fixtures: false };
    let attachment: (String, PathBuf) = reference.worker_attachment();
    let pool = oracle_setup::start_pool(options, std::slice::from_ref(&attachment))?;
    reference.tables = pool.attached_schemas(&attachment.0).context("reading the tables of --db with Ibis")?;
    let summary = prepared.tables.iter().zip(&prepared.rows).map(|(table, rows)| format!("{table} ({rows} rows)")).collect::<Vec<_>>().join(", ");
    Ok((pool, Some(UserData { _prepared: prepared, reference, summary })))
}
