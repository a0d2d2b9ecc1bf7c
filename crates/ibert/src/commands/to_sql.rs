//! `ibert to-sql`: an Ibis program compiled to SQL by real Ibis, so the SQL is exact. A program
//! that does not compile is reported with the real error; then the local model repairs it (each
//! repair compiled by real Ibis, the error fed back), and the output says the SQL is the
//! repaired program's and the exit status is 4 (`exit::REPAIRED`). `--no-model` forbids that.

use std::process::ExitCode;

use anyhow::Context;
use ibert_oracle::protocol::{CompileRequest, TableSchemas};

use ibert_oracle::{FailureKind, WorkerPool};
use ibert_tasks::TaskInput;
use ibert_tasks::checked;
use ibert_verify::{Verdict, Verifier};

use super::verification_run::fixtures_for_seed;
use super::{schema_input, tasks};
use crate::cli::ToSqlArgs;
use crate::user_data::{self, UserData};
use crate::{exit, model_config};

pub fn run(args: &ToSqlArgs) -> anyhow::Result<ExitCode> {
    let code = schema_input::read_input(args.file.as_deref(), "Ibis program")?;
    let mut options = args.verify.clone();
    options.jobs = Some(options.jobs.unwrap_or(1));
    let (pool, user) = user_data::start_pool_with(&options, args.data.db.as_deref())?;
    let tables: TableSchemas = match schema_input::catalog(&args.schema)? {
        Some(catalog) => catalog.schemas(),
        None => user.as_ref().map(|user| user.schemas().clone()).unwrap_or_default(),
    };
    let request = CompileRequest { code, tables, dialect: args.dialect.to_ascii_lowercase(), expr_name: None };
    match pool.compile(&request).context("compiling with the Ibis oracle")? {
        Ok(compiled) => {
            println!("{}", compiled.sql.trim_end());
            eprintln!("compiled exactly by ibis-framework {} ({} dialect)", pool.hello().ibis, request.dialect);
            match &user {
                Some(user) => check_on_user_data(&pool, user, &request, &compiled.sql, options.seed),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Err(failure) => {
            let source = args.file.as_ref().map_or("standard input".to_string(), |p| p.display().to_string());
            let line = failure.line.map(|l| format!(":{l}")).unwrap_or_default();
            eprintln!("error: {source}{line}: the program does not compile with Ibis: {}: {}", failure.error_type, failure.message);
            // Programs the sandbox refuses are not repaired: the refusal is the answer.
            if args.no_model || failure.kind == FailureKind::Sandbox {
                return Ok(ExitCode::FAILURE);
            }
            repair_with_model(args, &pool, &request, &format!("{}: {}", failure.error_type, failure.message))
        }
    }
}

/// With --db: the SQL printed, run in DuckDB, must return what the expression returns when Ibis
/// executes it (`to_pyarrow`, which casts to the expression's schema), on the fixtures and on
/// the user's data.
fn check_on_user_data(pool: &WorkerPool, user: &UserData, request: &CompileRequest, sql: &str, seed: u64) -> anyhow::Result<ExitCode> {
    if request.dialect != "duckdb" {
        eprintln!("not checked on the data of --db: only DuckDB SQL runs here (--dialect duckdb)");
        return Ok(ExitCode::from(exit::UNVERIFIED));
    }
    let mut verifier = Verifier::with_references(pool, &fixtures_for_seed(seed), std::slice::from_ref(&user.reference))?;
    match verifier.verify(sql, &request.code, &request.tables, None).context("checking the SQL on the data of --db")? {
        Verdict::Verified(evidence) => {
            let rows = evidence.fixture_seeds.iter().zip(&evidence.fixture_rows).find(|(seed, _)| **seed == 0).map_or(0, |(_, rows)| *rows);
            eprintln!(
                "checked: on the data of --db ({rows} rows) and the fixtures, this SQL returns what Ibis returns when it executes the expression, types included"
            );
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Rejected(reject) => {
            eprintln!("NOT verified: {} ({}): {}", exit::reject_phrase(reject.reason), reject.reason, reject.detail);
            Ok(exit::for_reject(reject.reason))
        }
    }
}

fn repair_with_model(args: &ToSqlArgs, pool: &WorkerPool, request: &CompileRequest, error: &str) -> anyhow::Result<ExitCode> {
    eprintln!("asking the local model to repair it (--no-model forbids this)");
    let settings = model_config::settings(&args.model)?;
    let input = TaskInput::ErrorResolution { broken_code: &request.code, error, context: None };
    let mut engine = model_config::load_engine(&settings)?;
    let prompt = tasks::prompt(&args.model, &settings, engine.as_ref(), &input, &request.tables)?;
    let answered = tasks::run_checked(engine.as_mut(), &settings, args.attempts, false, |engine, options| {
        checked::repair_to_compile(engine, pool, prompt, &request.tables, &request.dialect, options)
    })?;
    if answered.verified {
        println!("{}", answered.answer.trim_end());
        eprintln!("{}:\n{}", answered.report, answered.program.as_deref().unwrap_or_default().trim_end());
        Ok(ExitCode::from(exit::REPAIRED))
    } else {
        eprintln!("{}", answered.report);
        Ok(ExitCode::FAILURE)
    }
}
