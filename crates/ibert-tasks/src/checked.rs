//! The checked answers of the model-backed tasks (`complete`, `fix`, `qa`, `doc`), one wiring for
//! the task commands and `ibert serve`: the request turned into a prompt input, the answer read
//! into candidate programs, each checked by execution, the real error fed back, and a result
//! that says what the check found. Callers only present it (text on a terminal, JSON over HTTP).

use ibert_model::{Engine, Generation};
use ibert_oracle::{OracleError, WorkerPool};
use ibert_records::DocStyle;
use ibert_transpile::{Catalog, SqlDialect, transpile};
use ibert_verify::{RejectReason, Verdict};

use crate::check::{Checked, Checker, compile_to};
use crate::prompt::Tables;
use crate::retry::{RetryError, RetryOptions, answer_until_accepted};
use crate::{Prompt, TaskInput, answer, repair, snippet};

/// One request to a model-backed task.
#[derive(Debug, Clone, Copy)]
pub enum TaskRequest<'a> {
    /// Complete a partial program; with a `goal` SQL the completion must return its result.
    Complete { prefix: &'a str, goal: Option<&'a str> },
    /// Fix a program that raised `error`; with a `goal`, the fix must return the goal's result.
    Fix { broken: &'a str, error: &'a str, context: Option<&'a str>, goal: Option<&'a str> },
    /// Answer a question about Ibis; code in the answer must compile.
    Qa { question: &'a str },
    /// Document code; the docstring's examples must compile after it.
    Doc { code: &'a str, style: DocStyle },
}

impl<'a> TaskRequest<'a> {
    /// What the prompt is rendered from.
    pub fn input(&self) -> TaskInput<'a> {
        match *self {
            TaskRequest::Complete { prefix, .. } => TaskInput::CodeCompletion { partial_code: prefix },
            TaskRequest::Fix { broken, error, context, .. } => TaskInput::ErrorResolution { broken_code: broken, error, context },
            TaskRequest::Qa { question } => TaskInput::Qa { question },
            TaskRequest::Doc { code, style } => TaskInput::Documentation { code, style },
        }
    }

    pub fn goal(&self) -> Option<&'a str> {
        match *self {
            TaskRequest::Complete { goal, .. } | TaskRequest::Fix { goal, .. } => goal,
            TaskRequest::Qa { .. } | TaskRequest::Doc { .. } => None,
        }
    }
}

/// What a checked task answered and what its check found.
#[derive(Debug, Clone)]
pub struct CheckedAnswer {
    /// What the user gets: the last program (complete, fix, from-sql), the last prose answer
    /// (qa, doc), or SQL (to-sql).
    pub answer: String,
    /// The program the answer is the SQL of, when the model repaired the input (to-sql).
    pub program: Option<String>,
    pub verified: bool,
    /// How the answer was verified, or why no answer passed (the last error).
    pub report: String,
    /// The verifier's verdict on the last program, where the check was the verifier's.
    pub verdict: Option<Verdict>,
    /// Answers generated (0 when a repair of the input's own error sufficed).
    pub attempts: u32,
    /// Repairs made to the program by the errors' own proposals (`ibert_tasks::repair`).
    pub repairs: Vec<String>,
    pub generations: Vec<Generation>,
}

impl CheckedAnswer {
    /// Why the verifier rejected the last program, when it did.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match &self.verdict {
            Some(Verdict::Rejected(reject)) if !self.verified => Some(reject.reason),
            _ => None,
        }
    }
}

