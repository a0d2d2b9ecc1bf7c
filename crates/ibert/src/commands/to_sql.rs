//! `ibert to-sql`: an Ibis program compiled to SQL by real Ibis, so the SQL is exact. A program
//! that does not compile is reported with the real error; then the local model repairs it (each
//! repair compiled by real Ibis, the error fed back), and the output says the SQL is the
//! repaired program's and the exit status is 4 (`exit::REPAIRED`). `--no-model` forbids that.

use std::process::ExitCode;

use anyhow::Context;
use ibert_oracle::protocol::{CompileRequest, TableSchemas};

use ibert_model::ChatMessage;
use ibert_oracle::{FailureKind, WorkerPool};

use super::{schema_input, tasks};
use crate::cli::ToSqlArgs;
use crate::{exit, model_config, oracle_setup};

pub fn run(args: &ToSqlArgs) -> anyhow::Result<ExitCode> {
    let code = schema_input::read_input(args.file.as_deref(), "Ibis program")?;
    let tables: TableSchemas = match schema_input::catalog(&args.schema)? {
        Some(catalog) => {
            let names: Vec<String> = catalog.tables().iter().map(|t| t.name.clone()).collect();
            catalog.schemas_of(&names)
        }
        None => TableSchemas::new(),
    };
    let mut options = args.verify.clone();
    options.jobs = Some(options.jobs.unwrap_or(1));
    let pool = oracle_setup::start_pool(&options)?;
    let request = CompileRequest { code, tables, dialect: args.dialect.to_ascii_lowercase(), expr_name: None };
    match pool.compile(&request).context("compiling with the Ibis oracle")? {
        Ok(compiled) => {
            println!("{}", compiled.sql.trim_end());
            eprintln!("compiled exactly by ibis-framework {} ({} dialect)", pool.hello().ibis, request.dialect);
            Ok(ExitCode::SUCCESS)
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

fn repair_with_model(args: &ToSqlArgs, pool: &WorkerPool, request: &CompileRequest, error: &str) -> anyhow::Result<ExitCode> {
    eprintln!("asking the local model to repair it (--no-model forbids this)");
    let settings = model_config::settings(&args.model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let mut messages = tasks::system(&request.tables);
    messages.push(ChatMessage::new("user", &tasks::fix_request(&request.code, error, None)));
    let outcome = tasks::answer_until_accepted(&mut engine, &settings, messages, args.attempts, false, &tasks::code_block, &mut |program| {
        Ok(tasks::compile_for(pool, program, &request.tables, &request.dialect)?.map_err(|error| format!("does not compile: {error}")))
    })?;
    match outcome.accepted {
        Some(sql) => {
            println!("{}", sql.trim_end());
            eprintln!(
                "repaired by the model (answer {}); the SQL above is real Ibis's compilation of this repaired program, not of the input:\n{}",
                outcome.attempt,
                outcome.program.trim_end()
            );
            Ok(ExitCode::from(exit::REPAIRED))
        }
        None => {
            eprintln!("the model's {} repairs did not compile either (last: {})", args.attempts, outcome.last_error);
            Ok(ExitCode::FAILURE)
        }
    }
}
