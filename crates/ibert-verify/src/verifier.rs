//! The verdict on one (SQL, Ibis) pair. See `docs/verification.md` for the rules.

use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ibert_oracle::protocol::ExecuteRequest;
use ibert_oracle::{CompileRequest, FailureKind, OracleError, ProgramFailure, WorkerPool};
use ibert_records::{Verification, VerificationLevel};
use sha2::{Digest, Sha256};

use crate::compare::{canonical_text, compare, same_multiset, same_sequence, sorted_rows};
use crate::constraints::QueryShape;
use crate::fixtures::{DataRequest, FixtureConfig, FixtureSet, FixtureStore, Profile, ReferenceDatabase, TableSchemas};
use crate::literals::Literals;
use crate::result_set::{ColumnKind, ResultSet, Value};
use crate::sql_text::orders_at_top_level;
use crate::watchdog::Watchdog;

/// Why a pair was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Real Ibis (or Python) raised an exception building or compiling the expression.
    IbisError,
    /// DuckDB rejected the reference SQL itself.
    SqlError,
    /// DuckDB rejected the SQL Ibis compiled from the program.
    CompiledSqlError,
    /// Both ran; results differ on at least one fixture.
    Mismatch,
    /// The expression compiled, but executing it as a user does (`to_pyarrow`) failed.
    IbisExecution,
    /// Executed as a user does, the expression returns a column of another type than the
    /// SQL (a decimal where the SQL gives a double, a string where it gives a date, ...).
    TypeMismatch,
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
            RejectReason::CompiledSqlError => "compiled_sql_error",
            RejectReason::Mismatch => "mismatch",
            RejectReason::IbisExecution => "ibis_execution",
            RejectReason::TypeMismatch => "type_mismatch",
            RejectReason::Timeout => "timeout",
            RejectReason::Vacuous => "vacuous",
            RejectReason::Nondeterministic => "nondeterministic",
            RejectReason::Sandbox => "sandbox",
            RejectReason::Schema => "schema",
        }
    }

    /// Whether the check could not decide (no data the SQL returns rows on, an SQL whose result
    /// depends on storage order, a time limit, a schema fixtures cannot be made for, an SQL that
    /// does not run), as opposed to the program failing it.
    pub fn is_inconclusive(self) -> bool {
        matches!(self, RejectReason::Vacuous | RejectReason::Nondeterministic | RejectReason::Timeout | RejectReason::Schema | RejectReason::SqlError)
    }

    fn from_failure(kind: FailureKind) -> Self {
        match kind {
            FailureKind::Sandbox => RejectReason::Sandbox,
            FailureKind::Timeout => RejectReason::Timeout,
            FailureKind::Schema => RejectReason::Schema,
            FailureKind::Execute => RejectReason::IbisExecution,
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
    /// Seeds of the fixtures on which the expression was executed through Ibis and matched.
    pub executed_with_ibis: Vec<u64>,
    /// How the fixture data was made (the default, or a profile aimed at the query).
    pub fixture_profile: Profile,
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
    /// Executing the expression through Ibis in the oracle (`to_pyarrow`).
    pub execute_ibis: Duration,
}

impl std::ops::AddAssign<&Timings> for Timings {
    fn add_assign(&mut self, other: &Timings) {
        self.fixtures += other.fixtures;
        self.compile += other.compile;
        self.execute += other.execute;
        self.compare += other.compare;
        self.execute_ibis += other.execute_ibis;
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
    /// Whether to try fixtures aimed at the query when the default ones do not serve it (on by
    /// default; off only to measure what they add).
    pub aimed_fixtures: bool,
    /// Default fixtures shared by many queries, set before each verification (see
    /// [`SharedFixtures`]); `None`: made for each query's own tables and literals.
    pub shared: Option<std::sync::Arc<SharedFixtures>>,
    pub timings: Timings,
}

/// Default fixture data made once for a family of queries over one schema (the synthesized
/// queries of a schema): all its tables, with the literals of every query of the family mixed
/// in, so that each query's predicates select rows and the data (in DuckDB and in the Ibis
/// workers) is built once for them all. Fixtures aimed at one query are still its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedFixtures {
    pub tables: TableSchemas,
    literals: Literals,
}

impl SharedFixtures {
    /// The fixtures for `tables` with the literals of every SQL text of `queries`.
    pub fn new<'q>(tables: TableSchemas, queries: impl IntoIterator<Item = &'q str>) -> SharedFixtures {
        // Each query on its own: one that does not tokenize loses only its own literals.
        let mut literals = Literals::default();
        for query in queries {
            literals.extend(Literals::harvest(query));
        }
        SharedFixtures { tables, literals }
    }
}

