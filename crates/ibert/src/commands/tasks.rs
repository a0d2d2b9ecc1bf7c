//! The model-backed task commands: `complete` and `fix` (answers checked by execution: they must
//! compile and run through Ibis on the fixtures; retried with the real error fed back), `qa` and
//! `doc` (the code of their answers, and a docstring's examples, compiled with real Ibis against
//! tables inferred from it; retried the same way). Prompts, answer reading and checks come
//! from the task library (`ibert-tasks`), as for `ibert eval` and the dataset's records.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use ibert_model::{Engine, Generation};
use ibert_oracle::WorkerPool;
use ibert_oracle::protocol::TableSchemas;
use ibert_records::{DocStyle, Example, read_jsonl};
use ibert_tasks::checked::{self, CheckedAnswer, Diagnosis, TaskRequest};
use ibert_tasks::goal::goal_sql;
use ibert_tasks::prompt::Shot;
use ibert_tasks::retry::{RetryError, RetryOptions};
use ibert_tasks::shots::ShotIndex;
use ibert_tasks::{Prompt, TaskInput};

use super::schema_input;
use crate::cli::{CompleteArgs, DocArgs, DocStyle as CliDocStyle, FixArgs, ModelOptions, QaArgs, SchemaOptions, VerifyOptions};
use crate::model_config::{self, ModelSettings};
use crate::{exit, oracle_setup};

/// Worked examples per prompt, retrieved from the train split when there is one.
const SHOTS: usize = 2;

pub fn complete(args: &CompleteArgs) -> anyhow::Result<ExitCode> {
    let prefix = schema_input::read_input(args.file.as_deref(), "partial Ibis program")?;
    let tables = tables(&args.check.schema)?;
    let goal = args.goal_sql.clone().or_else(|| goal_sql(&prefix));
    checked_answer(&args.model, &TaskRequest::Complete { prefix: &prefix, goal: goal.as_deref() }, &tables, args.check.attempts)
}

pub fn fix(args: &FixArgs) -> anyhow::Result<ExitCode> {
    let broken = schema_input::read_input(args.file.as_deref(), "broken Ibis program")?;
    let tables = tables(&args.check.schema)?;
    let goal = args.goal_sql.clone().or_else(|| goal_sql(&broken));
    let pool = start_oracle()?;
    let error = match &args.error {
        Some(error) => error.clone(),
        None => match checked::diagnose(&pool, &broken, &tables, goal.as_deref())? {
            Diagnosis::Broken(error) => error,
            Diagnosis::AlreadyRight(why) => {
                println!("{}", broken.trim_end());
                eprintln!("{why}");
                return Ok(ExitCode::SUCCESS);
            }
        },
    };
    if let Some(repaired) = checked::repair_from_error(&pool, &broken, &error, &tables, goal.as_deref())? {
        println!("{}", repaired.answer.trim_end());
        eprintln!("{}", repaired.report);
        return Ok(ExitCode::SUCCESS);
    }
    drop(pool);
    let request = TaskRequest::Fix { broken: &broken, error: &error, context: args.context.as_deref(), goal: goal.as_deref() };
    checked_answer(&args.model, &request, &tables, args.check.attempts)
}

pub fn qa(args: &QaArgs) -> anyhow::Result<ExitCode> {
    let question = schema_input::read_input(args.file.as_deref(), "question")?;
    let question = match &args.context {
        Some(context) => format!("{context}\n\n{}", question.trim()),
        None => question.trim().to_string(),
    };
    let tables = tables(&args.check.schema)?;
    checked_answer(&args.model, &TaskRequest::Qa { question: &question }, &tables, args.check.attempts)
}

pub fn doc(args: &DocArgs) -> anyhow::Result<ExitCode> {
    let code = schema_input::read_input(args.file.as_deref(), "code to document")?;
    let style = match args.style {
        CliDocStyle::Google => DocStyle::Google,
        CliDocStyle::Numpy => DocStyle::Numpy,
    };
    let tables = tables(&args.check.schema)?;
    checked_answer(&args.model, &TaskRequest::Doc { code: &code, style }, &tables, args.check.attempts)
}

fn tables(schema: &SchemaOptions) -> anyhow::Result<TableSchemas> {
    Ok(match schema_input::catalog(schema)? {
        Some(catalog) => catalog.schemas(),
        None => TableSchemas::new(),
    })
}

