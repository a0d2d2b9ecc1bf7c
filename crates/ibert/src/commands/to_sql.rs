//! `ibert to-sql`: an Ibis program compiled to SQL by real Ibis, so the SQL is exact.

use std::process::ExitCode;

use anyhow::Context;
use ibert_oracle::protocol::{CompileRequest, TableSchemas};

use super::schema_input;
use crate::cli::ToSqlArgs;
use crate::oracle_setup;

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
            Ok(ExitCode::FAILURE)
        }
    }
}