/// The reference SQL's results: on each fixture database, and on its twin.
#[derive(Debug, Clone)]
pub struct ReferenceRun {
    pub fixtures: Rc<FixtureSet>,
    pub results: Vec<(ResultSet, ResultSet)>,
}

/// Whether other fixture data might serve where this reject's did not: the query selected
/// nothing, ordered among ties, or failed on the values (an overflow, a failed cast).
fn may_depend_on_data(reject: &Reject) -> bool {
    match reject.reason {
        RejectReason::Vacuous | RejectReason::Nondeterministic => true,
        RejectReason::SqlError => {
            ["Out of Range Error", "Conversion Error", "Invalid Input Error", "Out of Memory Error"].iter().any(|class| reject.detail.contains(class))
        }
        _ => false,
    }
}

/// How messages name the SQL that Ibis compiled (the reference SQL is "SQL").
const COMPILED_SIDE: &str = "SQL compiled by Ibis";

/// A verdict, and what the check learned on the way that type alignment needs.
struct Checked {
    verdict: Verdict,
    /// The kind of each column of the SQL's result.
    sql_kinds: Vec<ColumnKind>,
    /// (name, Ibis type) of each output column of the expression.
    ibis_types: Vec<(String, String)>,
    is_table: bool,
}

/// The verdict on a machine translation, and the adjusted program when casts made it verify.
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned {
    pub verdict: Verdict,
    /// The program with its numeric result columns cast to the SQL's types; `None` when the
    /// program was verified (or rejected) as it was.
    pub program: Option<String>,
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

    /// A verifier on the default fixture databases (seed 0): the ones every checked answer of
    /// the task commands and the server is checked on.
    pub fn on_default_fixtures(pool: &'p WorkerPool) -> Self {
        Self::new(pool, &crate::fixtures_for_seed(0))
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
            aimed_fixtures: true,
            shared: None,
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
            executed_with_ibis: evidence.executed_with_ibis.clone(),
            fixture_profile: (evidence.fixture_profile != Profile::Default).then(|| evidence.fixture_profile.name().to_string()),
        }
    }

    /// Runs `sql` and the SQL real Ibis compiles from `ibis` on every fixture database, then
    /// executes the expression through Ibis as a user does. `Err` only when the oracle itself
    /// failed (not the program).
    pub fn verify(&mut self, sql: &str, ibis: &str, tables: &TableSchemas, expr_name: Option<&str>) -> Result<Verdict, OracleError> {
        Ok(self.check(sql, ibis, tables, expr_name)?.verdict)
    }

    /// [`Verifier::verify`] for a machine translation, which may be adjusted: where the only
    /// trouble is that Ibis's numeric result types differ from the SQL's (DuckDB averages a
    /// decimal to a double and gives decimal products its own precision and scale; Ibis keeps
    /// the operand's decimal type and then rounds, or fails to cast, the result), the program
    /// gets one more statement casting those columns to the SQL's types, and is verified again.
    pub fn verify_aligned(&mut self, sql: &str, ibis: &str, tables: &TableSchemas, expr_name: Option<&str>) -> Result<Aligned, OracleError> {
        let checked = self.check(sql, ibis, tables, expr_name)?;
        let fixable = matches!(&checked.verdict, Verdict::Rejected(reject) if matches!(reject.reason, RejectReason::TypeMismatch | RejectReason::IbisExecution | RejectReason::Mismatch));
        if !fixable {
            return Ok(Aligned { verdict: checked.verdict, program: None });
        }
        let Some(program) = with_casts(ibis, expr_name, &numeric_casts(&checked.sql_kinds, &checked.ibis_types), checked.is_table) else {
            return Ok(Aligned { verdict: checked.verdict, program: None });
        };
        let again = self.check(sql, &program, tables, expr_name)?;
        Ok(match again.verdict {
            Verdict::Verified(_) => Aligned { verdict: again.verdict, program: Some(program) },
            Verdict::Rejected(_) => Aligned { verdict: checked.verdict, program: None },
        })
    }

    fn check(&mut self, sql: &str, ibis: &str, tables: &TableSchemas, expr_name: Option<&str>) -> Result<Checked, OracleError> {
        let mut checked = Checked {
            verdict: Verdict::Rejected(Reject { reason: RejectReason::Vacuous, detail: String::new(), failure: None }),
            sql_kinds: Vec::new(),
            ibis_types: Vec::new(),
            is_table: false,
        };
        checked.verdict = self.check_into(sql, ibis, tables, expr_name, &mut checked)?;
        Ok(checked)
    }

    fn check_into(&mut self, sql: &str, ibis: &str, tables: &TableSchemas, expr_name: Option<&str>, checked: &mut Checked) -> Result<Verdict, OracleError> {
        let reject = |reason, detail: String| Ok(Verdict::Rejected(Reject { reason, detail, failure: None }));
        let sql_timeout = self.sql_timeout;
        let query_reject = |failure: QueryFailure| match failure {
            QueryFailure::Error(message) => reject(RejectReason::CompiledSqlError, format!("{COMPILED_SIDE}: {message}")),
            QueryFailure::TimedOut => reject(RejectReason::Timeout, format!("{COMPILED_SIDE} ran longer than {:.1}s", sql_timeout.as_secs_f64())),
        };

        let ReferenceRun { fixtures, results: expected } = match self.reference_run(sql, tables) {
            Ok(run) => run,
            Err(reject) => return Ok(Verdict::Rejected(reject)),
        };
        let ordered = orders_at_top_level(sql) && expected.iter().all(|(original, shuffled)| same_sequence(original, shuffled));
        checked.sql_kinds = expected.first().map(|(result, _)| result.kinds.clone()).unwrap_or_default();

        let started = Instant::now();
        let request = CompileRequest { code: ibis.to_string(), tables: tables.clone(), dialect: "duckdb".into(), expr_name: expr_name.map(str::to_string) };
        let compiled = self.pool.compile(&request)?;
        self.timings.compile += started.elapsed();
        let compiled = match compiled {
            Ok(compiled) => {
                checked.ibis_types = compiled.output_types.clone();
                checked.is_table = compiled.expr_type == "Table";
                compiled
            }
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
                    Err(failure) => return query_reject(failure),
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

        let started = Instant::now();
        let executed = self.execute_as_user(ibis, tables, expr_name, &fixtures, &expected, ordered)?;
        self.timings.execute_ibis += started.elapsed();
        let executed_with_ibis = match executed {
            Ok(seeds) => seeds,
            Err(reject) => return Ok(Verdict::Rejected(reject)),
        };

        Ok(Verdict::Verified(Evidence {
            compiled_sql: compiled.sql,
            fixture_seeds: fixtures.databases.iter().map(|d| d.config.seed).collect(),
            fixture_rows: expected.iter().map(|(result, _)| result.rows.len() as u64).collect(),
            ordered,
            fingerprint,
            executed_with_ibis,
            fixture_profile: fixtures.databases.first().map_or(Profile::Default, |database| database.profile),
        }))
    }

    /// Executes the expression as a user does (`to_pyarrow` through Ibis, in the oracle) on each
    /// fixture where the SQL returns rows, and checks values and column types against the SQL's
    /// result: Ibis casts what the database returns to the expression's schema, which can round
    /// decimals or fail, where the SQL Ibis compiled agreed inside DuckDB. The seeds it ran on.
    fn execute_as_user(
        &self,
        ibis: &str,
        tables: &TableSchemas,
        expr_name: Option<&str>,
        fixtures: &FixtureSet,
        expected: &[(ResultSet, ResultSet)],
        ordered: bool,
    ) -> Result<Result<Vec<u64>, Reject>, OracleError> {
        let reject = |reason, detail: String| Ok(Err(Reject { reason, detail, failure: None }));
        let chosen: Vec<usize> = (0..expected.len()).filter(|&index| !expected[index].0.rows.is_empty()).collect();
        let request = ExecuteRequest {
            code: ibis.to_string(),
            tables: tables.clone(),
            expr_name: expr_name.map(str::to_string),
            datasets: chosen.iter().map(|&index| fixtures.databases[index].dataset.clone()).collect(),
        };
        let executed = match self.pool.execute(&request)? {
            Ok(executed) => executed,
            Err(failure) => {
                let detail = format!("executing the expression with Ibis (`to_pyarrow`): {}: {}", failure.error_type, failure.message);
                return Ok(Err(Reject { reason: RejectReason::from_failure(failure.kind), detail, failure: Some(failure) }));
            }
        };
        if executed.results.len() != chosen.len() {
            return Err(OracleError::Protocol(format!("execute returned {} results for {} datasets", executed.results.len(), chosen.len())));
        }
        for (&index, encoded) in chosen.iter().zip(&executed.results) {
            let label = fixtures.databases[index].label();
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| OracleError::Protocol(format!("execute result: {e}")))?;
            let actual = ResultSet::from_ipc_stream(&bytes).map_err(OracleError::Protocol)?;
            let sql = &expected[index].0;
            let kinds = sql.kinds.iter().zip(&actual.kinds).enumerate();
            if let Some((position, (want, got))) = kinds.clone().find(|(_, (want, got))| !want.matches(got)) {
                let ibis_type = executed.columns.get(position).map_or(String::new(), |(_, ibis_type)| format!(" (Ibis type `{ibis_type}`)"));
                return reject(
                    RejectReason::TypeMismatch,
                    format!(
                        "column {} (`{}`): the SQL returns {want}, the expression executed with Ibis returns {got}{ibis_type}",
                        position + 1,
                        sql.columns[position]
                    ),
                );
            }
            if let Err(diff) = compare(sql, &actual, ordered) {
                return reject(RejectReason::Mismatch, format!("{label}, the expression executed with Ibis (`to_pyarrow`): {diff}"));
            }
        }
        Ok(Ok(chosen.iter().map(|&index| fixtures.databases[index].config.seed).collect()))
    }

    /// The SQL's own results on each fixture database and its twin, before any program is
    /// looked at; a reject when they cannot serve as a reference (the SQL fails, its result
    /// depends on storage order, or it returns nothing anywhere).
    ///
    /// The default fixtures come first. When the query selects nothing from them, or orders and
    /// limits among ties, or fails on their values (an overflow, a cast), fixtures aimed at the
    /// query ([`Profile`]) are tried in turn; the first that serves is used.
    pub fn reference_run(&mut self, sql: &str, tables: &TableSchemas) -> Result<ReferenceRun, Reject> {
        let first = self.reference_run_with(sql, tables, Profile::Default, &QueryShape::EMPTY);
        let Err(first_reject) = &first else { return first };
        if !self.aimed_fixtures || !may_depend_on_data(first_reject) || self.store.is_reference(tables) {
            return first;
        }
        let started = Instant::now();
        let connection = self.store.connection();
        let shape = QueryShape::analyze(sql, &mut |expr| {
            connection.query_row(&format!("SELECT typeof({expr})::VARCHAR, ({expr})::VARCHAR"), [], |row| Ok((row.get(0)?, row.get(1)?))).ok()
        });
        self.timings.fixtures += started.elapsed();
        for profile in Profile::fallbacks(first_reject.reason == RejectReason::Nondeterministic) {
            let run = self.reference_run_with(sql, tables, *profile, &shape);
            match &run {
                Err(reject) if may_depend_on_data(reject) => continue,
                _ => return run,
            }
        }
        first
    }

    fn reference_run_with(&mut self, sql: &str, tables: &TableSchemas, profile: Profile, shape: &QueryShape) -> Result<ReferenceRun, Reject> {
        let reject = |reason, detail: String| Err(Reject { reason, detail, failure: None });
        let started = Instant::now();
        let own_literals;
        let (data_tables, literals) = match (&self.shared, profile) {
            (Some(shared), Profile::Default) => (&shared.tables, &shared.literals),
            _ => {
                own_literals = Literals::harvest(sql);
                (tables, &own_literals)
            }
        };
        let request = DataRequest { literals, profile, shape };
        let fixtures = match self.store.get(data_tables, &request, &self.fixtures) {
            Ok(set) => set,
            Err(error) => return reject(RejectReason::Schema, error.to_string()),
        };
        self.timings.fixtures += started.elapsed();

        let started = Instant::now();
        let mut results = Vec::new();
        for database in &fixtures.databases {
            let label = database.label();
            let mut pair = Vec::with_capacity(2);
            for schema in [&database.schema, &database.twin_schema] {
                match self.run(schema, sql) {
                    Ok(result) => pair.push(result),
                    Err(QueryFailure::Error(message)) => return reject(RejectReason::SqlError, format!("SQL: {message}")),
                    Err(QueryFailure::TimedOut) => return reject(RejectReason::Timeout, format!("SQL ran longer than {:.1}s", self.sql_timeout.as_secs_f64())),
                }
            }
            let shuffled = pair.pop().expect("two results");
            let original = pair.pop().expect("two results");
            if !same_multiset(&original, &shuffled) {
                return reject(
                    RejectReason::Nondeterministic,
                    format!("{label}: the SQL returns other rows when the same data is stored in another order (ties under ORDER BY ... LIMIT?)"),
                );
            }
            results.push((original, shuffled));
        }
        self.timings.execute += started.elapsed();
        if results.iter().all(|(result, _)| result.rows.iter().all(|row| row.iter().all(|v| *v == Value::Null))) {
            return reject(RejectReason::Vacuous, "the SQL returns no rows (or only NULLs) on every fixture database".into());
        }
        Ok(ReferenceRun { fixtures, results })
    }

    fn run(&self, schema: &str, sql: &str) -> Result<ResultSet, QueryFailure> {
        let connection = self.store.connection();
        let (result, timed_out) = self.watchdog.run(connection.interrupt_handle(), self.sql_timeout, || self.store.query(schema, sql));
        if timed_out {
            return Err(QueryFailure::TimedOut);
        }
        result.map_err(|error| QueryFailure::Error(first_line(&error.to_string())))
    }
}

