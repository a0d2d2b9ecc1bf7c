use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The six tasks, spelled the same on the command line, in JSONL and in HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    SqlToIbis,
    IbisToSql,
    CodeCompletion,
    ErrorResolution,
    Qa,
    Documentation,
}

impl Task {
    pub const ALL: [Task; 6] = [Task::SqlToIbis, Task::IbisToSql, Task::CodeCompletion, Task::ErrorResolution, Task::Qa, Task::Documentation];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::SqlToIbis => "sql_to_ibis",
            Task::IbisToSql => "ibis_to_sql",
            Task::CodeCompletion => "code_completion",
            Task::ErrorResolution => "error_resolution",
            Task::Qa => "qa",
            Task::Documentation => "documentation",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One training example: a line of a dataset file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub id: String,
    /// `task`, `input` and `target`, whose shapes depend on the task.
    #[serde(flatten)]
    pub payload: Payload,
    /// The SQL dialect of SQL fields (`duckdb` unless said otherwise).
    #[serde(default = "default_dialect")]
    pub dialect: String,
    /// The backend the example was verified on.
    #[serde(default = "default_dialect")]
    pub backend: String,
    #[serde(default)]
    pub ibis_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The exact prompt a model sees for this record (the system message, then the user
    /// message), rendered by the task library: training and inference read the same text. The
    /// answer a model should give is the target, rendered as the assistant's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<crate::ChatMessage>>,
    #[serde(default)]
    pub context: Context,
    #[serde(default)]
    pub meta: Meta,
    /// How the example was checked; absent on records nobody has verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

fn default_dialect() -> String {
    "duckdb".to_string()
}

impl Example {
    pub fn task(&self) -> Task {
        self.payload.task()
    }
}

/// The task-specific part of an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Payload {
    SqlToIbis { input: SqlToIbisInput, target: SqlToIbisTarget },
    IbisToSql { input: IbisToSqlInput, target: IbisToSqlTarget },
    CodeCompletion { input: CodeCompletionInput, target: CodeCompletionTarget },
    ErrorResolution { input: ErrorResolutionInput, target: ErrorResolutionTarget },
    Qa { input: QaInput, target: QaTarget },
    Documentation { input: DocumentationInput, target: DocumentationTarget },
}

impl Payload {
    pub fn task(&self) -> Task {
        match self {
            Payload::SqlToIbis { .. } => Task::SqlToIbis,
            Payload::IbisToSql { .. } => Task::IbisToSql,
            Payload::CodeCompletion { .. } => Task::CodeCompletion,
            Payload::ErrorResolution { .. } => Task::ErrorResolution,
            Payload::Qa { .. } => Task::Qa,
            Payload::Documentation { .. } => Task::Documentation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlToIbisInput {
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlToIbisTarget {
    /// Ibis code using the context's tables as Python variables named after them.
    pub ibis: String,
    /// The variable holding the result; `expr` by convention.
    #[serde(default = "default_expr_name")]
    pub expr_name: String,
}

fn default_expr_name() -> String {
    "expr".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IbisToSqlInput {
    pub ibis: String,
    pub dialect: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IbisToSqlTarget {
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeCompletionInput {
    pub partial_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeCompletionTarget {
    pub completed_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResolutionInput {
    pub broken_code: String,
    /// The error real Ibis raised, as `Type: message`.
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_info: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResolutionTarget {
    pub fixed_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaInput {
    pub question: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaTarget {
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_example: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocStyle {
    #[default]
    Google,
    Numpy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentationInput {
    pub code: String,
    #[serde(default)]
    pub style: DocStyle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentationTarget {
    pub docstring: String,
}

/// Table name -> column name -> Ibis type string (`int64`, `decimal(10, 2)`, `array<string>`),
/// columns in table order: what the oracle binds, the fixtures fill and the prompts name.
pub type TableSchemas = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// The tables an example's code refers to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub tables: BTreeMap<String, TableContext>,
}

impl Context {
    /// Table name -> ordered column schema, as the oracle and the fixtures take it.
    pub fn schemas(&self) -> TableSchemas {
        self.tables.iter().map(|(name, table)| (name.clone(), table.schema.clone())).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TableContext {
    /// Column name -> Ibis type string, in column order.
    pub schema: serde_json::Map<String, serde_json::Value>,
}

/// Where an example came from and what it exercises.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<String>,
    /// `template`, `transpiler`, `mined`, `augmented`, `user`, ...
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub features: Vec<String>,
    /// `easy`, `medium` or `hard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The id of the verified example this one was derived from (multi-task derivation,
    /// augmentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
    /// `train`, `validation` or `test`: assigned by structure, so that no test record shares
    /// its structure (template, or SQL/Ibis shape) with a train record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// The place a mined or templated example was taken from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// A path or repository URL.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The license the source's files are under (an SPDX identifier), where it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

/// How far an example was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationLevel {
    /// The code parses.
    Parsed,
    /// Real Ibis compiled it to SQL.
    Compiled,
    /// Both sides ran on every fixture database and their results matched.
    Executed,
}

/// The evidence behind an example's verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub level: VerificationLevel,
    pub ibis_version: String,
    pub duckdb_version: String,
    /// Seeds of the fixture databases both sides ran on.
    pub fixture_seeds: Vec<u64>,
    /// Rows returned on each fixture database, in seed order.
    #[serde(default)]
    pub fixture_rows: Vec<u64>,
    /// `ordered` when the query orders its rows totally, else `multiset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    /// sha256 (first 16 hex digits) of the normalized results on all fixtures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_fingerprint: Option<String>,
    /// Fixture seeds on which the Ibis expression itself was executed as a user executes it
    /// (`to_pyarrow` on an Ibis DuckDB connection) and gave the SQL's result, types included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executed_with_ibis: Vec<u64>,
    /// How the fixture data was made when not by the default generator: `targeted`, `dense`,
    /// `large` or `distinct` (data aimed at the query's filters, joins, groups or ordering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixture_profile: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE_LINE: &str = r#"{"id": "unique-id", "task": "sql_to_ibis", "dialect": "duckdb", "backend": "duckdb", "ibis_version": "9.5.0", "context": {"tables": {"events": {"schema": {"user_id": "int64", "amount": "float64"}}}}, "input": {"sql": "SELECT user_id FROM events WHERE amount > 10"}, "target": {"ibis": "events.filter(events.amount > 10)[['user_id']]", "expr_name": "expr"}, "meta": {"template": "select_where", "source": "synthetic", "features": ["select", "where", "filter"], "difficulty": "easy"}, "source_file": "data/sql2ibis/train.jsonl"}"#;

    #[test]
    fn reads_a_reference_format_line() {
        let example: Example = serde_json::from_str(REFERENCE_LINE).unwrap();
        assert_eq!(example.task(), Task::SqlToIbis);
        let Payload::SqlToIbis { input, target } = &example.payload else { panic!("wrong payload") };
        assert_eq!(input.sql, "SELECT user_id FROM events WHERE amount > 10");
        assert_eq!(target.expr_name, "expr");
        let schema = &example.context.tables["events"].schema;
        assert_eq!(schema.keys().collect::<Vec<_>>(), ["user_id", "amount"], "column order is kept");
        assert_eq!(example.meta.features, ["select", "where", "filter"]);
    }

    #[test]
    fn round_trips_every_task() {
        let payloads = [
            Payload::SqlToIbis { input: SqlToIbisInput { sql: "SELECT 1".into() }, target: SqlToIbisTarget { ibis: "t".into(), expr_name: "expr".into() } },
            Payload::IbisToSql { input: IbisToSqlInput { ibis: "t".into(), dialect: "postgres".into() }, target: IbisToSqlTarget { sql: "SELECT 1".into() } },
            Payload::CodeCompletion {
                input: CodeCompletionInput { partial_code: "t.fil".into() },
                target: CodeCompletionTarget { completed_code: "t.filter(t.a > 1)".into() },
            },
            Payload::ErrorResolution {
                input: ErrorResolutionInput { broken_code: "t.b".into(), error: "AttributeError: b".into(), context_info: None },
                target: ErrorResolutionTarget { fixed_code: "t.a".into(), explanation: Some("no column b".into()) },
            },
            Payload::Qa { input: QaInput { question: "What is Ibis?".into() }, target: QaTarget { answer: "A dataframe library".into(), code_example: None } },
            Payload::Documentation {
                input: DocumentationInput { code: "def f(t): ...".into(), style: DocStyle::Numpy },
                target: DocumentationTarget { docstring: "Does f.".into() },
            },
        ];
        for payload in payloads {
            let example = Example {
                id: "x".into(),
                payload,
                dialect: "duckdb".into(),
                backend: "duckdb".into(),
                ibis_version: "12.0.0".into(),
                system_prompt: None,
                messages: None,
                context: Context::default(),
                meta: Meta::default(),
                verification: None,
            };
            let line = serde_json::to_string(&example).unwrap();
            let back: Example = serde_json::from_str(&line).unwrap();
            assert_eq!(back, example, "{line}");
            assert!(line.contains(&format!("\"task\":\"{}\"", example.task())), "{line}");
        }
    }

    #[test]
    fn unknown_task_is_an_error_naming_it() {
        let line = r#"{"id": "a", "task": "poetry", "input": {}, "target": {}}"#;
        let error = serde_json::from_str::<Example>(line).unwrap_err().to_string();
        assert!(error.contains("poetry"), "{error}");
    }
}
