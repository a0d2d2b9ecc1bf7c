//! The model-backed task commands: `complete` and `fix` (answers checked by execution: they must
//! compile and run through Ibis on the fixtures; retried with the real error fed back), `qa` and
//! `doc` (the code of their answers, and a docstring's examples, compiled with real Ibis against
//! tables inferred from it; retried the same way). Prompts, answer reading and checks come
//! from the task library (`ibert-tasks`), as for `ibert eval` and the dataset's records.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use ibert_model::{Engine, Generation, LocalModel};
use ibert_oracle::WorkerPool;
use ibert_oracle::protocol::TableSchemas;
use ibert_records::{DocStyle, Example, read_jsonl};
use ibert_tasks::check::{Checker, compile_to};
use ibert_tasks::goal::goal_sql;
use ibert_tasks::prompt::Shot;
use ibert_tasks::retry::{Outcome, RetryOptions, answer_until_accepted};
use ibert_tasks::shots::ShotIndex;
use ibert_tasks::snippet;
use ibert_tasks::{Prompt, TaskInput, answer};
use ibert_verify::{Verdict, Verifier};

use super::schema_input;
use super::verification_run::fixtures_for_seed;
use crate::cli::{CompleteArgs, DocArgs, DocStyle as CliDocStyle, FixArgs, ModelOptions, QaArgs, SchemaOptions, VerifyOptions};
use crate::model_config::{self, ModelSettings};
use crate::{exit, oracle_setup};

/// Worked examples per prompt, retrieved from the train split when there is one.
const SHOTS: usize = 2;

pub fn complete(args: &CompleteArgs) -> anyhow::Result<ExitCode> {
    let prefix = schema_input::read_input(args.file.as_deref(), "partial Ibis program")?;
    let tables = tables(&args.check.schema)?;
    let input = TaskInput::CodeCompletion { partial_code: &prefix };
    let read = |text: &str| answer::completions(&prefix, text);
    let goal = args.goal_sql.clone().or_else(|| goal_sql(&prefix));
    checked_answer(&args.model, &input, &tables, args.check.attempts, goal.as_deref(), &read)
}

