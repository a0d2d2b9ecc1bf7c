//! Running the code of an answer that names no schema (`qa`, `doc`): the tables it uses and their
//! columns are inferred from what real Ibis says of the code, one error at a time, until it
//! compiles or fails for a reason a schema cannot mend.
//!
//! The sandbox names a free variable (`name `orders` is not allowed`): it becomes a table with no
//! columns. Ibis names a missing column (`'Table' object has no attribute 'amount'`, `Column
//! 'amount' is not found`): it is added, as int64. A method that column's type lacks
//! (`'IntegerColumn' object has no attribute 'upper'`) or a comparison with a literal of another
//! type retypes it. What is left is a real error of the code: a method no Ibis object has
//! (`t.order_by('x').desc()`), a wrong argument, a syntax error.

use ibert_oracle::protocol::TableSchemas;
use ibert_oracle::{OracleError, WorkerPool};

use crate::check::compile_to;

/// How many errors the inference reads before it gives up on a snippet.
const MAX_ROUNDS: usize = 24;

/// The code of an answer, run through Ibis against the tables inferred for it.
#[derive(Debug, Clone)]
pub struct SnippetRun {
    pub tables: TableSchemas,
    /// The DuckDB SQL Ibis compiles the code to, or its last error (`Type: message`).
    pub compiled: Result<String, String>,
}

impl SnippetRun {
    /// The inferred tables as `orders(id int64, status string)`, for reports.
    pub fn describe_tables(&self) -> String {
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|(name, columns)| {
                let columns: Vec<String> = columns.iter().map(|(column, kind)| format!("{column} {}", kind.as_str().unwrap_or("?"))).collect();
                format!("{name}({})", columns.join(", "))
            })
            .collect();
        if tables.is_empty() { "no tables".to_string() } else { tables.join(", ") }
    }
}

/// Compiles `code` with real Ibis, inferring the tables it uses (starting from `known`).
pub fn run_snippet(pool: &WorkerPool, code: &str, known: &TableSchemas) -> Result<SnippetRun, OracleError> {
    let mut tables = known.clone();
    let mut compiled = compile_to(pool, code, &tables, "duckdb")?;
    for _ in 0..MAX_ROUNDS {
        let Err(error) = &compiled else { break };
        if !infer_from_error(code, error, known, &mut tables) {
            break;
        }
        compiled = compile_to(pool, code, &tables, "duckdb")?;
    }
    Ok(SnippetRun { tables, compiled })
}

/// The Python code blocks of an answer (```python or unlabelled fences), in order.
pub fn python_blocks(answer: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = answer;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let (label, body) = after.split_once('\n').unwrap_or((after, ""));
        let end = body.find("```").unwrap_or(body.len());
        let label = label.trim().to_ascii_lowercase();
        if matches!(label.as_str(), "" | "python" | "py" | "python3") && !body[..end].trim().is_empty() {
            blocks.push(body[..end].trim_end().to_string() + "\n");
        }
        rest = body.get(end + 3..).unwrap_or("");
    }
    blocks
}

/// The `>>>` examples of a docstring as one program (continuation lines `...` included).
pub fn doctest_code(docstring: &str) -> Option<String> {
    let lines: Vec<&str> = docstring
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            line.strip_prefix(">>> ").or_else(|| line.strip_prefix("... ")).or_else(|| (line == ">>>" || line == "...").then_some(""))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n") + "\n")
}

/// Changes `tables` as `error` (raised by `code`) asks, leaving the `known` tables as they are;
/// false when the error is not one a schema mends.
fn infer_from_error(code: &str, error: &str, known: &TableSchemas, tables: &mut TableSchemas) -> bool {
    let mut inferred: TableSchemas =
        tables.iter().filter(|(name, _)| !known.contains_key(*name)).map(|(name, columns)| (name.clone(), columns.clone())).collect();
    let changed = infer_into(code, error, tables, &mut inferred);
    tables.extend(inferred);
    changed
}

