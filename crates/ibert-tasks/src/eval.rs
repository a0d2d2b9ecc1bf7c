//! One record of a held-out split, answered by a model and scored.
//!
//! Execution accuracy where a check exists: a `sql_to_ibis`, `code_completion` or
//! `error_resolution` answer is correct when its result, executed as a user executes it, equals
//! the reference result on the fixture databases; an `ibis_to_sql` answer when its SQL's result
//! equals the reference program's. For `qa` and `documentation` no such check exists, so the
//! score is a stated **proxy**. A `qa` question whose reference answer is code ("how do I ...",
//! "write this SQL with Ibis") wants code: correct when the answer's code returns the record's
//! verified code example's result (or, without one, compiles with real Ibis against the record's
//! tables). A question answered in prose ("what does this compute", "what does this API do") is
//! correct when the answer names everything the reference names in backticks (its tables, the
//! API's function). A docstring is correct when it has the requested style's sections and names
//! every parameter of the function.
//!
//! Retries feed back only what a user would see (the answer does not compile, fails when run,
//! or returns nothing): never the reference.

use std::time::Duration;

use ibert_model::{Engine, GenerationOptions};
use ibert_oracle::OracleError;
use ibert_records::{DocStyle, Example, Payload};
use ibert_verify::Verdict;

use crate::answer;
use crate::check::{Checked, Checker};
use crate::prompt::{Prompt, Shot, TaskInput};
use crate::retry::{RetryError, RetryOptions, answer_until_accepted};

/// Raised whenever `score` judges differently, so that `ibert eval` does not resume from results
/// scored the old way. 2: the prose proxy of `qa`.
pub const SCORING_VERSION: u32 = 2;

/// How a record is answered.
pub struct EvalOptions<'a> {
    pub generation: &'a GenerationOptions,
    /// Answers per record; after the first, each is asked with the previous one's failure.
    pub attempts: u32,
    /// `error_resolution`: try the repairs the error proposes ([`crate::repair`]) before the
    /// model, as `ibert fix` does.
    pub error_repairs: bool,
}

/// A record's answer and its score.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvalOutcome {
    pub id: String,
    pub task: String,
    pub correct: bool,
    /// Why it is not correct (or what was checked).
    pub detail: String,
    /// The program (or SQL, or text) that was scored.
    pub answer: String,
    pub attempts: u32,
    /// Seconds from the first prompt token to the last answer.
    pub latency: f64,
    /// Prompt tokens the model ran, over all attempts; those a retry shares with the previous
    /// prompt come from the key/value cache and are not counted (nor timed).
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Seconds spent in generation proper (after the prompt).
    pub generation_seconds: f64,
    pub prompt_seconds: f64,
    /// Tokens drafted by speculative decoding and checked by the model, and those it kept (0
    /// with plain decoding).
    #[serde(default)]
    pub drafted_tokens: usize,
    #[serde(default)]
    pub accepted_tokens: usize,
}

