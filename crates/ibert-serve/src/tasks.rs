//! `POST /v1/tasks/{from-sql,to-sql,complete,fix,qa,doc}`: the six tasks with JSON in and out,
//! through the task library as the commands run them. Deterministic work (compiling with real
//! Ibis, the transpiler and its verification) runs on tokio's blocking threads against the
//! shared worker pool, so it never waits behind generation; only what needs the model is queued.
//!
//! A request that can be worked on is answered 200 with `verified` saying whether the check
//! passed; a program or query that nothing could be made of (SQL that does not parse, a program
//! the sandbox refuses, no model to fall back on) is a 422 with the reason.

use std::time::Instant;

use axum::Json;
use axum::extract::State as AxumState;
use ibert_model::{Cancel, Engine, GenerationOptions};
use ibert_oracle::protocol::{CompileRequest, TableSchemas};
use ibert_oracle::{FailureKind, OracleError};
use ibert_records::DocStyle;
use ibert_tasks::TaskInput;
use ibert_tasks::check::Checker;
use ibert_tasks::checked::{self, CheckedAnswer, Diagnosis, TaskRequest};
use ibert_tasks::goal::goal_sql;
use ibert_tasks::retry::{RetryError, RetryOptions};
use ibert_transpile::{Catalog, RESULT_NAME, SqlDialect, TranspileError, transpile};
use ibert_verify::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::errors::{ApiError, JsonBody};
use crate::state::{Ready, State};
use crate::timings::Timings;

/// The answer of every task endpoint.
#[derive(Debug, Serialize)]
pub struct TaskResponse {
    pub task: &'static str,
    /// The program, SQL or prose the task produced.
    pub answer: String,
    pub verified: bool,
    /// What the check found: how the answer was verified, or why it was not.
    pub verification: String,
    /// Who produced the answer: `ibis` (compiled), `transpiler`, `repair` (the error's own
    /// repair), or `model`.
    pub origin: &'static str,
    /// The verifier's evidence (rows per fixture database, ordering, Ibis executions) or its
    /// reject reason, where the check was a comparison of results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    /// The program the SQL is of, when the model repaired the input (to-sql).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    pub attempts: u32,
    pub repairs: Vec<String>,
    pub timings: Timings,
}