/// [`infer_from_error`] on the `inferred` tables; `all` holds every table, known ones too.
fn infer_into(code: &str, error: &str, all: &TableSchemas, tables: &mut TableSchemas) -> bool {
    if let Some(name) = quoted_after(error, "name `", '`').or_else(|| quoted_after(error, "NameError: name '", '\'')) {
        // Dunder names (`__builtins__`, `__import__`) are Python's own, never a table to bind.
        if !is_identifier(&name) || name.starts_with("__") || all.contains_key(&name) {
            return false;
        }
        tables.insert(name, serde_json::Map::new());
        return true;
    }
    if let Some(column) = quoted_after(error, "'Table' object has no attribute '", '\'').or_else(|| quoted_after(error, "Column '", '\'')) {
        return add_column(code, &column, tables);
    }
    if let Some(method) =
        quoted_after(error, "Column' object has no attribute '", '\'').or_else(|| quoted_after(error, "Scalar' object has no attribute '", '\''))
    {
        return retype_for_method(code, &method, tables);
    }
    if let Some((column, kind)) = incomparable_literal(error) {
        return set_type(tables, &column, &kind);
    }
    false
}

/// Adds `column` (int64) to the table the code reads it from (`t.column`, `t["column"]`), else to
/// every table that lacks it; a name the code calls (`t.column(`) is a method, not a column.
fn add_column(code: &str, column: &str, tables: &mut TableSchemas) -> bool {
    if !is_identifier(column) || code.contains(&format!(".{column}(")) {
        return false;
    }
    let read_from = |table: &str| {
        [format!("{table}.{column}"), format!("{table}[\"{column}\"]"), format!("{table}['{column}']")].iter().any(|pattern| code.contains(pattern.as_str()))
    };
    let mut targets: Vec<String> = tables.keys().filter(|table| read_from(table)).cloned().collect();
    if targets.is_empty() {
        targets = tables.iter().filter(|(_, columns)| !columns.contains_key(column)).map(|(table, _)| table.clone()).collect();
    }
    let mut added = false;
    for table in targets {
        let columns = tables.get_mut(&table).expect("a table of the map");
        if !columns.contains_key(column) {
            columns.insert(column.to_string(), "int64".into());
            added = true;
        }
    }
    added
}

/// The type a method asks of the column it is called on, for the common families.
fn type_for_method(method: &str) -> Option<&'static str> {
    const STRING: &[&str] = &[
        "upper",
        "lower",
        "contains",
        "like",
        "ilike",
        "startswith",
        "endswith",
        "strip",
        "lstrip",
        "rstrip",
        "replace",
        "split",
        "re_search",
        "re_extract",
        "re_replace",
        "re_split",
        "substr",
        "find",
        "lpad",
        "rpad",
        "capitalize",
        "concat",
        "left",
        "right",
        "reverse",
        "translate",
        "to_date",
        "to_timestamp",
        "initcap",
        "ascii_str",
        "levenshtein",
        "rfind",
        "repeat",
    ];
    const TEMPORAL: &[&str] = &[
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "millisecond",
        "date",
        "time",
        "truncate",
        "strftime",
        "epoch_seconds",
        "day_of_week",
        "day_of_year",
        "quarter",
        "week_of_year",
        "delta",
        "bucket",
        "epoch_days",
    ];
    const ARRAY: &[&str] = &["unnest", "sums", "means", "maxs", "mins", "modes", "flatten", "index", "sort", "unique", "contains_any", "filter", "map", "join"];
    if STRING.contains(&method) {
        Some("string")
    } else if TEMPORAL.contains(&method) {
        Some("timestamp")
    } else if ARRAY.contains(&method) {
        Some("array<int64>")
    } else {
        None
    }
}