/// Asks `engine` for an answer to `request`, checks each one by execution and retries with the
/// real error, up to `options.attempts` answers.
pub fn answer_checked(
    engine: &mut dyn Engine,
    pool: &WorkerPool,
    prompt: Prompt,
    request: &TaskRequest,
    tables: &Tables,
    options: RetryOptions,
) -> Result<CheckedAnswer, RetryError> {
    match *request {
        TaskRequest::Complete { prefix, goal } => program_answer(engine, pool, prompt, tables, goal, options, &|text: &str| answer::completions(prefix, text)),
        TaskRequest::Fix { goal, .. } => program_answer(engine, pool, prompt, tables, goal, options, &|text: &str| vec![answer::code_block(text)]),
        TaskRequest::Qa { .. } => prose_answer(engine, pool, prompt, tables, options, &snippet::python_blocks),
        TaskRequest::Doc { code, .. } => {
            // The docstring's examples run after the documented code, which defines what they call.
            let examples = |text: &str| -> Vec<String> {
                snippet::doctest_code(&answer::docstring(text)).map(|examples| format!("{}\n{examples}", code.trim_end())).into_iter().collect()
            };
            prose_answer(engine, pool, prompt, tables, options, &examples)
        }
    }
}

/// An answer that is a program: it must compile and run through Ibis on the fixtures, and with a
/// `goal` SQL return that query's result there. A candidate one repair of its own error away
/// passes repaired.
fn program_answer(
    engine: &mut dyn Engine,
    pool: &WorkerPool,
    prompt: Prompt,
    tables: &Tables,
    goal: Option<&str>,
    options: RetryOptions,
    read: &dyn Fn(&str) -> Vec<String>,
) -> Result<CheckedAnswer, RetryError> {
    let attempts = options.attempts;
    let mut checker = Checker::on_default_fixtures(pool);
    let mut last = None;
    let mut repaired = None;
    let outcome = answer_until_accepted(engine, prompt, options, read, &mut |program| {
        let checked = match goal {
            Some(goal) => checker.program_matches_sql(goal, program, tables)?,
            None => checker.program_runs(program, tables)?,
        };
        let feedback = checked.as_feedback();
        if let (Err(_), Verdict::Rejected(reject)) = (&feedback, &checked.verdict)
            && let Some(repair) = repair::repair_and_check(&mut checker, program, &reject.detail, tables, goal)?
        {
            repaired = Some(repair);
            return Ok(Ok(String::new()));
        }
        last = Some(checked.verdict);
        Ok(feedback)
    })?;
    let (answer, repairs) = match repaired {
        Some((program, repairs)) => (program, repairs),
        None => (outcome.program, Vec::new()),
    };
    let verified = outcome.accepted.is_some();
    if !verified
        && let Some(goal) = goal
        && let Some(checked) = goal_by_transpiler(&mut checker, goal, tables)?
    {
        let report = format!(
            "verified: compiles with real Ibis {} and returns the goal SQL's result, executed through Ibis on the fixture databases \
             (the goal SQL translated by the transpiler, since no answer of the model's {attempts} did; it does not continue the given lines; \
             the model's last: {})",
            pool.hello().ibis,
            outcome.last_error
        );
        let verdict = Some(checked.verdict);
        return Ok(CheckedAnswer {
            answer: checked.program,
            program: None,
            verified: true,
            report,
            verdict,
            attempts: outcome.attempt,
            repairs,
            generations: outcome.generations,
        });
    }
    let report = if verified {
        let check = if goal.is_some() {
            "returns the goal SQL's result, executed through Ibis on the fixture databases"
        } else {
            "runs through Ibis on the fixture databases"
        };
        let repairs = if repairs.is_empty() { String::new() } else { format!(", repaired from its error: {}", repairs.join(", ")) };
        format!("verified: compiles with real Ibis {} and {check} (answer {}{repairs})", pool.hello().ibis, outcome.attempt)
    } else {
        format!("NOT verified: no answer of {attempts} passed (last: {})", outcome.last_error)
    };
    Ok(CheckedAnswer { answer, program: None, verified, report, verdict: last, attempts: outcome.attempt, repairs, generations: outcome.generations })
}