/// Settings every model-backed task request may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Answers to try, each checked [default: the server's --attempts].
    pub attempts: Option<u32>,
    pub max_tokens: Option<usize>,
    pub temperature: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToSqlRequest {
    pub code: String,
    /// `{"table": {"column": "type", ...}, ...}`.
    #[serde(default)]
    pub tables: Option<Value>,
    #[serde(default = "duckdb")]
    pub dialect: String,
    /// Let the model repair a program that does not compile [default: true].
    #[serde(default = "yes")]
    pub repair: bool,
    #[serde(flatten)]
    pub model: ModelSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromSqlRequest {
    pub sql: String,
    pub tables: Value,
    #[serde(default = "duckdb")]
    pub dialect: String,
    /// Let the model translate what the transpiler refuses [default: true].
    #[serde(default = "yes")]
    pub fallback: bool,
    #[serde(flatten)]
    pub model: ModelSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub code: String,
    #[serde(default)]
    pub tables: Option<Value>,
    /// SQL whose result the completion must return [default: one in a leading comment].
    #[serde(default)]
    pub goal_sql: Option<String>,
    #[serde(flatten)]
    pub model: ModelSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixRequest {
    pub code: String,
    /// The error it raised [default: the error real Ibis raises compiling it].
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub tables: Option<Value>,
    #[serde(default)]
    pub goal_sql: Option<String>,
    #[serde(flatten)]
    pub model: ModelSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaRequest {
    pub question: String,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub tables: Option<Value>,
    #[serde(flatten)]
    pub model: ModelSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocRequest {
    pub code: String,
    #[serde(default)]
    pub style: Style,
    #[serde(default)]
    pub tables: Option<Value>,
    #[serde(flatten)]
    pub model: ModelSettings,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    #[default]
    Google,
    Numpy,
}

fn duckdb() -> String {
    "duckdb".to_string()
}

fn yes() -> bool {
    true
}

pub async fn to_sql(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<ToSqlRequest>) -> Result<Json<TaskResponse>, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let code = non_empty(request.code, "code")?;
    let tables = tables(request.tables.as_ref())?;
    let compile = CompileRequest { code, tables, dialect: request.dialect.to_ascii_lowercase(), expr_name: None };
    let pool = ready.pool;
    let (compiled, compile) = blocking(move || pool.compile(&compile).map(|result| (result, compile))).await?;
    let failure = match compiled {
        Ok(compiled) => {
            return Ok(Json(TaskResponse {
                task: "to-sql",
                answer: compiled.sql,
                verified: true,
                verification: format!("compiled exactly by ibis-framework {} ({} dialect)", ready.pool.hello().ibis, compile.dialect),
                origin: "ibis",
                evidence: None,
                program: None,
                attempts: 0,
                repairs: Vec::new(),
                timings: Timings::since(started, &[]),
            }));
        }
        Err(failure) => failure,
    };
    let line = failure.line.map(|line| format!(" (line {line})")).unwrap_or_default();
    let error = format!("{}: {}", failure.error_type, failure.message);
    if failure.kind == FailureKind::Sandbox || !request.repair || ready.generation.is_none() {
        return Err(ApiError::unprocessable(format!("the program does not compile with Ibis{line}: {error}")));
    }
    let prompt = ready.prompt(&TaskInput::ErrorResolution { broken_code: &compile.code, error: &error, context: None }, &compile.tables);
    let pool = ready.pool;
    let answered = run_model(&state, ready, &request.model, move |engine, options| {
        checked::repair_to_compile(engine, pool, prompt, &compile.tables, &compile.dialect, options)
    })
    .await?;
    if !answered.verified {
        return Err(ApiError::unprocessable(format!("the program does not compile with Ibis{line}: {error}; {}", answered.report)));
    }
    Ok(Json(response("to-sql", "model", answered, started)))
}

pub async fn from_sql(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<FromSqlRequest>) -> Result<Json<TaskResponse>, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let sql = non_empty(request.sql, "sql")?;
    let catalog = Catalog::from_json(&request.tables).map_err(|error| ApiError::bad_request(format!("`tables`: {error}")))?;
    let dialect = SqlDialect::from_name(&request.dialect)
        .ok_or_else(|| ApiError::bad_request(format!("`dialect`: `{}` is not one of {}", request.dialect, SqlDialect::NAMES.join(", "))))?;
    let refusal = match transpile(&sql, &catalog, dialect) {
        Ok(translation) => {
            let tables = catalog.schemas_of(&translation.tables);
            let query = sql.clone();
            let aligned = ready
                .verification
                .run(move |verifier| verifier.verify_aligned(&query, &translation.code, &tables, Some(RESULT_NAME)).map(|aligned| (aligned, translation)))
                .await?
                .map_err(|error| ApiError::internal(format!("the Ibis workers failed: {error}")))?;
            let (aligned, translation) = aligned;
            let answer = aligned.program.unwrap_or(translation.code);
            let verified = matches!(aligned.verdict, Verdict::Verified(_));
            let verification = match &aligned.verdict {
                Verdict::Verified(_) => "the same results as the SQL on the fixture databases, executed through Ibis, types included".to_string(),
                Verdict::Rejected(reject) => format!("NOT verified ({}): {}", reject.reason, reject.detail),
            };
            return Ok(Json(TaskResponse {
                task: "from-sql",
                answer,
                verified,
                verification,
                origin: "transpiler",
                evidence: Some(evidence(&aligned.verdict)),
                program: None,
                attempts: 0,
                repairs: Vec::new(),
                timings: Timings::since(started, &[]),
            }));
        }
        // SQL that does not parse or names what the schema lacks is the input's fault: no
        // model could translate it faithfully.
        Err(error @ (TranspileError::Parse(_) | TranspileError::Resolve { .. })) => return Err(ApiError::unprocessable(error.to_string())),
        Err(refusal) => refusal,
    };
    if ready.generation.is_none() {
        return Err(ApiError::unprocessable(format!("the transpiler refused: {refusal} (no model to fall back on: the server runs without one)")));
    }
    if !request.fallback {
        return Err(ApiError::unprocessable(format!("the transpiler refused: {refusal} (no model fallback: `fallback` is false)")));
    }
    let tables = catalog.schemas();
    let prompt = ready.prompt(&TaskInput::SqlToIbis { sql: &sql }, &tables);
    let pool = ready.pool;
    let answered = run_model(&state, ready, &request.model, move |engine, options| {
        let mut checker = Checker::on_default_fixtures(pool);
        checked::translate_sql(engine, &mut checker, prompt, &sql, &tables, options)
    })
    .await?;
    Ok(Json(response("from-sql", "model", answered, started)))
}

pub async fn complete(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<CompleteRequest>) -> Result<Json<TaskResponse>, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let prefix = non_empty(request.code, "code")?;
    let tables = tables(request.tables.as_ref())?;
    let goal = request.goal_sql.or_else(|| goal_sql(&prefix));
    let prompt = ready.prompt(&TaskInput::CodeCompletion { partial_code: &prefix }, &tables);
    let pool = ready.pool;
    let answered = run_model(&state, ready, &request.model, move |engine, options| {
        let request = TaskRequest::Complete { prefix: &prefix, goal: goal.as_deref() };
        checked::answer_checked(engine, pool, prompt, &request, &tables, options)
    })
    .await?;
    Ok(Json(response("complete", "model", answered, started)))
}

pub async fn fix(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<FixRequest>) -> Result<Json<TaskResponse>, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let broken = non_empty(request.code, "code")?;
    let tables = tables(request.tables.as_ref())?;
    let goal = request.goal_sql.or_else(|| goal_sql(&broken));
    // Diagnosis and the error's own repairs need no model: they run beside generation.
    let pool = ready.pool;
    let (given, program, known, wanted) = (request.error, broken.clone(), tables.clone(), goal.clone());
    let found = blocking(move || -> Result<Result<CheckedAnswer, String>, OracleError> {
        let error = match given {
            Some(error) => error,
            None => match checked::diagnose(pool, &program, &known, wanted.as_deref())? {
                Diagnosis::Broken(error) => error,
                Diagnosis::AlreadyRight(why) => {
                    let answer = CheckedAnswer {
                        answer: program,
                        program: None,
                        verified: true,
                        report: why,
                        verdict: None,
                        attempts: 0,
                        repairs: Vec::new(),
                        generations: Vec::new(),
                    };
                    return Ok(Ok(answer));
                }
            },
        };
        Ok(checked::repair_from_error(pool, &program, &error, &known, wanted.as_deref())?.ok_or(error))
    })
    .await?;
    let error = match found {
        Ok(answered) => {
            let origin = if answered.repairs.is_empty() { "input" } else { "repair" };
            return Ok(Json(response("fix", origin, answered, started)));
        }
        Err(error) => error,
    };
    let input = TaskInput::ErrorResolution { broken_code: &broken, error: &error, context: request.context.as_deref() };
    let prompt = ready.prompt(&input, &tables);
    let pool = ready.pool;
    let context = request.context;
    let answered = run_model(&state, ready, &request.model, move |engine, options| {
        let request = TaskRequest::Fix { broken: &broken, error: &error, context: context.as_deref(), goal: goal.as_deref() };
        checked::answer_checked(engine, pool, prompt, &request, &tables, options)
    })
    .await?;
    Ok(Json(response("fix", "model", answered, started)))
}