/// Answers `example` with `engine` and scores the answer. With a `goal` (a `code_completion`
/// record's query), the partial program states it in a leading comment and the candidates of an
/// answer are checked against it, as `ibert complete` does with such a comment.
pub fn evaluate(
    engine: &mut dyn Engine,
    checker: &mut Checker,
    example: &Example,
    shots: &[Shot],
    options: &EvalOptions,
    goal: Option<&str>,
) -> Result<EvalOutcome, RetryError> {
    let tables = example.context.schemas();
    let goal = goal.filter(|_| matches!(example.payload, Payload::CodeCompletion { .. }));
    let stated_partial = match (&example.payload, goal) {
        (Payload::CodeCompletion { input, .. }, Some(goal)) => Some(format!("{}{}", crate::goal::as_comment(goal), input.partial_code)),
        _ => None,
    };
    let input = match &stated_partial {
        Some(partial_code) => TaskInput::CodeCompletion { partial_code },
        None => TaskInput::of(example),
    };
    let prompt = Prompt::render(&input, &tables, shots);
    if options.error_repairs
        && let Payload::ErrorResolution { input, .. } = &example.payload
        && let Some((program, repairs)) = crate::repair::repair_and_check(checker, &input.broken_code, &input.error, &tables, None)?
    {
        let (correct, detail, scored) = score(checker, example, &program)?;
        let detail = format!("{detail} (repaired from the error: {}; no model answer)", repairs.join(", "));
        let (prompt_tokens, generated_tokens) = (0, 0);
        let outcome = EvalOutcome {
            id: example.id.clone(),
            task: example.task().to_string(),
            correct,
            detail,
            answer: scored,
            attempts: 0,
            latency: 0.0,
            prompt_tokens,
            generated_tokens,
            generation_seconds: 0.0,
            prompt_seconds: 0.0,
            drafted_tokens: 0,
            accepted_tokens: 0,
        };
        return Ok(outcome);
    }
    let read = |text: &str| -> Vec<String> {
        match &example.payload {
            Payload::CodeCompletion { input, .. } => answer::completions(stated_partial.as_deref().unwrap_or(&input.partial_code), text),
            Payload::Qa { .. } => vec![text.trim().to_string()],
            Payload::Documentation { .. } => vec![answer::docstring(text)],
            _ => vec![answer::code_block(text)],
        }
    };
    let checks_code = matches!(example.payload, Payload::SqlToIbis { .. } | Payload::CodeCompletion { .. } | Payload::ErrorResolution { .. });
    // The feedback a user would have: the program compiles and runs through Ibis.
    let mut feedback = |program: &str| -> Result<Result<String, String>, OracleError> {
        if !checks_code {
            return Ok(Ok(String::new()));
        }
        if let Some(goal) = goal {
            return Ok(checker.program_matches_sql(goal, program, &tables)?.as_feedback().map(|_| String::new()));
        }
        let checked = checker.program_runs(program, &tables)?;
        Ok(match &checked.verdict {
            Verdict::Rejected(reject) if !reject.reason.is_inconclusive() => Err(format!("fails ({}): {}", reject.reason, reject.detail)),
            _ => Ok(String::new()),
        })
    };
    let retry = RetryOptions { attempts: options.attempts, generation: options.generation, on_text: None };
    let outcome = answer_until_accepted(engine, prompt, retry, &read, &mut feedback)?;
    let (correct, detail, scored) = score(checker, example, &outcome.program)?;
    let sum = |f: fn(&ibert_model::Generation) -> Duration| outcome.generations.iter().map(f).sum::<Duration>().as_secs_f64();
    let prompt_seconds = sum(|g| g.prompt_time);
    let generation_seconds = sum(|g| g.generation_time);
    Ok(EvalOutcome {
        id: example.id.clone(),
        task: example.task().to_string(),
        correct,
        detail,
        answer: scored,
        attempts: outcome.attempt,
        latency: prompt_seconds + generation_seconds,
        prompt_tokens: outcome.generations.iter().map(|g| g.prompt_tokens - g.reused_prompt_tokens).sum(),
        generated_tokens: outcome.generations.iter().map(|g| g.generated_tokens).sum(),
        generation_seconds,
        prompt_seconds,
        drafted_tokens: outcome.generations.iter().map(|g| g.decoding.drafted).sum(),
        accepted_tokens: outcome.generations.iter().map(|g| g.decoding.accepted).sum(),
    })
}

/// Whether `answer` is right for `example`, why, and what was scored.
pub fn score(checker: &mut Checker, example: &Example, answer_text: &str) -> Result<(bool, String, String), OracleError> {
    let tables = example.context.schemas();
    let judged = |checked: Checked| {
        let detail = match &checked.verdict {
            Verdict::Verified(_) => "the reference result, executed through Ibis".to_string(),
            Verdict::Rejected(reject) => format!("{}: {}", reject.reason, reject.detail),
        };
        (checked.passed(), detail, checked.program)
    };
    Ok(match &example.payload {
        Payload::SqlToIbis { input, .. } => judged(checker.program_matches_sql(&input.sql, answer_text, &tables)?),
        Payload::CodeCompletion { target, .. } => judged(checker.program_matches_program(&target.completed_code, answer_text, &tables)?),
        Payload::ErrorResolution { target, .. } => judged(checker.program_matches_program(&target.fixed_code, answer_text, &tables)?),
        Payload::IbisToSql { input, .. } if input.dialect == "duckdb" => judged(checker.sql_matches_program(answer_text, &input.ibis, &tables)?),
        Payload::IbisToSql { target, .. } => {
            // SQL of other dialects does not run here: the exact text, layout aside.
            let same = squeeze(answer_text) == squeeze(&target.sql);
            (same, if same { "the reference SQL (proxy: text)".into() } else { "not the reference SQL (proxy: text)".into() }, answer_text.to_string())
        }
        Payload::Qa { target, .. } if !target.answer.contains("```") => {
            let (ok, detail) = prose_proxy(&target.answer, answer_text);
            (ok, detail, answer_text.to_string())
        }
        Payload::Qa { target, .. } => {
            let code = answer::code_block(answer_text);
            if !answer_text.contains("```") {
                (false, "proxy: no code in the answer".into(), answer_text.to_string())
            } else if let Some(reference) = &target.code_example {
                judged(checker.program_matches_program(reference, &code, &tables)?)
            } else {
                match checker.compile(&code, &tables)? {
                    Ok(_) => (true, "proxy: its code compiles with real Ibis".into(), code),
                    Err(error) => (false, format!("proxy: its code does not compile: {error}"), code),
                }
            }
        }
        Payload::Documentation { input, .. } => {
            let (ok, detail) = docstring_proxy(&input.code, input.style, answer_text);
            (ok, detail, answer_text.to_string())
        }
    })
}