/// The goal SQL as the transpiler translates it, when that program returns the goal's result:
/// a verified answer where the model gave none (`None` when the transpiler refuses the SQL or
/// its translation does not verify).
fn goal_by_transpiler(checker: &mut Checker, goal: &str, tables: &Tables) -> Result<Option<Checked>, OracleError> {
    let Ok(catalog) =
        serde_json::to_value(tables).map_err(|error| error.to_string()).and_then(|value| Catalog::from_json(&value).map_err(|error| error.to_string()))
    else {
        return Ok(None);
    };
    let Ok(translation) = transpile(goal, &catalog, SqlDialect::DuckDb) else { return Ok(None) };
    let checked = checker.program_matches_sql(goal, &translation.code, tables)?;
    Ok(checked.as_feedback().is_ok().then_some(checked))
}

/// An answer in prose whose code, where it holds any (`code_of`), must compile with real Ibis
/// against the tables `snippet` infers from it (starting from `tables`). Prose with no code is
/// accepted unchecked, and says so.
fn prose_answer(
    engine: &mut dyn Engine,
    pool: &WorkerPool,
    prompt: Prompt,
    tables: &Tables,
    options: RetryOptions,
    code_of: &dyn Fn(&str) -> Vec<String>,
) -> Result<CheckedAnswer, RetryError> {
    let attempts = options.attempts;
    let whole_answer = |text: &str| vec![text.trim().to_string()];
    let mut code_checked = false;
    let outcome = answer_until_accepted(engine, prompt, options, &whole_answer, &mut |answer| {
        let blocks = code_of(answer);
        code_checked = !blocks.is_empty();
        if blocks.is_empty() {
            return Ok(Ok("not checked: the answer holds no code to run".to_string()));
        }
        let mut inferred = Vec::new();
        for block in &blocks {
            let run = snippet::run_snippet(pool, block, tables)?;
            if let Err(error) = &run.compiled {
                return Ok(Err(format!("has code that real Ibis rejects ({}): {error}", run.describe_tables())));
            }
            inferred.push(run.describe_tables());
        }
        Ok(Ok(format!("verified: its code ({} block(s)) compiles with real Ibis {} against {}", blocks.len(), pool.hello().ibis, inferred.join("; "))))
    })?;
    let (verified, report) = match outcome.accepted {
        Some(report) => (code_checked, format!("{report} (answer {})", outcome.attempt)),
        None => (false, format!("NOT verified: no answer of {attempts} has code that runs (last: {})", outcome.last_error)),
    };
    Ok(CheckedAnswer {
        answer: outcome.program,
        program: None,
        verified,
        report,
        verdict: None,
        attempts: outcome.attempt,
        repairs: Vec::new(),
        generations: outcome.generations,
    })
}

/// What a program given to `fix` needs, found before any model runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Diagnosis {
    /// Nothing to fix: the program compiles (and returns the goal's result, with a goal).
    AlreadyRight(String),
    /// The error to fix: Ibis's own, or how the result differs from the goal's.
    Broken(String),
}

/// Compiles `broken` with real Ibis and, with a `goal`, checks its result against the goal's.
pub fn diagnose(pool: &WorkerPool, broken: &str, tables: &Tables, goal: Option<&str>) -> Result<Diagnosis, OracleError> {
    Ok(match (compile_to(pool, broken, tables, "duckdb")?, goal) {
        (Err(error), _) => Diagnosis::Broken(error),
        // It compiles: with a goal, it is broken when it does not return the goal's result.
        (Ok(_), Some(goal)) => {
            let mut checker = Checker::on_default_fixtures(pool);
            match checker.program_matches_sql(goal, broken, tables)?.as_feedback() {
                Ok(_) => Diagnosis::AlreadyRight("the program already returns the goal SQL's result; nothing to fix".to_string()),
                Err(why) => Diagnosis::Broken(format!("It runs but {why}")),
            }
        }
        (Ok(_), None) => {
            Diagnosis::AlreadyRight("the program already compiles with real Ibis; nothing to fix (a goal SQL checks it against a query)".to_string())
        }
    })
}

