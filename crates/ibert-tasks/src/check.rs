//! Checks by execution, the same for the task commands and `ibert eval`: an answer counts when
//! its result, executed as a user executes it, equals the reference result on the fixture
//! databases; compiling is not enough.

use ibert_oracle::protocol::CompileRequest;
use ibert_oracle::{OracleError, WorkerPool};
use ibert_verify::{Reject, RejectReason, Verdict, Verifier};

use crate::prompt::Tables;

/// What a check found, and the program it judged (with the casts alignment added, if any).
#[derive(Debug, Clone)]
pub struct Checked {
    pub verdict: Verdict,
    pub program: String,
}

impl Checked {
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Verified(_))
    }

    /// `Ok(report)` or `Err(why)`, as the retry loop feeds it back ("That program ...").
    pub fn as_feedback(&self) -> Result<String, String> {
        match &self.verdict {
            Verdict::Verified(evidence) => Ok(format!(
                "returns the reference result on {} fixture databases, executed through Ibis on {}",
                evidence.fixture_seeds.len(),
                evidence.executed_with_ibis.len()
            )),
            Verdict::Rejected(reject) => Err(format!("is not right ({}): {}", reject.reason, reject.detail)),
        }
    }
}

/// The checks, over one oracle pool and one verifier.
pub struct Checker<'p> {
    pool: &'p WorkerPool,
    pub verifier: Verifier<'p>,
}

impl<'p> Checker<'p> {
    pub fn new(pool: &'p WorkerPool, verifier: Verifier<'p>) -> Self {
        Checker { pool, verifier }
    }

    /// The checks of a task command's answers: on the default fixture databases.
    pub fn on_default_fixtures(pool: &'p WorkerPool) -> Self {
        Checker::new(pool, Verifier::on_default_fixtures(pool))
    }

    /// `program` returns what `sql` returns (a translation; numeric and temporal result types
    /// aligned to the SQL's, see `Verifier::verify_aligned`).
    pub fn program_matches_sql(&mut self, sql: &str, program: &str, tables: &Tables) -> Result<Checked, OracleError> {
        let aligned = self.verifier.verify_aligned(sql, program, tables, None)?;
        Ok(Checked { program: aligned.program.unwrap_or_else(|| program.to_string()), verdict: aligned.verdict })
    }

    /// `program` returns what the `reference` program returns (completion, error resolution).
    pub fn program_matches_program(&mut self, reference: &str, program: &str, tables: &Tables) -> Result<Checked, OracleError> {
        match self.compile(reference, tables)? {
            Ok(sql) => Ok(Checked { verdict: self.verifier.verify(&sql, program, tables, None)?, program: program.to_string() }),
            Err(why) => Ok(rejected(program, RejectReason::IbisError, format!("the reference program does not compile: {why}"))),
        }
    }

    /// `sql` (an answer to Ibis -> SQL) returns what the `reference` program returns.
    pub fn sql_matches_program(&mut self, sql: &str, reference: &str, tables: &Tables) -> Result<Checked, OracleError> {
        Ok(Checked { verdict: self.verifier.verify(sql, reference, tables, None)?, program: sql.to_string() })
    }

    /// `program` alone, with no reference: it compiles, and executed through Ibis on the
    /// fixtures it returns what its own compiled SQL returns; an empty result everywhere is
    /// inconclusive (`vacuous`). Where only the types differ because Ibis casts what DuckDB
    /// returns to the expression's own schema (the mean of a decimal column is a decimal in
    /// Ibis, a double in DuckDB's SQL), the program still runs and passes when its values agree
    /// once the types are aligned: there is no other query whose types it must have.
    pub fn program_runs(&mut self, program: &str, tables: &Tables) -> Result<Checked, OracleError> {
        let sql = match self.compile(program, tables)? {
            Ok(sql) => sql,
            Err(why) => return Ok(rejected(program, RejectReason::IbisError, format!("does not compile: {why}"))),
        };
        let verdict = self.verifier.verify(&sql, program, tables, None)?;
        if let Verdict::Rejected(reject) = &verdict
            && reject.reason == RejectReason::TypeMismatch
            && let aligned @ Verdict::Verified(_) = self.verifier.verify_aligned(&sql, program, tables, None)?.verdict
        {
            return Ok(Checked { verdict: aligned, program: program.to_string() });
        }
        Ok(Checked { verdict, program: program.to_string() })
    }

    /// The DuckDB SQL real Ibis compiles `program` to, or its error as `Type: message`.
    pub fn compile(&self, program: &str, tables: &Tables) -> Result<Result<String, String>, OracleError> {
        compile_to(self.pool, program, tables, "duckdb")
    }
}

/// The SQL real Ibis compiles `program` to in `dialect`, or its error as `Type: message`.
pub fn compile_to(pool: &WorkerPool, program: &str, tables: &Tables, dialect: &str) -> Result<Result<String, String>, OracleError> {
    let request = CompileRequest { code: program.to_string(), tables: tables.clone(), dialect: dialect.into(), expr_name: None };
    Ok(match pool.compile(&request)? {
        Ok(compiled) => Ok(compiled.sql),
        Err(failure) => Err(format!("{}: {}", failure.error_type, failure.message)),
    })
}

fn rejected(program: &str, reason: RejectReason, detail: String) -> Checked {
    Checked { verdict: Verdict::Rejected(Reject { reason, detail, failure: None }), program: program.to_string() }
}