/// Retypes the column the code calls `method` on (`t.name.upper()`, `_["name"].upper()`).
fn retype_for_method(code: &str, method: &str, tables: &mut TableSchemas) -> bool {
    let Some(kind) = type_for_method(method) else { return false };
    let called_on = |column: &str| {
        [
            format!(".{column}.{method}"),
            format!("[\"{column}\"].{method}"),
            format!("['{column}'].{method}"),
            format!("(\"{column}\").{method}"),
            format!("('{column}').{method}"),
        ]
        .iter()
        .any(|pattern| code.contains(pattern.as_str()))
    };
    let columns: Vec<String> = tables.values().flat_map(|columns| columns.keys()).filter(|column| called_on(column)).cloned().collect();
    columns.iter().fold(false, |changed, column| set_type(tables, column, kind) | changed)
}

/// `Arguments amount:int64 and Literal(a):string are not comparable` (either order): the column
/// and the literal's type.
fn incomparable_literal(error: &str) -> Option<(String, String)> {
    let rest = error.split_once("Arguments ")?.1;
    let (left, right) = rest.split_once(" are not comparable")?.0.split_once(" and ")?;
    let (column, literal) = if left.starts_with("Literal(") { (right, left) } else { (left, right) };
    let (column, _) = column.rsplit_once(':')?;
    let (_, kind) = literal.strip_prefix("Literal(")?.rsplit_once(':')?;
    let kind = match kind {
        "string" | "date" | "timestamp" | "float64" | "boolean" | "time" => kind,
        kind if kind.starts_with("decimal") || kind.starts_with("float") => "float64",
        kind if kind.starts_with("timestamp") => "timestamp",
        _ => return None,
    };
    Some((column.to_string(), kind.to_string()))
}

/// Sets `column`'s type wherever it is a column; true when something changed.
fn set_type(tables: &mut TableSchemas, column: &str, kind: &str) -> bool {
    let mut changed = false;
    for columns in tables.values_mut() {
        if let Some(current) = columns.get_mut(column)
            && current.as_str() != Some(kind)
        {
            *current = kind.into();
            changed = true;
        }
    }
    changed
}