/// The repairs `error` itself proposes for `broken`, each run through the checks: the program
/// that passes and the repairs made, with no model needed.
pub fn repair_from_error(pool: &WorkerPool, broken: &str, error: &str, tables: &Tables, goal: Option<&str>) -> Result<Option<CheckedAnswer>, OracleError> {
    let mut checker = Checker::on_default_fixtures(pool);
    let Some((program, repairs)) = repair::repair_and_check(&mut checker, broken, error, tables, goal)? else {
        return Ok(None);
    };
    let check = if goal.is_some() { "returns the goal SQL's result" } else { "runs through Ibis on the fixture databases" };
    let report = format!(
        "verified: compiles with real Ibis {} and {check} (repaired from the error: {}; no model answer needed)",
        pool.hello().ibis,
        repairs.join(", ")
    );
    Ok(Some(CheckedAnswer { answer: program, program: None, verified: true, report, verdict: None, attempts: 0, repairs, generations: Vec::new() }))
}

/// SQL -> Ibis by the model (what the transpiler refuses): each answer must return what `sql`
/// returns on `checker`'s databases, and a failed check is fed back for the next answer.
pub fn translate_sql(
    engine: &mut dyn Engine,
    checker: &mut Checker,
    prompt: Prompt,
    sql: &str,
    tables: &Tables,
    options: RetryOptions,
) -> Result<CheckedAnswer, RetryError> {
    let attempts = options.attempts;
    let mut last = None;
    let read = |text: &str| vec![answer::code_block(text)];
    let outcome = answer_until_accepted(engine, prompt, options, &read, &mut |program| {
        let checked = checker.program_matches_sql(sql, program, tables)?;
        let feedback = checked.as_feedback();
        last = Some((checked.program, checked.verdict));
        Ok(feedback)
    })?;
    let (answer, verdict) = match last {
        Some((program, verdict)) => (program, Some(verdict)),
        None => (outcome.program, None),
    };
    let verified = outcome.accepted.is_some();
    let origin = format!("translated by the model, not the transpiler; answer {} of at most {attempts}", outcome.attempt);
    let report = match &outcome.accepted {
        Some(report) => format!("verified ({origin}): {report}"),
        None => format!("NOT verified ({origin}): {}", outcome.last_error),
    };
    Ok(CheckedAnswer { answer, program: None, verified, report, verdict, attempts: outcome.attempt, repairs: Vec::new(), generations: outcome.generations })
}

/// A program that does not compile (`to-sql`), repaired by the model until real Ibis compiles
/// it to `dialect`: the answer is that SQL, and `program` the repaired program it is of.
pub fn repair_to_compile(
    engine: &mut dyn Engine,
    pool: &WorkerPool,
    prompt: Prompt,
    tables: &Tables,
    dialect: &str,
    options: RetryOptions,
) -> Result<CheckedAnswer, RetryError> {
    let attempts = options.attempts;
    let mut compiled = None;
    let read = |text: &str| vec![answer::code_block(text)];
    let outcome = answer_until_accepted(engine, prompt, options, &read, &mut |program| {
        let result = compile_to(pool, program, tables, dialect)?;
        compiled = result.as_ref().ok().cloned();
        Ok(result.map_err(|error| format!("does not compile: {error}")))
    })?;
    let sql = compiled.filter(|_| outcome.accepted.is_some());
    let report = match &sql {
        Some(_) => format!("repaired by the model (answer {}); the SQL is real Ibis's compilation of the repaired program, not of the input", outcome.attempt),
        None => format!("the model's {attempts} repairs did not compile either (last: {})", outcome.last_error),
    };
    Ok(CheckedAnswer {
        verified: sql.is_some(),
        answer: sql.unwrap_or_default(),
        program: Some(outcome.program),
        report,
        verdict: None,
        attempts: outcome.attempt,
        repairs: Vec::new(),
        generations: outcome.generations,
    })
}
