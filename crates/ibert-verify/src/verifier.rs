//! The verdict on one (SQL, Ibis) pair. See `docs/verification.md` for the rules.

use std::rc::Rc;
use std::time::{Duration, Instant};

use ibert_oracle::{CompileRequest, FailureKind, OracleError, ProgramFailure, WorkerPool};
use ibert_records::{Verification, VerificationLevel};
use sha2::{Digest, Sha256};

use crate::compare::{canonical_text, compare, same_multiset, same_sequence, sorted_rows};
use crate::fixtures::{FixtureConfig, FixtureSet, FixtureStore, ReferenceDatabase, TableSchemas};
use crate::literals::Literals;
use crate::result_set::{ResultSet, Value};
use crate::sql_text::orders_at_top_level;
use crate::watchdog::Watchdog;

/// Why a pair was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Real Ibis (or Python) raised an exception building or compiling the expression.
    IbisError,
    /// DuckDB rejected the SQL, or the SQL Ibis compiled.
    SqlError,
    /// Both ran; results differ on at least one fixture.
    Mismatch,
    /// The Ibis program ran past its time or CPU limit.
    Timeout,
    /// Empty results on every fixture: nothing was really compared.
    Vacuous,
    /// The reference SQL gives different rows for the same data in another physical order.
    Nondeterministic,
    /// The allow-list refused the Ibis program.
    Sandbox,
    /// The schema has a type fixtures cannot be generated for.
    Schema,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::IbisError => "ibis_error",
            RejectReason::SqlError => "sql_error",
            RejectReason::Mismatch => "mismatch",
            RejectReason::Timeout => "timeout",
            RejectReason::Vacuous => "vacuous",
            RejectReason::Nondeterministic => "nondeterministic",
            RejectReason::Sandbox => "sandbox",
            RejectReason::Schema => "schema",
        }
    }

    fn from_failure(kind: FailureKind) -> Self {
        match kind {
            FailureKind::Sandbox => RejectReason::Sandbox,
            FailureKind::Timeout => RejectReason::Timeout,
            FailureKind::Schema => RejectReason::Schema,
            _ => RejectReason::IbisError,
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reason: RejectReason,
    pub detail: String,
    /// The real exception of an Ibis failure.
    pub failure: Option<ProgramFailure>,
}

/// What was checked for a verified pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The SQL real Ibis compiled (duckdb dialect).
    pub compiled_sql: String,
    pub fixture_seeds: Vec<u64>,
    pub fixture_rows: Vec<u64>,
    pub ordered: bool,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Verified(Evidence),
    Rejected(Reject),
}

/// Where verification time went, summed over calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub fixtures: Duration,
    pub compile: Duration,
    pub execute: Duration,
    pub compare: Duration,
}

impl std::ops::AddAssign<&Timings> for Timings {
    fn add_assign(&mut self, other: &Timings) {
        self.fixtures += other.fixtures;
        self.compile += other.compile;
        self.execute += other.execute;
        self.compare += other.compare;
    }
}

/// Verifies pairs against one oracle pool. Holds its own DuckDB fixture databases, so use one
/// verifier per thread.
pub struct Verifier<'p> {
    pool: &'p WorkerPool,
    fixtures: Vec<FixtureConfig>,
    store: FixtureStore,
    duckdb_version: String,
    watchdog: Watchdog,
    /// Time limit of one DuckDB query.
    pub sql_timeout: Duration,
    pub timings: Timings,
}

/// Why a query gave no result.
enum QueryFailure {
    Error(String),
    TimedOut,
}

impl<'p> Verifier<'p> {
    pub fn new(pool: &'p WorkerPool, fixtures: &[FixtureConfig]) -> Self {
        Self::with_references(pool, fixtures, &[]).expect("an in-memory DuckDB database opens")
    }

    /// A verifier that runs pairs over the tables of a reference database on that database's
    /// data, and every other pair on generated fixtures.
    pub fn with_references(pool: &'p WorkerPool, fixtures: &[FixtureConfig], references: &[ReferenceDatabase]) -> Result<Self, crate::FixtureError> {
        Ok(Verifier {
            pool,
            fixtures: fixtures.to_vec(),
            store: FixtureStore::with_references(references)?,
            duckdb_version: duckdb_version(),
            watchdog: Watchdog::new(),
            sql_timeout: Duration::from_secs(10),
            timings: Timings::default(),
        })
    }

    /// The record of an accepted pair's verification.
    pub fn verification(&self, evidence: &Evidence) -> Verification {
        Verification {
            level: VerificationLevel::Executed,
            ibis_version: self.pool.hello().ibis.clone(),
            duckdb_version: self.duckdb_version.clone(),
            fixture_seeds: evidence.fixture_seeds.clone(),
            fixture_rows: evidence.fixture_rows.clone(),
            comparison: Some(if evidence.ordered { "ordered" } else { "multiset" }.to_string()),
            result_fingerprint: Some(evidence.fingerprint.clone()),
        }
    }