fn quoted_after(text: &str, opening: &str, closing: char) -> Option<String> {
    let rest = text.split_once(opening)?.1;
    Some(rest[..rest.find(closing)?].to_string())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(code: &str, errors: &[&str]) -> TableSchemas {
        let mut tables = TableSchemas::new();
        for error in errors {
            assert!(infer_from_error(code, error, &TableSchemas::new(), &mut tables), "{error}");
        }
        tables
    }

    fn columns(tables: &TableSchemas, table: &str) -> Vec<(String, String)> {
        tables[table].iter().map(|(column, kind)| (column.clone(), kind.as_str().unwrap().to_string())).collect()
    }

    #[test]
    fn free_names_become_tables_and_what_the_code_reads_becomes_their_columns() {
        let code = "expr = orders.filter(orders.status == 'paid').order_by(ibis.desc('amount'))";
        let tables = infer(
            code,
            &[
                "SandboxViolation: name `orders` is not allowed: only bound tables, `ibis`, `_`",
                "AttributeError: 'Table' object has no attribute 'status'",
                "IbisTypeError: Arguments status:int64 and Literal(paid):string are not comparable",
                "IbisTypeError: Column 'amount' is not found in table. Existing columns: 'status'.",
            ],
        );
        assert_eq!(columns(&tables, "orders"), [("status".to_string(), "string".to_string()), ("amount".to_string(), "int64".to_string())]);
    }

    #[test]
    fn a_method_retypes_the_column_it_is_called_on_and_only_that_one() {
        let code = "expr = users.select(users.id, users.name.upper(), y=users.signup.year())";
        let mut tables = infer(code, &["NameError: name 'users' is not defined"]);
        for column in ["id", "name", "signup"] {
            assert!(infer_from_error(code, &format!("AttributeError: 'Table' object has no attribute '{column}'"), &TableSchemas::new(), &mut tables));
        }
        assert!(infer_from_error(code, "AttributeError: 'IntegerColumn' object has no attribute 'upper'", &TableSchemas::new(), &mut tables));
        assert!(infer_from_error(code, "AttributeError: 'IntegerColumn' object has no attribute 'year'", &TableSchemas::new(), &mut tables));
        let kinds: Vec<String> = columns(&tables, "users").into_iter().map(|(column, kind)| format!("{column} {kind}")).collect();
        assert_eq!(kinds, ["id int64", "name string", "signup timestamp"]);
    }

    #[test]
    fn errors_no_schema_mends_stop_the_inference() {
        let code = "expr = t.order_by('x').desc()";
        let mut tables = infer(code, &["SandboxViolation: name `t` is not allowed"]);
        // `desc` is called: a method Table lacks, not a column to invent.
        assert!(!infer_from_error(code, "AttributeError: 'Table' object has no attribute 'desc'", &TableSchemas::new(), &mut tables));
        assert!(!infer_from_error(code, "SyntaxError: invalid syntax", &TableSchemas::new(), &mut tables));
        assert!(!infer_from_error(code, "SandboxViolation: name `t` is not allowed", &TableSchemas::new(), &mut tables), "a table is added once");
        for name in ["__builtins__", "__import__"] {
            assert!(!infer_from_error(code, &format!("SandboxViolation: name `{name}` is not allowed"), &TableSchemas::new(), &mut tables), "{name}");
        }
        assert!(!infer_from_error(
            "t.x.frobnicate()",
            "AttributeError: 'IntegerColumn' object has no attribute 'frobnicate'",
            &TableSchemas::new(),
            &mut tables
        ));
    }

    #[test]
    fn tables_given_by_the_user_are_never_changed() {
        let known: TableSchemas = serde_json::from_value(serde_json::json!({"orders": {"id": "int64"}})).unwrap();
        let mut tables = known.clone();
        let code = "expr = orders.select(orders.amount, orders.id.upper())";
        assert!(!infer_from_error(code, "AttributeError: 'Table' object has no attribute 'amount'", &known, &mut tables));
        assert!(!infer_from_error(code, "AttributeError: 'IntegerColumn' object has no attribute 'upper'", &known, &mut tables));
        assert_eq!(tables, known);
    }

    #[test]
    fn a_column_goes_to_the_table_the_code_reads_it_from() {
        let code = "expr = a.join(b, a.id == b.a_id).select(b['total'])";
        let mut tables = infer(code, &["name `a` is not allowed", "name `b` is not allowed"]);
        assert!(infer_from_error(code, "AttributeError: 'Table' object has no attribute 'a_id'", &TableSchemas::new(), &mut tables));
        assert!(infer_from_error(code, "IbisTypeError: Column 'total' is not found in table", &TableSchemas::new(), &mut tables));
        assert!(tables["a"].is_empty());
        assert_eq!(tables["b"].keys().collect::<Vec<_>>(), ["a_id", "total"]);
    }

    #[test]
    fn code_is_read_from_python_fences_and_doctest_lines() {
        let answer = "Sort it:\n```python\nexpr = t.order_by(ibis.desc('x'))\n```\nOr in SQL:\n```sql\nSELECT 1\n```\n```\nexpr = t.limit(1)\n```";
        assert_eq!(python_blocks(answer), ["expr = t.order_by(ibis.desc('x'))\n", "expr = t.limit(1)\n"]);
        assert!(python_blocks("no code at all").is_empty());
        let docstring = "Top rows.\n\nExamples:\n    >>> expr = top(t,\n    ...     3)\n    >>> expr.count()\n    3\n";
        assert_eq!(doctest_code(docstring).unwrap(), "expr = top(t,\n    3)\nexpr.count()\n");
        assert_eq!(doctest_code("Returns the rows."), None);
    }
}
