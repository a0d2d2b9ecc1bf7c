//! Deterministic SQL -> Ibis translation.
//!
//! The SQL is parsed with `sqlparser`, every name is resolved against a [`Catalog`] of table
//! schemas, and an Ibis 12 program is emitted: one statement per CTE, derived table or self-join
//! view, and a final `expr = ...` method chain. Anything the translator cannot express exactly is
//! refused with a [`TranspileError`] naming the construct and where it is in the SQL: a wrong
//! translation is worse than none, and every translation is still checked by the verifier.

mod asof_join;
mod ast;
mod catalog;
mod chain;
mod comparison_arguments;
pub mod corpus;
mod dialect_hints;
mod error;
mod expr;
mod field_parentheses;
mod filter_context;
mod functions;
mod lateral_unnest;
mod named_windows;
mod order_by_all;
mod pivot_statement;
mod python;
mod query;
mod scope;
mod sql_text;
mod types;

pub use catalog::{Catalog, CatalogError, TableDef};
pub use error::TranspileError;

use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, DuckDbDialect, GenericDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// The name of the variable that holds the result in every emitted program.
pub const RESULT_NAME: &str = "expr";

/// SQL dialects the front end parses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqlDialect {
    #[default]
    DuckDb,
    Postgres,
    Generic,
}

impl SqlDialect {
    pub const NAMES: [&'static str; 3] = ["duckdb", "postgres", "generic"];

    pub fn from_name(name: &str) -> Option<SqlDialect> {
        match name.to_ascii_lowercase().as_str() {
            "duckdb" => Some(SqlDialect::DuckDb),
            "postgres" | "postgresql" => Some(SqlDialect::Postgres),
            "generic" | "ansi" => Some(SqlDialect::Generic),
            _ => None,
        }
    }

    fn parser_dialect(self) -> Box<dyn Dialect> {
        match self {
            SqlDialect::DuckDb => Box::new(DuckDbDialect {}),
            SqlDialect::Postgres => Box::new(PostgreSqlDialect {}),
            SqlDialect::Generic => Box::new(GenericDialect {}),
        }
    }
}

/// An Ibis program equivalent to one SQL query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Python source; the tables are free variables named after them, the result is [`RESULT_NAME`].
    pub code: String,
    /// The catalog tables the program reads, in order of first use.
    pub tables: Vec<String>,
}

/// Translates one SQL query into an Ibis program over the tables of `catalog`.
pub fn transpile(sql: &str, catalog: &Catalog, dialect: SqlDialect) -> Result<Translation, TranspileError> {
    let (named, generic) = (dialect, dialect == SqlDialect::Generic);
    let dialect = dialect.parser_dialect();
    if !generic && let Some(refusal) = dialect_hints::foreign_quotes(sql, dialect.as_ref()) {
        return Err(refusal);
    }
    let (sql, asof_tables) = asof_join::blank_keywords(sql, dialect.as_ref());
    let statements = match pivot_statement::parse(&sql, dialect.as_ref()) {
        Some(query) => vec![Statement::Query(Box::new(query?))],
        None => match Parser::parse_sql(dialect.as_ref(), &sql) {
            Ok(statements) => statements,
            Err(error) => field_parentheses::unwrap_field_parentheses(&sql, dialect.as_ref())
                .and_then(|unwrapped| Parser::parse_sql(dialect.as_ref(), &unwrapped).ok())
                .ok_or_else(|| TranspileError::Parse(with_hint(error.to_string(), dialect_hints::parse_hint(&sql, named))))?,
        },
    };
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err(TranspileError::Parse("the input holds no SQL statement".into())),
        [_, second, ..] => {
            return Err(TranspileError::unsupported_at("a second statement (only one query is translated)", second));
        }
    };
    let Statement::Query(query) = statement else {
        return Err(TranspileError::unsupported_at(&format!("the statement `{}`", statement_keyword(statement)), statement));
    };
    let mut query = query.clone();
    order_by_all::expand(&mut query);
    lateral_unnest::fold_into_sources(&mut query, dialect.as_ref());
    comparison_arguments::restore(&mut query);
    query::translate(&query, catalog, asof_tables)
}

/// The message with a rewrite appended, where one is known.
fn with_hint(message: String, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{message} (hint: {hint})"),
        None => message,
    }
}

fn statement_keyword(statement: &Statement) -> String {
    statement.to_string().split_whitespace().next().unwrap_or_default().to_ascii_uppercase()
}