/// The prompt of `input`, with worked examples from the train split unless `--no-examples` or
/// an adapter runs: the adapters were trained on prompts without examples, and measured with
/// them they answer worse (sql_to_ibis 11 against 14, code_completion 1 against 4 of 40 records
/// for the 0.5B model's, docs/training.md).
pub(super) fn prompt(model: &ModelOptions, settings: &ModelSettings, engine: &dyn Engine, input: &TaskInput, tables: &TableSchemas) -> anyhow::Result<Prompt> {
    let shots = if model.no_examples || engine.adapter().is_some() { Vec::new() } else { worked_examples(&settings.data_dir, input, tables)? };
    Ok(Prompt::render(input, tables, &shots))
}

/// Up to [`SHOTS`] records of the train split (`<data_dir>/splits/train.jsonl`, written by `ibert
/// data all`) most like `input`; none when there is no such file.
fn worked_examples(data_dir: &Path, input: &TaskInput, tables: &TableSchemas) -> anyhow::Result<Vec<Shot>> {
    let path = data_dir.join("splits/train.jsonl");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let train: Vec<Example> = read_jsonl(&path)?;
    let shots = ShotIndex::new(input.task(), &train).nearest(input, tables, SHOTS, None);
    eprintln!("worked examples: {} from {} (--no-examples for none)", shots.len(), path.display());
    Ok(shots)
}

/// Answers `request` with the local model, each answer checked by execution and retried with
/// the real error (`ibert_tasks::checked`); prints the last answer and what the check found.
/// Prose answers (`qa`, `doc`) are printed and exit 0 either way, since prose helps even where
/// its code does not run; a program that failed its check exits with the reason's status.
fn checked_answer(model: &ModelOptions, request: &TaskRequest, tables: &TableSchemas, attempts: u32) -> anyhow::Result<ExitCode> {
    if let Some(goal) = request.goal() {
        eprintln!("goal: the answer must return the result of {}", goal.lines().next().unwrap_or(goal));
    }
    let settings = model_config::settings(model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let prompt = prompt(model, &settings, engine.as_ref(), &request.input(), tables)?;
    let pool = start_oracle()?;
    let answered =
        run_checked(engine.as_mut(), &settings, attempts, true, |engine, options| checked::answer_checked(engine, &pool, prompt, request, tables, options))?;
    println!("{}", answered.answer.trim_end());
    let program = matches!(request, TaskRequest::Complete { .. } | TaskRequest::Fix { .. });
    match answered.reject_reason() {
        Some(reason) => {
            eprintln!("{} ({}: {reason})", answered.report, exit::reject_phrase(reason));
            Ok(exit::for_reject(reason))
        }
        _ => {
            eprintln!("{}", answered.report);
            Ok(if answered.verified || !program { ExitCode::SUCCESS } else { ExitCode::from(exit::REJECTED) })
        }
    }
}

/// Runs a checked task of the task library with the model's answers streamed to standard error
/// (when `stream`) and each answer's speed reported.
pub(super) fn run_checked(
    engine: &mut dyn Engine,
    settings: &ModelSettings,
    attempts: u32,
    stream: bool,
    task: impl FnOnce(&mut dyn Engine, RetryOptions) -> Result<CheckedAnswer, RetryError>,
) -> anyhow::Result<CheckedAnswer> {
    let mut on_text = |text: &str| {
        eprint!("{text}");
        let _ = std::io::stderr().flush();
    };
    if stream {
        eprintln!("-- answers of {} (at most {attempts}):", engine.describe());
    }
    let options = RetryOptions { attempts, generation: &settings.generation, on_text: if stream { Some(&mut on_text) } else { None } };
    let answered = task(engine, options)?;
    if stream {
        eprintln!();
    }
    for generation in &answered.generations {
        report_speed(generation);
    }
    Ok(answered)
}

pub(super) fn report_speed(generation: &Generation) {
    let rate = |tokens: usize, seconds: f64| if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 };
    let (prompt, generated) = (generation.prompt_time.as_secs_f64(), generation.generation_time.as_secs_f64());
    eprintln!(
        "({} prompt tokens in {prompt:.2} s = {:.0} tok/s; {} generated in {generated:.2} s = {:.0} tok/s)",
        generation.prompt_tokens,
        rate(generation.prompt_tokens, prompt),
        generation.generated_tokens,
        rate(generation.generated_tokens, generated)
    );
}

pub(super) fn start_oracle() -> anyhow::Result<WorkerPool> {
    oracle_setup::start_pool(&VerifyOptions { jobs: Some(1), seed: 0, timeout: 10 }, &[])
}