pub fn fix(args: &FixArgs) -> anyhow::Result<ExitCode> {
    let broken = schema_input::read_input(args.file.as_deref(), "broken Ibis program")?;
    let tables = tables(&args.check.schema)?;
    let goal = args.goal_sql.clone().or_else(|| goal_sql(&broken));
    let error = match &args.error {
        Some(error) => error.clone(),
        None => {
            let pool = start_oracle()?;
            match (compile_to(&pool, &broken, &tables, "duckdb")?, &goal) {
                (Err(error), _) => error,
                // It compiles: with a goal, it is broken when it does not return the goal's result.
                (Ok(_), Some(goal)) => {
                    let fixtures = fixtures_for_seed(0);
                    let mut checker = Checker::new(&pool, Verifier::new(&pool, &fixtures));
                    match checker.program_matches_sql(goal, &broken, &tables)?.as_feedback() {
                        Ok(_) => {
                            println!("{}", broken.trim_end());
                            eprintln!("the program already returns the goal SQL's result; nothing to fix");
                            return Ok(ExitCode::SUCCESS);
                        }
                        Err(why) => format!("It runs but {why}"),
                    }
                }
                (Ok(_), None) => {
                    println!("{}", broken.trim_end());
                    eprintln!("the program already compiles with real Ibis; nothing to fix (--goal-sql checks it against a query)");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    {
        let pool = start_oracle()?;
        if let Some((program, repairs)) = repair_from_errors(&pool, &broken, &error, &tables, goal.as_deref())? {
            println!("{}", program.trim_end());
            let check = if goal.is_some() { "returns the goal SQL's result" } else { "runs through Ibis on the fixture databases" };
            eprintln!(
                "verified: compiles with real Ibis {} and {check} (repaired from the error: {}; no model answer needed)",
                pool.hello().ibis,
                repairs.join(", ")
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let input = TaskInput::ErrorResolution { broken_code: &broken, error: &error, context: args.context.as_deref() };
    checked_answer(&args.model, &input, &tables, args.check.attempts, goal.as_deref(), &|text: &str| vec![answer::code_block(text)])
}

/// The repairs the errors themselves propose, each run through the checks.
fn repair_from_errors(
    pool: &WorkerPool,
    broken: &str,
    error: &str,
    tables: &TableSchemas,
    goal: Option<&str>,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let fixtures = fixtures_for_seed(0);
    let mut checker = Checker::new(pool, Verifier::new(pool, &fixtures));
    Ok(ibert_tasks::repair::repair_and_check(&mut checker, broken, error, tables, goal)?)
}

pub fn qa(args: &QaArgs) -> anyhow::Result<ExitCode> {
    let question = schema_input::read_input(args.file.as_deref(), "question")?;
    let question = match &args.context {
        Some(context) => format!("{context}\n\n{}", question.trim()),
        None => question.trim().to_string(),
    };
    let tables = tables(&args.check.schema)?;
    code_checked_answer(&args.model, &TaskInput::Qa { question: &question }, &tables, args.check.attempts, &snippet::python_blocks)
}

pub fn doc(args: &DocArgs) -> anyhow::Result<ExitCode> {
    let code = schema_input::read_input(args.file.as_deref(), "code to document")?;
    let style = match args.style {
        CliDocStyle::Google => DocStyle::Google,
        CliDocStyle::Numpy => DocStyle::Numpy,
    };
    let tables = tables(&args.check.schema)?;
    // The docstring's examples run after the documented code, which defines what they call.
    let examples = |answer: &str| -> Vec<String> {
        snippet::doctest_code(&answer::docstring(answer)).map(|examples| format!("{}\n{examples}", code.trim_end())).into_iter().collect()
    };
    code_checked_answer(&args.model, &TaskInput::Documentation { code: &code, style }, &tables, args.check.attempts, &examples)
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
pub(super) fn prompt(model: &ModelOptions, settings: &ModelSettings, engine: &LocalModel, input: &TaskInput, tables: &TableSchemas) -> anyhow::Result<Prompt> {
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

/// Generates, checks each answer by execution (it compiles, and Ibis runs it on the fixtures;
/// with a `goal` SQL, it returns that query's result there), and on failure asks again with the
/// real error, up to `attempts` answers. Prints the last program and what the check found.
fn checked_answer(
    model: &ModelOptions,
    input: &TaskInput,
    tables: &TableSchemas,
    attempts: u32,
    goal: Option<&str>,
    read: &dyn Fn(&str) -> Vec<String>,
) -> anyhow::Result<ExitCode> {
    if let Some(goal) = goal {
        eprintln!("goal: the answer must return the result of {}", goal.lines().next().unwrap_or(goal));
    }
    let settings = model_config::settings(model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let prompt = prompt(model, &settings, &engine, input, tables)?;
    let pool = start_oracle()?;
    let fixtures = fixtures_for_seed(0);
    let mut checker = Checker::new(&pool, Verifier::new(&pool, &fixtures));
    let mut last = None;
    // A candidate that fails may be one repair of its own error away (as `fix` tries first).
    let mut repaired = None;
    let outcome = run_with_feedback(&mut engine, &settings, prompt, attempts, true, read, &mut |program| {
        let checked = match goal {
            Some(goal) => checker.program_matches_sql(goal, program, tables)?,
            None => checker.program_runs(program, tables)?,
        };
        let feedback = checked.as_feedback();
        if let (Err(_), Verdict::Rejected(reject)) = (&feedback, &checked.verdict)
            && let Some(repair) = ibert_tasks::repair::repair_and_check(&mut checker, program, &reject.detail, tables, goal)?
        {
            repaired = Some(repair);
            return Ok(Ok(String::new()));
        }
        last = Some(checked.verdict);
        Ok(feedback)
    })?;
    println!("{}", repaired.as_ref().map_or(&outcome.program, |(program, _)| program).trim_end());
    match (outcome.accepted, last) {
        (Some(_), _) => {
            let check = if goal.is_some() {
                "returns the goal SQL's result, executed through Ibis on the fixture databases"
            } else {
                "runs through Ibis on the fixture databases"
            };
            let repairs = repaired.map(|(_, repairs)| format!(", repaired from its error: {}", repairs.join(", "))).unwrap_or_default();
            eprintln!("verified: compiles with real Ibis {} and {check} (answer {}{repairs})", pool.hello().ibis, outcome.attempt);
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(Verdict::Rejected(reject))) => {
            eprintln!(
                "NOT verified: {} ({}): no answer of {attempts} passed (last: {})",
                exit::reject_phrase(reject.reason),
                reject.reason,
                outcome.last_error
            );
            Ok(exit::for_reject(reject.reason))
        }
        (None, _) => {
            eprintln!("NOT verified: no answer of {attempts} passed (last: {})", outcome.last_error);
            Ok(ExitCode::from(exit::REJECTED))
        }
    }
}

/// The retry loop of the task library, with answers streamed to standard error (when `stream`)
/// and each answer's speed reported.
pub(super) fn run_with_feedback(
    engine: &mut dyn Engine,
    settings: &ModelSettings,
    prompt: Prompt,
    attempts: u32,
    stream: bool,
    read: &dyn Fn(&str) -> Vec<String>,
    check: &mut ibert_tasks::retry::CheckProgram<'_>,
) -> anyhow::Result<Outcome> {
    let mut on_text = |text: &str| {
        eprint!("{text}");
        let _ = std::io::stderr().flush();
    };
    if stream {
        eprintln!("-- answers of {} (at most {attempts}):", engine.describe());
    }
    let options = RetryOptions { attempts, generation: &settings.generation, on_text: if stream { Some(&mut on_text) } else { None } };
    let outcome = answer_until_accepted(engine, prompt, options, read, check)?;
    if stream {
        eprintln!();
    }
    for generation in &outcome.generations {
        report_speed(generation);
    }
    if outcome.accepted.is_none() && !outcome.last_error.is_empty() {
        eprintln!("answer {} {}", outcome.attempt, outcome.last_error);
    }
    Ok(outcome)
}

/// An answer in prose (`qa`, `doc`) whose code, where it holds any (`code_of`), must compile
/// with real Ibis against the tables `snippet` infers from it (starting from `tables`); an
/// answer whose code fails is asked again with the error, up to `attempts` answers. The last
/// answer is printed either way, since prose helps even where its code does not run, and the
/// output says which check it passed.
fn code_checked_answer(
    model: &ModelOptions,
    input: &TaskInput,
    tables: &TableSchemas,
    attempts: u32,
    code_of: &dyn Fn(&str) -> Vec<String>,
) -> anyhow::Result<ExitCode> {
    let settings = model_config::settings(model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let prompt = prompt(model, &settings, &engine, input, tables)?;
    let pool = start_oracle()?;
    let whole_answer = |text: &str| vec![text.trim().to_string()];
    let outcome = run_with_feedback(&mut engine, &settings, prompt, attempts, true, &whole_answer, &mut |answer| {
        let blocks = code_of(answer);
        if blocks.is_empty() {
            return Ok(Ok("not checked: the answer holds no code to run".to_string()));
        }
        let mut inferred = Vec::new();
        for block in &blocks {
            let run = snippet::run_snippet(&pool, block, tables)?;
            if let Err(error) = &run.compiled {
                return Ok(Err(format!("has code that real Ibis rejects ({}): {error}", run.describe_tables())));
            }
            inferred.push(run.describe_tables());
        }
        Ok(Ok(format!("verified: its code ({} block(s)) compiles with real Ibis {} against {}", blocks.len(), pool.hello().ibis, inferred.join("; "))))
    })?;
    println!("{}", outcome.program.trim_end());
    match outcome.accepted {
        Some(report) => eprintln!("{report} (answer {})", outcome.attempt),
        None => eprintln!("NOT verified: no answer of {attempts} has code that runs (last: {})", outcome.last_error),
    }
    Ok(ExitCode::SUCCESS)
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
