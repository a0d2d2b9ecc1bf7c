//! The model-backed task commands: `complete` and `fix` (answers compiled by real Ibis, retried
//! with the real error fed back), `qa` and `doc` (answers streamed, no check exists for them).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use ibert_model::{ChatMessage, Engine, Generation};
use ibert_oracle::WorkerPool;
use ibert_oracle::protocol::{CompileRequest, TableSchemas};

use super::schema_input;
use crate::cli::{CompleteArgs, DocArgs, DocStyle, FixArgs, ModelOptions, QaArgs, SchemaOptions, VerifyOptions};
use crate::model_config::{self, ModelSettings};
use crate::oracle_setup;

pub(super) const IBIS_SYSTEM: &str = "You write Python code with the Ibis dataframe library (ibis-framework 12, `import ibis` and `from ibis import _`). \
Tables are Python variables named after the table; the result of a program is the variable `expr`.";

const COMPLETE_EXAMPLE: (&str, &str) = (
    "Complete this Ibis program.\n```python\nexpr = orders.filter(orders.amount > 100)\n```",
    "```python\nexpr = orders.filter(orders.amount > 100).group_by(\"status\").aggregate(total=orders.amount.sum())\n```",
);

pub fn complete(args: &CompleteArgs) -> anyhow::Result<ExitCode> {
    let prefix = schema_input::read_input(args.file.as_deref(), "partial Ibis program")?;
    let tables = tables(&args.check.schema)?;
    let mut messages = system(&tables);
    if !args.model.no_examples {
        messages.push(ChatMessage::new("user", COMPLETE_EXAMPLE.0));
        messages.push(ChatMessage::new("assistant", COMPLETE_EXAMPLE.1));
    }
    messages.push(ChatMessage::new("user", &format!("Complete this Ibis program.\n```python\n{}\n```", prefix.trim_end())));
    checked_answer(&args.model, messages, &tables, args.check.attempts, |answer| {
        let code = code_block(answer);
        // The model may answer with the whole program or with the rest of it.
        let prefix = prefix.trim_end();
        if code.trim_start().starts_with(prefix.trim_start()) {
            code
        } else if code.trim_start().starts_with('.') {
            format!("{prefix}{}", code.trim_start())
        } else {
            format!("{prefix}\n{code}")
        }
    })
}

pub fn fix(args: &FixArgs) -> anyhow::Result<ExitCode> {
    let broken = schema_input::read_input(args.file.as_deref(), "broken Ibis program")?;
    let tables = tables(&args.check.schema)?;
    let error = match &args.error {
        Some(error) => error.clone(),
        None => {
            let pool = start_oracle()?;
            match compile(&pool, &broken, &tables)? {
                Ok(_) => {
                    println!("{}", broken.trim_end());
                    eprintln!("the program already compiles with real Ibis; nothing to fix");
                    return Ok(ExitCode::SUCCESS);
                }
                Err(error) => error,
            }
        }
    };
    let mut messages = system(&tables);
    messages.push(ChatMessage::new("user", &fix_request(&broken, &error, args.context.as_deref())));
    checked_answer(&args.model, messages, &tables, args.check.attempts, code_block)
}

/// What the model is asked to repair a program that fails with `error`.
pub(super) fn fix_request(broken: &str, error: &str, context: Option<&str>) -> String {
    let mut request = format!("This Ibis program fails with: {error}\n```python\n{}\n```\n", broken.trim_end());
    if let Some(context) = context {
        request.push_str(&format!("It is meant to: {context}\n"));
    }
    request.push_str("Reply with the corrected program in one ```python block.");
    request
}

pub fn qa(args: &QaArgs) -> anyhow::Result<ExitCode> {
    let question = schema_input::read_input(args.file.as_deref(), "question")?;
    let mut messages = vec![ChatMessage::new("system", &format!("{IBIS_SYSTEM} Answer questions about Ibis briefly and show code in ```python blocks."))];
    let question = match &args.context {
        Some(context) => format!("{context}\n\n{}", question.trim()),
        None => question.trim().to_string(),
    };
    messages.push(ChatMessage::new("user", &question));
    streamed_answer(&args.model, &messages, "not checked: answers to questions have no check")
}

pub fn doc(args: &DocArgs) -> anyhow::Result<ExitCode> {
    let code = schema_input::read_input(args.file.as_deref(), "code to document")?;
    let style = match args.style {
        DocStyle::Google => "Google style (Args:, Returns:)",
        DocStyle::Numpy => "NumPy style (Parameters / Returns sections underlined with dashes)",
    };
    let messages = vec![
        ChatMessage::new("system", &format!("{IBIS_SYSTEM} Write Python docstrings in {style}. Reply with the docstring only, in triple quotes.")),
        ChatMessage::new("user", &format!("Write the docstring for:\n```python\n{}\n```", code.trim_end())),
    ];
    streamed_answer(&args.model, &messages, "not checked: docstrings have no check")
}

pub(super) fn system(tables: &TableSchemas) -> Vec<ChatMessage> {
    let mut text = IBIS_SYSTEM.to_string();
    if !tables.is_empty() {
        text.push_str(" The tables:");
        for (name, columns) in tables {
            let columns: Vec<String> = columns.iter().map(|(c, t)| format!("{c} {}", t.as_str().unwrap_or("?"))).collect();
            text.push_str(&format!(" {name}({});", columns.join(", ")));
        }
    }
    vec![ChatMessage::new("system", &text)]
}

fn tables(schema: &SchemaOptions) -> anyhow::Result<TableSchemas> {
    Ok(match schema_input::catalog(schema)? {
        Some(catalog) => {
            let names: Vec<String> = catalog.tables().iter().map(|t| t.name.clone()).collect();
            catalog.schemas_of(&names)
        }
        None => TableSchemas::new(),
    })
}

