//! What to write instead of a construct from another SQL dialect (SQL Server's `TOP`, MySQL's
//! backticks, Oracle's `NVL`), added to the parse error or refusal it causes.

use crate::SqlDialect;
use crate::error::TranspileError;
use sqlparser::dialect::{Dialect, GenericDialect};
use sqlparser::tokenizer::{Token, Tokenizer};

/// Backtick-quoted names in a dialect that has none (DuckDB, PostgreSQL): refused where they
/// stand, before the parser reads them as something else.
pub(crate) fn foreign_quotes(sql: &str, dialect: &dyn Dialect) -> Option<TranspileError> {
    if !sql.contains('`') {
        return None;
    }
    let tokens = Tokenizer::new(dialect, sql).tokenize_with_location().ok()?;
    let backtick = tokens.iter().find(|t| match &t.token {
        Token::Char('`') => true,
        Token::Word(word) => word.quote_style == Some('`'),
        _ => false,
    })?;
    let at = backtick.span.start;
    Some(TranspileError::Unsupported {
        construct: "a backtick-quoted name (MySQL's and BigQuery's quoting; quote names with double quotes: \"order\")".into(),
        line: at.line,
        column: at.column,
    })
}

/// A rewrite for the first construct of another dialect in `sql`, if it has one; read as
/// PostgreSQL, DuckDB's own clauses get `--dialect duckdb`.
pub(crate) fn parse_hint(sql: &str, dialect: SqlDialect) -> Option<String> {
    if sql.contains('`') {
        return Some("backtick-quoted names are MySQL's and BigQuery's; quote names with double quotes (\"order\")".into());
    }
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(word) => word.value.to_ascii_uppercase(),
            other => other.to_string(),
        })
        .collect();
    for (index, word) in words.iter().enumerate() {
        let next = words.get(index + 1).map(String::as_str);
        let duckdb_only = match (word.as_str(), next) {
            ("QUALIFY" | "EXCLUDE" | "PIVOT" | "UNPIVOT" | "ASOF", _) => Some(word.clone()),
            ("BY", Some("ALL")) => Some("GROUP BY ALL / ORDER BY ALL".into()),
            _ => None,
        };
        if let (Some(clause), SqlDialect::Postgres) = (duckdb_only, dialect) {
            return Some(format!("{clause} is DuckDB's, not PostgreSQL's: pass --dialect duckdb"));
        }
        match (word.as_str(), next) {
            ("SELECT", Some("TOP")) => return Some("SELECT TOP n is SQL Server's; end the query with LIMIT n".into()),
            ("ROWNUM", _) => return Some("ROWNUM is Oracle's; end the query with LIMIT n".into()),
            ("[", _) if next.is_some_and(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_')) && words.get(index + 2).is_some_and(|w| w == "]") => {
                return Some("bracket-quoted names are SQL Server's; quote names with double quotes (\"order\")".into());
            }
            _ => {}
        }
        if next == Some("(")
            && let Some(rewrite) = function_rewrite(&word.to_ascii_lowercase())
        {
            return Some(rewrite.into());
        }
    }
    None
}

/// The standard or DuckDB spelling of another dialect's function.
pub(crate) fn function_rewrite(name: &str) -> Option<&'static str> {
    Some(match name {
        "isnull" | "nvl" => "write COALESCE(x, y)",
        "nvl2" => "write CASE WHEN x IS NOT NULL THEN y ELSE z END",
        "decode" => "Oracle's DECODE is a CASE: write CASE x WHEN a THEN b ... END",
        "dateadd" | "date_add_days" => "add an interval: d + INTERVAL '3 days'",
        "getdate" | "sysdate" | "sysdatetime" | "curdate" => "write CURRENT_DATE or now() (a translation that reads the clock is not reproducible)",
        "convert" => "write CAST(x AS type) or x::type",
        "charindex" => "write strpos(s, sub)",
        "datepart" => "write EXTRACT(part FROM d) or date_part('part', d)",
        "to_char" => "write strftime(d, '%Y-%m') for dates",
        "iif" => "write CASE WHEN c THEN a ELSE b END",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructs_of_other_dialects_get_their_rewrite() {
        assert!(parse_hint("SELECT TOP 5 name FROM t", SqlDialect::DuckDb).unwrap().contains("LIMIT n"));
        assert!(parse_hint("SELECT `order` FROM t", SqlDialect::DuckDb).unwrap().contains("double quotes"));
        assert!(parse_hint("SELECT [name] FROM t", SqlDialect::DuckDb).unwrap().contains("SQL Server"));
        assert!(parse_hint("SELECT NVL(a, 0) FROM t", SqlDialect::Postgres).unwrap().contains("COALESCE"));
        assert_eq!(parse_hint("SELECT a, b FROM t WHERE a IN (1, 2) ORDER BY a LIMIT 3", SqlDialect::Postgres), None);
        let qualify = "SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a) = 1";
        assert!(parse_hint(qualify, SqlDialect::Postgres).unwrap().contains("--dialect duckdb"));
        assert_eq!(parse_hint(qualify, SqlDialect::DuckDb), None);
    }
}