pub async fn qa(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<QaRequest>) -> Result<Json<TaskResponse>, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let question = non_empty(request.question, "question")?;
    let question = match request.context {
        Some(context) => format!("{context}\n\n{}", question.trim()),
        None => question.trim().to_string(),
    };
    let tables = tables(request.tables.as_ref())?;
    let prompt = ready.prompt(&TaskInput::Qa { question: &question }, &tables);
    let pool = ready.pool;
    let answered = run_model(&state, ready, &request.model, move |engine, options| {
        checked::answer_checked(engine, pool, prompt, &TaskRequest::Qa { question: &question }, &tables, options)
    })
    .await?;
    Ok(Json(response("qa", "model", answered, started)))
}

pub async fn doc(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<DocRequest>) -> Result<Json<TaskResponse>, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let code = non_empty(request.code, "code")?;
    let style = match request.style {
        Style::Google => DocStyle::Google,
        Style::Numpy => DocStyle::Numpy,
    };
    let tables = tables(request.tables.as_ref())?;
    let prompt = ready.prompt(&TaskInput::Documentation { code: &code, style }, &tables);
    let pool = ready.pool;
    let answered = run_model(&state, ready, &request.model, move |engine, options| {
        checked::answer_checked(engine, pool, prompt, &TaskRequest::Doc { code: &code, style }, &tables, options)
    })
    .await?;
    Ok(Json(response("doc", "model", answered, started)))
}

