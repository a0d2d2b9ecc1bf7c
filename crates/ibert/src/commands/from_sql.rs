//! `ibert from-sql`: SQL in, Ibis out, by the deterministic transpiler, and the translation
//! verified by execution against the SQL on the fixture databases.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use ibert_oracle::WorkerPool;
use ibert_transpile::{Catalog, RESULT_NAME, SqlDialect, TranspileError, transpile};
use ibert_verify::{FixtureConfig, Verdict, Verifier};

use ibert_model::ChatMessage;

use super::schema_input;
use super::tasks;
use super::verification_run::fixtures_for_seed;
use crate::cli::FromSqlArgs;
use crate::{exit, model_config, oracle_setup};

pub fn run(args: &FromSqlArgs) -> anyhow::Result<ExitCode> {
    let sql = schema_input::read_input(args.file.as_deref(), "SQL query")?;
    let catalog = schema_input::catalog(&args.schema)?
        .ok_or_else(|| anyhow!("from-sql resolves every name against the table schemas: pass --schema or --schema-file"))?;
    let dialect = SqlDialect::from_name(&args.dialect).context("unknown SQL dialect")?;
    let source = args.file.as_ref().map_or("standard input".to_string(), |p| p.display().to_string());
    let translation = match transpile(&sql, &catalog, dialect) {
        Ok(translation) => translation,
        Err(error) if args.no_model => return Err(anyhow!("{source}: {error}\nnothing was translated (--no-model)")),
        // SQL that does not parse or names what the schema lacks is the input's fault: no
        // model could translate it faithfully.
        Err(error @ (TranspileError::Parse(_) | TranspileError::Resolve { .. })) => return Err(anyhow!("{source}: {error}")),
        Err(error) => {
            eprintln!("the transpiler refused: {source}: {error}\nasking the local model instead (up to {} answers, each verified)", args.attempts);
            return model_fallback(args, &sql, &catalog);
        }
    };
    if args.no_verify {
        print!("{}", with_declarations(&translation.code, &translation.tables, &catalog, args.standalone));
        eprintln!("not verified (--no-verify)");
        return Ok(ExitCode::from(exit::UNVERIFIED));
    }
    let (pool, fixtures) = verification_setup(args)?;
    let mut verifier = Verifier::new(&pool, &fixtures);
    let tables = catalog.schemas_of(&translation.tables);
    let aligned = verifier.verify_aligned(&sql, &translation.code, &tables, Some(RESULT_NAME)).context("verifying the translation")?;
    let code = aligned.program.as_deref().unwrap_or(&translation.code);
    let program = with_declarations(code, &translation.tables, &catalog, args.standalone);
    Ok(report(&aligned.verdict, &program, args.strict, ""))
}

/// Prints the program unless `--strict` withholds an unverified one, says on standard error
/// what the check found, and returns the matching exit status.
fn report(verdict: &Verdict, program: &str, strict: bool, origin: &str) -> ExitCode {
    match verdict {
        Verdict::Verified(evidence) => {
            print!("{program}");
            let comparison = if evidence.ordered { "in order" } else { "as multisets" };
            eprintln!(
                "verified{origin}: the same results as the SQL on {} fixture databases ({comparison}; rows {:?}), executed through Ibis (`to_pyarrow`) on {} of them, types included",
                evidence.fixture_seeds.len(),
                evidence.fixture_rows,
                evidence.executed_with_ibis.len()
            );
            ExitCode::SUCCESS
        }
        Verdict::Rejected(reject) => {
            if !strict {
                print!("{program}");
            }
            let withheld = if strict { "; nothing printed (--strict)" } else { "" };
            eprintln!("NOT verified{origin}: {} ({}): {}{withheld}", exit::reject_phrase(reject.reason), reject.reason, reject.detail);
            exit::for_reject(reject.reason)
        }
    }
}

/// `code` as printed: with `--standalone`, preceded by its imports and table declarations.
fn with_declarations(code: &str, table_names: &[String], catalog: &Catalog, standalone: bool) -> String {
    if !standalone {
        return code.to_string();
    }
    let mut out = String::from("import ibis\nfrom ibis import _\n\n");
    for name in table_names {
        let Some(table) = catalog.table(name) else { continue };
        let columns: Vec<String> = table.columns.iter().map(|(c, t)| format!("{}: {}", json_string(c), json_string(t))).collect();
        out.push_str(&format!("{} = ibis.table({{{}}}, name={})\n", table.name, columns.join(", "), json_string(&table.name)));
    }
    out.push('\n');
    out.push_str(code);
    out
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// What the transpiler refuses, translated by the local model: each answer is verified like a
/// transpiled one, and a failed verification is fed back for the next answer.
fn model_fallback(args: &FromSqlArgs, sql: &str, catalog: &Catalog) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = catalog.tables().iter().map(|t| t.name.clone()).collect();
    let tables = catalog.schemas_of(&names);
    let settings = model_config::settings(&args.model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let mut messages = tasks::system(&tables);
    messages.push(ChatMessage::new(
        "user",
        &format!(
            "Translate this SQL query into an Ibis program whose result is `expr`.\n```sql\n{}\n```\nReply with the program in one ```python block.",
            sql.trim()
        ),
    ));
    if args.no_verify {
        let generation = tasks::generate(&mut engine, &settings, &messages, &mut |_| {})?;
        print!("{}", tasks::code_block(&generation.text));
        eprintln!("translated by the model, not the transpiler; not verified (--no-verify)");
        return Ok(ExitCode::from(exit::UNVERIFIED));
    }
    let (pool, fixtures) = verification_setup(args)?;
    let mut verifier = Verifier::new(&pool, &fixtures);
    let mut last = None;
    let outcome = tasks::answer_until_accepted(&mut engine, &settings, messages, args.attempts, false, &tasks::code_block, &mut |program| {
        let aligned = verifier.verify_aligned(sql, program, &tables, Some(RESULT_NAME)).context("verifying the model's translation")?;
        let answer = match &aligned.verdict {
            Verdict::Verified(_) => Ok(String::new()),
            Verdict::Rejected(reject) => Err(format!("is not verified ({}): {}", reject.reason, reject.detail)),
        };
        last = Some((aligned.program.unwrap_or_else(|| program.to_string()), aligned.verdict));
        Ok(answer)
    })?;
    let (program, verdict) = last.expect("at least one answer");
    let origin = format!(" (translated by the model, not the transpiler; answer {} of at most {})", outcome.attempt, args.attempts);
    Ok(report(&verdict, &format!("{}\n", program.trim_end()), args.strict, &origin))
}

/// The oracle (one worker unless --jobs says otherwise) and the fixtures a translation is
/// verified on.
fn verification_setup(args: &FromSqlArgs) -> anyhow::Result<(WorkerPool, Vec<FixtureConfig>)> {
    let mut options = args.verify.clone();
    options.jobs = Some(options.jobs.unwrap_or(1));
    let pool = oracle_setup::start_pool(&options)?;
    Ok((pool, fixtures_for_seed(options.seed)))
}
