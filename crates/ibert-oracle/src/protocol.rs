//! Messages between the Rust side and a worker: one JSON object per line each way.
//! Documented message by message in `docs/oracle-protocol.md`.

use serde::{Deserialize, Serialize};

pub use ibert_records::TableSchemas;

/// Compile an Ibis program against unbound tables to SQL in one dialect.
#[derive(Debug, Clone, Serialize)]
pub struct CompileRequest {
    /// Python source; its result is `expr_name`, else `expr`, else the last expression statement.
    pub code: String,
    /// Tables bound as Python variables of the same name.
    pub tables: TableSchemas,
    /// Any dialect Ibis offers (`duckdb`, `postgres`, `snowflake`, ...).
    pub dialect: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expr_name: Option<String>,
}

/// Execute a program's expression as a user does (`to_pyarrow` on an Ibis DuckDB connection),
/// on each dataset in turn.
#[derive(Debug, Clone, Serialize)]
pub struct ExecuteRequest {
    pub code: String,
    pub tables: TableSchemas,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expr_name: Option<String>,
    pub datasets: Vec<Dataset>,
}

/// Data a worker executes on: generated rows (the SQL that creates them, run once per worker
/// and kept under `key`), or the schema of a database attached when the worker started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    /// Letters, digits and `_`; the same key always means the same data.
    pub key: String,
    /// `CREATE TABLE` and `INSERT` statements with unqualified table names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_sql: Option<String>,
    /// `catalog.schema` of an attached database (see [`crate::WorkerOptions::attach`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

/// The results of an executed expression: one Arrow IPC stream per dataset, as Ibis returned
/// it (cast to the expression's schema), and that schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Executed {
    /// Base64 of each result's Arrow IPC stream, in the order of the datasets.
    pub results: Vec<String>,
    /// The expression's output columns (name, Ibis type).
    pub columns: Vec<(String, String)>,
}

/// What mining needs from a Python file, read by Python's own parser without running it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Outline {
    pub functions: Vec<DocumentedFunction>,
    /// String literals passed to a `.sql(...)` call.
    pub sql_calls: Vec<SqlCall>,
}

/// A function or method with a docstring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentedFunction {
    pub name: String,
    /// `Class.method` for methods.
    pub qualname: String,
    /// 1-based line of the `def`.
    pub line: u32,
    pub args: Vec<String>,
    /// Whether the function has a return annotation.
    pub returns: bool,
    /// The docstring, cleaned of its indentation.
    pub docstring: String,
    /// The function's source (with decorators) without the docstring, dedented.
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlCall {
    pub sql: String,
    pub line: u32,
}

/// The first line a worker writes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct WorkerHello {
    pub ibis: String,
    pub sqlglot: String,
    pub python: String,
    /// `on`, or `off: <why>`.
    pub seccomp: String,
    pub pid: u32,
}

/// What real Ibis produced for a program that compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compiled {
    pub sql: String,
    /// `Table`, `IntegerColumn`, `FloatingScalar`, ...
    pub expr_type: String,
    /// Output columns (name, Ibis type) when the result is a table.
    #[serde(default)]
    pub columns: Option<Vec<(String, String)>>,
    /// The schema Ibis casts a result to when it is executed: (name, Ibis type) of each output
    /// column, one for a column or scalar expression.
    #[serde(default)]
    pub output_types: Vec<(String, String)>,
}

/// Why a program did not compile: the real exception type and message where Ibis raised one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {error_type}: {message}")]
pub struct ProgramFailure {
    pub kind: FailureKind,
    /// The Python exception class name (`AttributeError`, `IbisTypeError`, `SandboxViolation`).
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
    /// 1-based line in the program, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The program does not parse.
    Syntax,
    /// The allow-list refused the program.
    Sandbox,
    /// Ibis (or Python while building the expression) raised an exception.
    Ibis,
    /// A table schema could not be turned into an Ibis table.
    Schema,
    /// The program ran but its result is not an Ibis expression.
    Result,
    /// The expression failed when executed (`to_pyarrow`), as it would for a user.
    Execute,
    /// A memory or CPU limit stopped the program.
    Resource,
    /// The program ran past the per-request timeout; the worker was restarted.
    Timeout,
    /// The worker died while running the program; it was restarted.
    Crashed,
    /// The request itself was malformed.
    Protocol,
    /// A bug in the worker.
    Internal,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Syntax => "syntax",
            FailureKind::Sandbox => "sandbox",
            FailureKind::Ibis => "ibis",
            FailureKind::Schema => "schema",
            FailureKind::Result => "result",
            FailureKind::Execute => "execute",
            FailureKind::Resource => "resource",
            FailureKind::Timeout => "timeout",
            FailureKind::Crashed => "crashed",
            FailureKind::Protocol => "protocol",
            FailureKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A worker's answer to one request, before it is split into success and failure.
#[derive(Debug, Deserialize)]
pub(crate) struct RawResponse {
    pub id: Option<u64>,
    /// Echo of the request's nonce, which the program under test never sees.
    #[serde(default)]
    pub nonce: Option<u64>,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<ProgramFailure>,
    #[serde(flatten)]
    pub body: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_response_parses_with_the_python_field_names() {
        let line = r#"{"id": 4, "ok": false, "error": {"kind": "ibis", "type": "AttributeError", "message": "no", "line": 2}}"#;
        let raw: RawResponse = serde_json::from_str(line).unwrap();
        let failure = raw.error.unwrap();
        assert_eq!(failure.kind, FailureKind::Ibis);
        assert_eq!(failure.error_type, "AttributeError");
        assert_eq!(failure.line, Some(2));
    }

    #[test]
    fn compile_request_omits_absent_expr_name() {
        let request = CompileRequest { code: "t".into(), tables: TableSchemas::new(), dialect: "duckdb".into(), expr_name: None };
        let json = serde_json::to_string(&request).unwrap();
        assert!(!json.contains("expr_name"), "{json}");
    }
}