/// Generates, compiles the program `program_of(answer)` with real Ibis, and on failure asks
/// again with the real error, up to `attempts` answers. Prints the last program and whether it
/// compiled.
fn checked_answer(
    model: &ModelOptions,
    messages: Vec<ChatMessage>,
    tables: &TableSchemas,
    attempts: u32,
    program_of: impl Fn(&str) -> String,
) -> anyhow::Result<ExitCode> {
    let settings = model_config::settings(model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let pool = start_oracle()?;
    let outcome = answer_until_accepted(&mut engine, &settings, messages, attempts, true, &program_of, &mut |program| {
        Ok(compile(&pool, program, tables)?.map_err(|error| format!("does not compile: {error}")))
    })?;
    println!("{}", outcome.program.trim_end());
    match outcome.accepted {
        Some(sql) => {
            eprintln!("verified: compiles with real Ibis {} (answer {}); it compiles to:\n{}", pool.hello().ibis, outcome.attempt, sql.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("NOT verified: rejected by the check: no answer of {attempts} compiled with real Ibis (last: {})", outcome.last_error);
            Ok(ExitCode::from(crate::exit::REJECTED))
        }
    }
}

/// The last answer of [`answer_until_accepted`], and what the check said of it.
pub(super) struct Outcome {
    pub program: String,
    pub attempt: u32,
    /// The check's report of the accepted program; `None` when no answer passed.
    pub accepted: Option<String>,
    pub last_error: String,
}

/// Asks the model for a program, up to `attempts` times: each answer becomes `program_of(answer)`
/// and goes through `check`, whose failure reads after "that program" (`does not compile: ...`)
/// and is fed back for the next answer.
/// With `stream`, answers are shown on standard error as they are generated.
pub(super) fn answer_until_accepted(
    engine: &mut dyn Engine,
    settings: &ModelSettings,
    mut messages: Vec<ChatMessage>,
    attempts: u32,
    stream: bool,
    program_of: &dyn Fn(&str) -> String,
    check: &mut dyn FnMut(&str) -> anyhow::Result<Result<String, String>>,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome { program: String::new(), attempt: 0, accepted: None, last_error: String::new() };
    for attempt in 1..=attempts {
        if stream {
            eprintln!("-- answer {attempt} of at most {attempts} ({}):", engine.describe());
        }
        let generation = generate(engine, settings, &messages, &mut |text| {
            if stream {
                eprint!("{text}");
                let _ = std::io::stderr().flush();
            }
        })?;
        if stream {
            eprintln!();
        }
        report_speed(&generation);
        outcome.program = program_of(&generation.text);
        outcome.attempt = attempt;
        match check(&outcome.program)? {
            Ok(report) => {
                outcome.accepted = Some(report);
                return Ok(outcome);
            }
            Err(error) => {
                eprintln!("answer {attempt} {error}");
                messages.push(ChatMessage::new("assistant", &generation.text));
                messages.push(ChatMessage::new("user", &format!("That program {error}\nReply with the corrected complete program in one ```python block.")));
                outcome.last_error = error;
            }
        }
    }
    Ok(outcome)
}

fn streamed_answer(model: &ModelOptions, messages: &[ChatMessage], note: &str) -> anyhow::Result<ExitCode> {
    let settings = model_config::settings(model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let generation = generate(&mut engine, &settings, messages, &mut |text| {
        print!("{text}");
        let _ = std::io::stdout().flush();
    })?;
    println!();
    report_speed(&generation);
    eprintln!("{note}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn generate(
    engine: &mut dyn Engine,
    settings: &ModelSettings,
    messages: &[ChatMessage],
    on_text: &mut dyn FnMut(&str),
) -> anyhow::Result<Generation> {
    let prompt = engine.chat_prompt(messages)?;
    Ok(engine.generate(&prompt, &settings.generation, on_text)?)
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

fn start_oracle() -> anyhow::Result<WorkerPool> {
    oracle_setup::start_pool(&VerifyOptions { jobs: Some(1), seed: 0, timeout: 10 }, &[])
}

/// The DuckDB SQL real Ibis compiles `code` to, or its error as `Type: message`.
fn compile(pool: &WorkerPool, code: &str, tables: &TableSchemas) -> anyhow::Result<Result<String, String>> {
    compile_for(pool, code, tables, "duckdb")
}

/// As [`compile`], for any dialect.
pub(super) fn compile_for(pool: &WorkerPool, code: &str, tables: &TableSchemas, dialect: &str) -> anyhow::Result<Result<String, String>> {
    let request = CompileRequest { code: code.to_string(), tables: tables.clone(), dialect: dialect.into(), expr_name: None };
    Ok(match pool.compile(&request).context("compiling with the Ibis oracle")? {
        Ok(compiled) => Ok(compiled.sql),
        Err(failure) => Err(format!("{}: {}", failure.error_type, failure.message)),
    })
}

/// The first fenced code block of an answer, else the whole answer.
pub(super) fn code_block(answer: &str) -> String {
    let Some(start) = answer.find("```") else { return answer.trim().to_string() };
    let after = &answer[start + 3..];
    let body = after.split_once('\n').map_or(after, |(_, rest)| rest);
    let end = body.find("```").unwrap_or(body.len());
    body[..end].trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_are_taken_from_fenced_answers() {
        assert_eq!(code_block("Sure:\n```python\nexpr = t.count()\n```\nDone."), "expr = t.count()\n");
        assert_eq!(code_block("```\nx = 1\n"), "x = 1\n");
        assert_eq!(code_block("  expr = t  "), "expr = t");
    }
}