/// The documentation proxy: the style's sections are there, and every parameter is named.
fn docstring_proxy(code: &str, style: DocStyle, docstring: &str) -> (bool, String) {
    let sections: &[&str] = match style {
        DocStyle::Google => &["Args:", "Returns:"],
        DocStyle::Numpy => &["Parameters\n----------", "Returns\n-------"],
    };
    let parameters = parameters_of(code);
    let missing_sections: Vec<&str> =
        sections.iter().copied().filter(|section| !(docstring.contains(section) || parameters.is_empty() && section.starts_with(['A', 'P']))).collect();
    let missing_parameters: Vec<&String> = parameters.iter().filter(|parameter| !docstring.contains(parameter.as_str())).collect();
    if missing_sections.is_empty() && missing_parameters.is_empty() {
        (true, "proxy: the style's sections, every parameter named".into())
    } else {
        (false, format!("proxy: missing sections {missing_sections:?}, parameters {missing_parameters:?}"))
    }
}

/// The prose proxy of `qa`: the answer names every name the reference answer puts in backticks
/// (`BaseBackend.has_operation(op)` counts as `has_operation`), so an answer about the wrong table
/// or the wrong function fails, and one that is merely worded otherwise does not.
fn prose_proxy(reference: &str, answer: &str) -> (bool, String) {
    let names = backticked_names(reference);
    let missing: Vec<&String> = names.iter().filter(|name| !answer.contains(name.as_str())).collect();
    if answer.trim().is_empty() {
        (false, "proxy: an empty answer".into())
    } else if missing.is_empty() {
        (true, format!("proxy: names {names:?} as the reference does"))
    } else {
        (false, format!("proxy: does not name {missing:?}"))
    }
}

/// The identifiers inside single backticks: the last dotted part, without a call's arguments.
fn backticked_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|quoted| {
            let name = quoted.split('(').next()?.rsplit('.').next()?.trim();
            let is_identifier = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            is_identifier.then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The parameter names of the first `def` in `code`.
fn parameters_of(code: &str) -> Vec<String> {
    let Some(start) = code.find("def ") else { return Vec::new() };
    let rest = &code[start..];
    let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) else { return Vec::new() };
    if close < open {
        return Vec::new();
    }
    rest[open + 1..close]
        .split(',')
        .map(|parameter| parameter.split([':', '=']).next().unwrap_or("").trim().trim_start_matches('*').to_string())
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
}

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documentation_proxy_wants_the_sections_and_every_parameter() {
        let code = "def revenue(orders, customers):\n    ...\n";
        let good = "Revenue per customer.\n\nArgs:\n    orders: the orders.\n    customers: the customers.\n\nReturns:\n    A table.";
        assert!(docstring_proxy(code, DocStyle::Google, good).0);
        let (ok, detail) = docstring_proxy(code, DocStyle::Google, "Revenue.\n\nArgs:\n    orders: the orders.\n\nReturns:\n    A table.");
        assert!(!ok && detail.contains("customers"), "{detail}");
        assert!(!docstring_proxy(code, DocStyle::Numpy, good).0, "NumPy sections are not Google's");
    }

    #[test]
    fn the_prose_proxy_wants_the_names_the_reference_gives() {
        let reference = "`BaseBackend.has_operation(op)`: Return True if the backend supports the operation.";
        assert!(prose_proxy(reference, "It tells whether `has_operation` is supported, e.g. for `Sum`.").0);
        let (ok, detail) = prose_proxy(reference, "It connects to a database.");
        assert!(!ok && detail.contains("has_operation"), "{detail}");
        let tables = "Products not sold. It reads the `order_items` and `products` tables.";
        assert!(!prose_proxy(tables, "It reads the `orders` table.").0);
        assert!(!prose_proxy("No names here.", "  ").0, "an empty answer is never right");
    }

    #[test]
    fn backticked_names_skip_code_that_is_not_a_name() {
        assert_eq!(backticked_names("`a.b.c(x, y)` then `x > 1` and `t`"), ["c", "t"]);
    }

    #[test]
    fn parameters_are_read_from_the_signature() {
        assert_eq!(parameters_of("def f(a, b: int = 2, *rest):\n"), ["a", "b", "rest"]);
        assert!(parameters_of("x = 1").is_empty());
    }
}
