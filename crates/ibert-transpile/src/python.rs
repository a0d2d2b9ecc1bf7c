//! Python spelling: identifiers, string literals and attribute access that cannot clash with
//! Ibis's own `Table` methods.

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except", "finally", "for",
    "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "match",
    "case", "type",
];

/// Attributes of an Ibis `Table` (or of `_`) that a column of the same name would be shadowed by.
const TABLE_ATTRIBUTES: &[&str] = &[
    "agg",
    "aggregate",
    "alias",
    "anti_join",
    "as_scalar",
    "as_table",
    "asof_join",
    "bind",
    "cache",
    "cast",
    "columns",
    "compile",
    "count",
    "cross_join",
    "describe",
    "difference",
    "distinct",
    "drop",
    "drop_null",
    "dropna",
    "equals",
    "execute",
    "explain",
    "fill_null",
    "fillna",
    "filter",
    "get_backend",
    "get_name",
    "group_by",
    "head",
    "info",
    "inner_join",
    "intersect",
    "join",
    "left_join",
    "limit",
    "mutate",
    "name",
    "nunique",
    "op",
    "order_by",
    "outer_join",
    "pipe",
    "pivot_longer",
    "pivot_wider",
    "preview",
    "relocate",
    "rename",
    "right_join",
    "rowid",
    "sample",
    "schema",
    "select",
    "semi_join",
    "sql",
    "topk",
    "try_cast",
    "union",
    "unnest",
    "unpack",
    "value_counts",
    "view",
    "window_by",
    "to_array",
    "to_sql",
    "to_pandas",
    "to_pyarrow",
    "to_polars",
    "unique",
];

/// Attribute names the oracle's sandbox refuses (`DENIED_ATTRIBUTES` in
/// `python/ibert_worker/sandbox.py`) unless they are columns of the tables a program reads: a
/// computed column of such a name (`VALUES ... AS s(code, label)`) is reached by indexing.
const SANDBOX_DENIED_ATTRIBUTES: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "shutil",
    "importlib",
    "builtins",
    "socket",
    "ctypes",
    "pathlib",
    "io",
    "pickle",
    "marshal",
    "inspect",
    "gc",
    "types",
    "code",
    "codeop",
    "pty",
    "signal",
    "resource",
    "multiprocessing",
    "threading",
    "tempfile",
    "glob",
    "runpy",
    "site",
    "platform",
    "weakref",
    "operator",
    "functools",
    "itertools",
    "warnings",
    "traceback",
    "linecache",
    "import_object",
    "system",
    "popen",
    "spawn",
    "fork",
    "execv",
    "execve",
    "open",
    "eval",
    "exec",
    "compile",
    "remove",
    "unlink",
    "rmdir",
    "rename",
    "replace_file",
    "write",
    "write_text",
    "write_bytes",
    "read_text",
    "read_bytes",
    "mkdir",
    "chmod",
    "kill",
    "format",
    "format_map",
    "mro",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "f_code",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "tb_frame",
    "tb_next",
    "co_code",
    "func_globals",
    "func_code",
    "connect",
    "execute",
    "raw_sql",
    "set_backend",
    "get_backend",
    "load_extension",
    "attach",
    "read_csv",
    "read_parquet",
    "read_json",
    "read_delta",
    "read_xlsx",
    "read_geo",
    "to_csv",
    "to_parquet",
    "to_parquet_dir",
    "to_delta",
    "to_json",
    "to_xlsx",
    "to_pyarrow",
    "to_pyarrow_batches",
    "to_pandas",
    "to_pandas_batches",
    "to_polars",
    "to_torch",
    "to_geo",
    "register",
    "create_table",
    "create_view",
    "insert",
    "drop_table",
    "drop_view",
    "list_tables",
];

/// Names the program defines itself, which a table or variable must not take.
const RESERVED_NAMES: &[&str] = &["ibis", "_", "expr", "s", "selectors"];

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !KEYWORDS.contains(&name)
}

/// Whether `name` can be used as a keyword argument (`select(name=...)`).
pub fn is_keyword_argument(name: &str) -> bool {
    is_identifier(name) && !name.starts_with('_')
}

/// `receiver.column`, or `receiver["column"]` where the attribute would not reach the column.
pub fn attribute(receiver: &str, column: &str) -> String {
    if is_identifier(column) && !column.starts_with('_') && !TABLE_ATTRIBUTES.contains(&column) && !SANDBOX_DENIED_ATTRIBUTES.contains(&column) {
        format!("{receiver}.{column}")
    } else {
        format!("{receiver}[{}]", string(column))
    }
}

/// The column name of `receiver.column` or `receiver["column"]` code; `None` for anything else.
pub fn attribute_name(code: &str) -> Option<String> {
    let (receiver, rest) = code.split_once(['.', '['])?;
    if !is_identifier(receiver) {
        return None;
    }
    if let Some(quoted) = rest.strip_prefix('"').and_then(|r| r.strip_suffix("\"]")) {
        return (!quoted.contains(['"', '\\'])).then(|| quoted.to_string());
    }
    is_identifier(rest).then(|| rest.to_string())
}

/// A double-quoted Python string literal.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A variable name derived from `hint` that is a valid identifier and not reserved.
pub fn variable_name(hint: &str) -> String {
    let mut name: String = hint.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 't');
    }
    if !is_identifier(&name) || RESERVED_NAMES.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_fall_back_to_indexing_for_shadowed_or_odd_names() {
        assert_eq!(attribute("orders", "amount"), "orders.amount");
        assert_eq!(attribute("orders", "count"), "orders[\"count\"]");
        assert_eq!(attribute("_", "order date"), "_[\"order date\"]");
        assert_eq!(attribute("t", "class"), "t[\"class\"]");
    }

    #[test]
    fn names_the_sandbox_refuses_as_attributes_are_indexed() {
        assert_eq!(attribute("s", "code"), "s[\"code\"]");
        let sandbox = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/ibert_worker/sandbox.py")).expect("the oracle's sandbox");
        let start = sandbox.find("DENIED_ATTRIBUTES = frozenset(").expect("DENIED_ATTRIBUTES in sandbox.py");
        let end = start + sandbox[start..].find("\n    }\n)").expect("the end of DENIED_ATTRIBUTES");
        let denied: Vec<&str> =
            sandbox[start..end].lines().filter(|line| !line.trim_start().starts_with('#')).flat_map(|line| line.split('"').skip(1).step_by(2)).collect();
        assert!(denied.len() > 50, "{denied:?}");
        let missing: Vec<&&str> = denied.iter().filter(|name| !SANDBOX_DENIED_ATTRIBUTES.contains(name)).collect();
        assert!(missing.is_empty(), "attributes the sandbox refuses that python.rs would write as attributes: {missing:?}");
    }

    #[test]
    fn attribute_names_come_from_plain_references_only() {
        assert_eq!(attribute_name("inv2.d_moy").as_deref(), Some("d_moy"));
        assert_eq!(attribute_name("_[\"order date\"]").as_deref(), Some("order date"));
        assert_eq!(attribute_name("inv.x + 1"), None);
        assert_eq!(attribute_name("inv.x.abs()"), None);
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(string("it's \"x\"\\\n"), "\"it's \\\"x\\\"\\\\\\n\"");
    }

    #[test]
    fn variable_names_are_identifiers_that_do_not_shadow_the_program() {
        assert_eq!(variable_name("order-items"), "order_items");
        assert_eq!(variable_name("1st"), "t1st");
        assert_eq!(variable_name("expr"), "expr_");
        assert_eq!(variable_name("from"), "from_");
    }
}