    /// Runs `sql` and the SQL real Ibis compiles from `ibis` on every fixture database.
    /// `Err` only when the oracle itself failed (not the program).
    pub fn verify(&mut self, sql: &str, ibis: &str, tables: &TableSchemas, expr_name: Option<&str>) -> Result<Verdict, OracleError> {
        let reject = |reason, detail: String| Ok(Verdict::Rejected(Reject { reason, detail, failure: None }));
        let sql_timeout = self.sql_timeout;
        let query_reject = |side: &str, failure: QueryFailure| match failure {
            QueryFailure::Error(message) => reject(RejectReason::SqlError, format!("{side}: {message}")),
            QueryFailure::TimedOut => reject(RejectReason::Timeout, format!("{side} ran longer than {:.1}s", sql_timeout.as_secs_f64())),
        };

        let started = Instant::now();
        let fixtures = match self.fixture_set(tables, sql) {
            Ok(set) => set,
            Err(error) => return reject(RejectReason::Schema, error.to_string()),
        };
        self.timings.fixtures += started.elapsed();

        let started = Instant::now();
        let mut expected = Vec::new();
        for database in &fixtures.databases {
            let label = database.label();
            let original = match self.run(&database.schema, sql) {
                Ok(result) => result,
                Err(failure) => return query_reject("SQL", failure),
            };
            let shuffled = match self.run(&database.twin_schema, sql) {
                Ok(result) => result,
                Err(failure) => return query_reject("SQL", failure),
            };
            if !same_multiset(&original, &shuffled) {
                return reject(
                    RejectReason::Nondeterministic,
                    format!("{label}: the SQL returns other rows when the same data is stored in another order (ties under ORDER BY ... LIMIT?)"),
                );
            }
            expected.push((original, shuffled));
        }
        self.timings.execute += started.elapsed();
        if expected.iter().all(|(result, _)| result.rows.iter().all(|row| row.iter().all(|v| *v == Value::Null))) {
            return reject(RejectReason::Vacuous, "the SQL returns no rows (or only NULLs) on every fixture database".into());
        }
        let ordered = orders_at_top_level(sql) && expected.iter().all(|(original, shuffled)| same_sequence(original, shuffled));

        let started = Instant::now();
        let request = CompileRequest { code: ibis.to_string(), tables: tables.clone(), dialect: "duckdb".into(), expr_name: expr_name.map(str::to_string) };
        let compiled = self.pool.compile(&request)?;
        self.timings.compile += started.elapsed();
        let compiled = match compiled {
            Ok(compiled) => compiled,
            Err(failure) => {
                let detail = format!("{}: {}", failure.error_type, failure.message);
                return Ok(Verdict::Rejected(Reject { reason: RejectReason::from_failure(failure.kind), detail, failure: Some(failure) }));
            }
        };

        let started = Instant::now();
        // Ibis runs on the twins too: an Ibis program that only happens to return rows in storage
        // order, or whose LIMIT picks rows by storage order, differs there.
        let mut actual = Vec::new();
        for database in &fixtures.databases {
            let mut pair = Vec::with_capacity(2);
            for schema in [&database.schema, &database.twin_schema] {
                match self.run(schema, &compiled.sql) {
                    Ok(result) => pair.push(result),
                    Err(failure) => return query_reject("SQL compiled by Ibis", failure),
                }
            }
            let twin = pair.pop().expect("two results");
            actual.push((pair.pop().expect("two results"), twin));
        }
        self.timings.execute += started.elapsed();

        let started = Instant::now();
        for ((database, (expected, expected_twin)), (actual, actual_twin)) in fixtures.databases.iter().zip(&expected).zip(&actual) {
            let label = database.label();
            if let Err(diff) = compare(expected, actual, ordered) {
                return reject(RejectReason::Mismatch, format!("{label}: {diff}"));
            }
            if let Err(diff) = compare(expected_twin, actual_twin, ordered) {
                return reject(RejectReason::Mismatch, format!("{label}, rows stored in another order: {diff}"));
            }
        }
        let fingerprint = fingerprint(expected.iter().map(|(result, _)| result), ordered);
        self.timings.compare += started.elapsed();

        Ok(Verdict::Verified(Evidence {
            compiled_sql: compiled.sql,
            fixture_seeds: fixtures.databases.iter().map(|d| d.config.seed).collect(),
            fixture_rows: expected.iter().map(|(result, _)| result.rows.len() as u64).collect(),
            ordered,
            fingerprint,
        }))
    }

    fn run(&self, schema: &str, sql: &str) -> Result<ResultSet, QueryFailure> {
        let connection = self.store.connection();
        let (result, timed_out) = self.watchdog.run(connection.interrupt_handle(), self.sql_timeout, || self.store.query(schema, sql));
        if timed_out {
            return Err(QueryFailure::TimedOut);
        }
        result.map_err(|error| QueryFailure::Error(first_line(&error.to_string())))
    }

    fn fixture_set(&mut self, tables: &TableSchemas, sql: &str) -> Result<Rc<FixtureSet>, crate::FixtureError> {
        self.store.get(tables, &Literals::harvest(sql), &self.fixtures)
    }
}

fn fingerprint<'a>(results: impl Iterator<Item = &'a ResultSet>, ordered: bool) -> String {
    let mut hasher = Sha256::new();
    for result in results {
        let rows = if ordered { result.rows.clone() } else { sorted_rows(result) };
        hasher.update(canonical_text(&rows).as_bytes());
        hasher.update(b"\x1e");
    }
    hasher.finalize().iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

fn first_line(text: &str) -> String {
    text.lines().find(|line| !line.trim().is_empty()).unwrap_or(text).trim().to_string()
}

/// The version of the bundled DuckDB, as `SELECT version()` reports it.
pub fn duckdb_version() -> String {
    duckdb::Connection::open_in_memory()
        .and_then(|connection| connection.query_row("SELECT version()", [], |row| row.get::<_, String>(0)))
        .unwrap_or_else(|_| "unknown".to_string())
}