/// (column, Ibis type) casts that give the expression the SQL's numeric and temporal result
/// types, where Ibis's own type differs: a double for DuckDB's decimal averages, DuckDB's
/// precision and scale for decimal arithmetic and sums, a timestamp for `date_trunc` of a date.
fn numeric_casts(sql_kinds: &[ColumnKind], ibis_types: &[(String, String)]) -> Vec<(String, String)> {
    let mut casts = Vec::new();
    for (kind, (name, ibis_type)) in sql_kinds.iter().zip(ibis_types) {
        let Some(target) = kind.ibis_cast() else { continue };
        let current = ibis_type.trim_start_matches('!').replace(' ', "");
        let same = match kind {
            ColumnKind::Integer => current.starts_with("int") || current.starts_with("uint") || current.starts_with("decimal(") && current.ends_with(",0)"),
            ColumnKind::Float => current.starts_with("float"),
            ColumnKind::Decimal { precision, scale } => {
                // The same scale, and room for every digit the SQL's values can have.
                let parts: Option<(u8, u8)> = current
                    .strip_prefix("decimal(")
                    .and_then(|rest| rest.trim_end_matches(')').split_once(','))
                    .and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)));
                parts.is_some_and(|(p, s)| s == *scale && p >= *precision)
            }
            ColumnKind::Other("date") => current == "date",
            ColumnKind::Other("timestamp") => current.starts_with("timestamp"),
            _ => true,
        };
        if !same {
            casts.push((name.clone(), target));
        }
    }
    casts
}

/// The program with one more statement casting its result: `expr = expr.cast({...})` for a
/// table, `expr = expr.cast("...")` for a column or scalar. `None` when there is nothing to cast
/// or the program does not assign its result to a name (a bare last expression).
fn with_casts(program: &str, expr_name: Option<&str>, casts: &[(String, String)], is_table: bool) -> Option<String> {
    if casts.is_empty() {
        return None;
    }
    let name = expr_name.unwrap_or("expr");
    let assigns =
        program.lines().any(|line| line.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with('=') && !rest.trim_start().starts_with("==")));
    if !assigns {
        return None;
    }
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let cast = if is_table {
        let entries: Vec<String> = casts.iter().map(|(column, target)| format!("{}: {}", quote(column), quote(target))).collect();
        format!("{{{}}}", entries.join(", "))
    } else {
        quote(&casts[0].1)
    };
    Some(format!("{}\n{name} = {name}.cast({cast})\n", program.trim_end()))
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