/// Runs a checked task on the model's thread with the request's settings, under the deadline.
async fn run_model(
    state: &State,
    ready: &Ready,
    settings: &ModelSettings,
    task: impl FnOnce(&mut dyn Engine, RetryOptions) -> Result<CheckedAnswer, RetryError> + Send + 'static,
) -> Result<CheckedAnswer, ApiError> {
    let queue = ready.model()?;
    let generation = GenerationOptions {
        max_tokens: state.max_tokens(settings.max_tokens)?,
        temperature: settings.temperature.unwrap_or(state.options.generation.temperature),
        ..state.options.generation.clone()
    };
    let attempts = settings.attempts.unwrap_or(state.options.attempts).clamp(1, 8);
    let answered = queue
        .run(state.options.deadline, move |engine, cancel: &Cancel| {
            let generation = GenerationOptions { cancel: cancel.clone(), ..generation };
            task(engine, RetryOptions { attempts, generation: &generation, on_text: None })
        })
        .await?
        .map_err(|error| match error {
            RetryError::Engine(ibert_model::EngineError::Context { .. }) => ApiError::bad_request(error.to_string()),
            error => ApiError::internal(error.to_string()),
        })?;
    Ok(answered)
}

fn response(task: &'static str, origin: &'static str, answered: CheckedAnswer, started: Instant) -> TaskResponse {
    TaskResponse {
        task,
        evidence: answered.verdict.as_ref().map(evidence),
        timings: Timings::since(started, &answered.generations),
        answer: answered.answer,
        verified: answered.verified,
        verification: answered.report,
        origin,
        program: answered.program,
        attempts: answered.attempts,
        repairs: answered.repairs,
    }
}

/// The verifier's verdict as the API shows it.
pub fn evidence(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Verified(evidence) => json!({
            "fixture_rows": evidence.fixture_rows,
            "fixture_databases": evidence.fixture_seeds.len(),
            "executed_with_ibis": evidence.executed_with_ibis.len(),
            "comparison": if evidence.ordered { "ordered" } else { "multiset" },
            "compiled_sql": evidence.compiled_sql,
        }),
        Verdict::Rejected(reject) => json!({"reject_reason": reject.reason.to_string(), "detail": reject.detail}),
    }
}

fn non_empty(text: String, field: &str) -> Result<String, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(format!("`{field}` is empty")));
    }
    Ok(text)
}

fn tables(value: Option<&Value>) -> Result<TableSchemas, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(TableSchemas::new()),
        Some(value) => Catalog::from_json(value).map(|catalog| catalog.schemas()).map_err(|error| ApiError::bad_request(format!("`tables`: {error}"))),
    }
}

/// Runs oracle work on a blocking thread: the workers answer synchronously.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, OracleError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(format!("the worker thread failed: {error}")))?
        .map_err(|error| ApiError::internal(format!("the Ibis workers failed: {error}")))
}
