//! `ibert from-sql`: SQL in, Ibis out, by the deterministic transpiler, and the translation
//! verified by execution against the SQL on the fixture databases.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use ibert_oracle::WorkerPool;
use ibert_transpile::{Catalog, RESULT_NAME, TranspileError, transpile};
use ibert_verify::{FixtureConfig, Verdict, Verifier};

use ibert_tasks::check::Checker;
use ibert_tasks::checked;
use ibert_tasks::{TaskInput, answer};

use super::schema_input;
use super::tasks;
use super::verification_run::fixtures_for_seed;
use crate::cli::FromSqlArgs;
use crate::user_data::{self, UserData};
use crate::{exit, model_config};

pub fn run(args: &FromSqlArgs) -> anyhow::Result<ExitCode> {
    let sql = schema_input::read_input(args.file.as_deref(), "SQL query")?;
    // With --db and no schema, the data's own tables are the schema: the oracle reads them.
    let mut setup = None;
    let catalog = match schema_input::catalog(&args.schema)? {
        Some(catalog) => catalog,
        None if args.data.db.is_some() => {
            let ready = Setup::start(args)?;
            let schemas = ready.user.as_ref().map(|user| serde_json::to_value(user.schemas())).transpose()?.unwrap_or_default();
            setup = Some(ready);
            Catalog::from_json(&schemas).context("reading the tables of --db")?
        }
        None => return Err(anyhow!("from-sql resolves every name against the table schemas: pass --schema, --schema-file or --db")),
    };
    let source = args.file.as_ref().map_or("standard input".to_string(), |p| p.display().to_string());
    if args.model_only {
        eprintln!("--model-only: the local model translates (up to {} answers, each verified)", args.attempts);
        return model_fallback(args, &sql, &catalog, setup);
    }
    let translation = match transpile(&sql, &catalog, args.dialect) {
        Ok(translation) => translation,
        Err(error) if args.no_model => return Err(anyhow!("{source}: {error}\nnothing was translated (--no-model)")),
        // SQL that does not parse or names what the schema lacks is the input's fault: no
        // model could translate it faithfully.
        Err(error @ (TranspileError::Parse(_) | TranspileError::Resolve { .. })) => return Err(anyhow!("{source}: {error}")),
        Err(error) => {
            eprintln!("the transpiler refused: {source}: {error}\nasking the local model instead (up to {} answers, each verified)", args.attempts);
            return model_fallback(args, &sql, &catalog, setup);
        }
    };
    if args.no_verify {
        print!("{}", with_declarations(&translation.code, &translation.tables, &catalog, args.standalone));
        eprintln!("not verified (--no-verify)");
        return Ok(ExitCode::from(exit::UNVERIFIED));
    }
    let setup = match setup {
        Some(setup) => setup,
        None => Setup::start(args)?,
    };
    let mut verifier = setup.verifier()?;
    let tables = catalog.schemas_of(&translation.tables);
    let aligned = verifier.verify_aligned(&sql, &translation.code, &tables, Some(RESULT_NAME)).context("verifying the translation")?;
    let code = aligned.program.as_deref().unwrap_or(&translation.code);
    let program = with_declarations(code, &translation.tables, &catalog, args.standalone);
    Ok(report(&aligned.verdict, &program, args.strict, ""))
}

/// What verification runs on: the oracle (one worker unless --jobs says otherwise), the
/// fixtures, and the user's data with --db.
struct Setup {
    pool: WorkerPool,
    fixtures: Vec<FixtureConfig>,
    user: Option<UserData>,
}

impl Setup {
    fn start(args: &FromSqlArgs) -> anyhow::Result<Setup> {
        let mut options = args.verify.clone();
        options.jobs = Some(options.jobs.unwrap_or(1));
        let (pool, user) = user_data::start_pool_with(&options, args.data.db.as_deref())?;
        if let Some(user) = &user {
            eprintln!("verifying on the fixtures and on the data of --db: {}", user.summary);
        }
        Ok(Setup { pool, fixtures: fixtures_for_seed(options.seed), user })
    }

    fn verifier(&self) -> anyhow::Result<Verifier<'_>> {
        let references: Vec<_> = self.user.iter().map(|user| user.reference.clone()).collect();
        Ok(Verifier::with_references(&self.pool, &self.fixtures, &references)?)
    }
}

/// Prints the program unless `--strict` withholds an unverified one, says on standard error
/// what the check found, and returns the matching exit status.
fn report(verdict: &Verdict, program: &str, strict: bool, origin: &str) -> ExitCode {
    match verdict {
        Verdict::Verified(evidence) => {
            print!("{program}");
            let comparison = if evidence.ordered { "in order" } else { "as multisets" };
            // Seed 0 is the user's data (--db); the others are generated fixtures.
            let on_user_data: Vec<u64> =
                evidence.fixture_seeds.iter().zip(&evidence.fixture_rows).filter(|(seed, _)| **seed == 0).map(|(_, rows)| *rows).collect();
            let fixtures = evidence.fixture_seeds.len() - on_user_data.len();
            let user = on_user_data.first().map(|rows| format!(" and on the data of --db ({rows} rows)")).unwrap_or_default();
            eprintln!(
                "verified{origin}: the same results as the SQL on {fixtures} fixture databases{user} ({comparison}; rows {:?}), executed through Ibis (`to_pyarrow`) on {} of them, types included",
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
fn model_fallback(args: &FromSqlArgs, sql: &str, catalog: &Catalog, setup: Option<Setup>) -> anyhow::Result<ExitCode> {
    let tables = catalog.schemas();
    let settings = model_config::settings(&args.model)?;
    let input = TaskInput::SqlToIbis { sql };
    let mut engine = model_config::load_engine(&settings)?;
    let prompt = tasks::prompt(&args.model, &settings, engine.as_ref(), &input, &tables)?;
    if args.no_verify {
        let chat = engine.chat_prompt(&prompt.messages)?;
        let generation = engine.generate(&chat, &settings.generation, &mut |_| {})?;
        print!("{}", answer::code_block(&generation.text));
        eprintln!("translated by the model, not the transpiler; not verified (--no-verify)");
        return Ok(ExitCode::from(exit::UNVERIFIED));
    }
    let setup = match setup {
        Some(setup) => setup,
        None => Setup::start(args)?,
    };
    let mut checker = Checker::new(&setup.pool, setup.verifier()?);
    let answered = tasks::run_checked(engine.as_mut(), &settings, args.attempts, false, |engine, options| {
        checked::translate_sql(engine, &mut checker, prompt, sql, &tables, options)
    })?;
    let verdict = answered.verdict.as_ref().context("the model gave no answer")?;
    let origin = format!(" (translated by the model, not the transpiler; answer {} of at most {})", answered.attempts, args.attempts);
    Ok(report(verdict, &format!("{}\n", answered.answer.trim_end()), args.strict, &origin))
}
