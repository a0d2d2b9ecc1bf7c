//! Query blocks, and the translator that holds the program being written: CTEs, the query
//! body (a SELECT or a set operation), ORDER BY and LIMIT, each emitted as a method chain bound
//! to a variable where later statements refer to it.

mod aggregate;
mod from;
mod grouping_sets;
mod join;
mod order;
mod pivot;
mod rows;
mod select;
mod set_operation;

use crate::catalog::Catalog;
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::python;
use crate::scope::{Column, Scope};
use crate::{RESULT_NAME, Translation};
use sqlparser::ast::{Ident, Query, SetExpr};
use sqlparser::tokenizer::Location;
use std::collections::HashSet;

pub(crate) use order::{ascending, sort_key};
use select::{Output, select_arguments};

/// A translated relation: its chain and its output columns.
pub(crate) struct Rel {
    pub chain: Chain,
    pub columns: Vec<Column>,
}

struct CteDef {
    name: String,
    var: String,
    columns: Vec<Column>,
}

/// The program being written: its statements so far, the variable names they take, the
/// catalog tables read, and the CTEs in scope.
pub(crate) struct Translator<'c> {
    catalog: &'c Catalog,
    statements: Vec<String>,
    variables: HashSet<String>,
    tables: Vec<String>,
    ctes: Vec<CteDef>,
    /// Where the tables of DuckDB `ASOF` joins start in the SQL, and whether each was met.
    asof_tables: Vec<(Location, bool)>,
    /// The rows an aggregation reads are a filter or join of a table rather than the table (or
    /// a variable) itself: `t.count(where=...)` then refers to rows Ibis 12 does not rebind.
    pub(crate) aggregating_built_rows: bool,
    /// Where the `x = ANY (list)` comparisons start that only decide whether a row is kept.
    pub(crate) filtering: HashSet<Location>,
}

pub(crate) fn translate(query: &Query, catalog: &Catalog, asof_tables: Vec<Location>) -> Result<Translation, TranspileError> {
    let mut translator = Translator {
        catalog,
        statements: Vec::new(),
        variables: catalog.tables().iter().map(|t| t.name.clone()).collect(),
        tables: Vec::new(),
        ctes: Vec::new(),
        asof_tables: asof_tables.into_iter().map(|at| (at, false)).collect(),
        aggregating_built_rows: false,
        filtering: crate::filter_context::filtering_comparisons(query),
    };
    translator.variables.insert(RESULT_NAME.to_string());
    let root = Scope::default();
    let rel = translator.query(query, &root)?;
    if let Some((at, _)) = translator.asof_tables.iter().find(|(_, met)| !met) {
        // The join's right side is not a plain table (its position is not where the table starts).
        return Err(TranspileError::Unsupported { construct: "ASOF JOIN of anything but a table".into(), line: at.line, column: at.column });
    }
    translator.statements.push(rel.chain.assignment(RESULT_NAME));
    let mut code = translator.statements.join("\n");
    code.push('\n');
    Ok(Translation { code, tables: translator.tables })
}

impl<'c> Translator<'c> {
    fn fresh_variable(&mut self, hint: &str) -> String {
        let base = python::variable_name(hint);
        let mut name = base.clone();
        let mut n = 2;
        while self.variables.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.variables.insert(name.clone());
        name
    }

    /// Whether the program already uses `name` for a table or a variable.
    pub(crate) fn is_variable(&self, name: &str) -> bool {
        self.variables.contains(name)
    }

    /// Binds a relation to a new variable, as its own statement.
    pub(crate) fn bind(&mut self, hint: &str, chain: &Chain) -> String {
        let var = self.fresh_variable(hint);
        self.statements.push(chain.assignment(&var));
        var
    }

    pub(crate) fn query(&mut self, query: &Query, outer: &Scope) -> Result<Rel, TranspileError> {
        let as_limit = fetch_as_limit(query);
        let query = as_limit.as_ref().unwrap_or(query);
        if query.fetch.is_some() || !query.locks.is_empty() || query.for_clause.is_some() || !query.pipe_operators.is_empty() {
            return Err(TranspileError::unsupported_at("FETCH, FOR, locking or pipe clauses", query));
        }
        let ctes_before = self.ctes.len();
        if let Some(with) = &query.with {
            if with.recursive {
                return Err(TranspileError::unsupported_at("WITH RECURSIVE", query));
            }
            for cte in &with.cte_tables {
                // A CTE sees the CTEs before it, never the enclosing query's columns.
                let root = Scope::default();
                let mut rel = self.query(&cte.query, &root)?;
                if !cte.alias.columns.is_empty() {
                    rel = rename_columns(rel, &cte.alias.columns.iter().map(|c| c.name.value.clone()).collect::<Vec<_>>(), &cte.alias.name)?;
                }
                let var = self.bind(&cte.alias.name.value, &rel.chain);
                self.ctes.push(CteDef { name: cte.alias.name.value.clone(), var, columns: rel.columns });
            }
        }
        let result = match query.body.as_ref() {
            SetExpr::Select(select) => self.select(select, query.order_by.as_ref(), query.limit_clause.as_ref(), outer),
            body => {
                let rel = self.set_expr(body, outer)?;
                self.order_and_limit_outputs(rel, query.order_by.as_ref(), query.limit_clause.as_ref())
            }
        };
        self.ctes.truncate(ctes_before);
        result
    }
}

pub(super) fn rename_columns(rel: Rel, names: &[String], at: &Ident) -> Result<Rel, TranspileError> {
    if names.len() != rel.columns.len() {
        return Err(TranspileError::resolve_in(format!("{} column names given for {} columns", names.len(), rel.columns.len()), at.span));
    }
    let values: Vec<Output> = names
        .iter()
        .zip(&rel.columns)
        .map(|(new, old)| Output { name: new.clone(), code: python::attribute("_", &old.name), source_column: (new == &old.name).then(|| new.clone()) })
        .collect();
    let mut chain = rel.chain;
    if values.iter().any(|v| v.source_column.is_none()) {
        chain.call("select", &select_arguments(&values));
    }
    let columns = names.iter().zip(rel.columns).map(|(n, c)| Column { name: n.clone(), ..c }).collect();
    Ok(Rel { chain, columns })
}

/// A relation used as an argument: a bare variable, or its chain inline.
pub(crate) fn inline_relation(chain: &Chain) -> String {
    chain.inline()
}

/// `FETCH FIRST n ROWS ONLY` (standard SQL, and PostgreSQL's) as the `LIMIT n` it means, after
/// any `OFFSET`; `None` when the query has no such clause (`WITH TIES` and `PERCENT` stay
/// refused).
fn fetch_as_limit(query: &Query) -> Option<Query> {
    let fetch = query.fetch.as_ref()?;
    if fetch.with_ties || fetch.percent {
        return None;
    }
    let quantity = fetch.quantity.clone()?;
    let offset = match &query.limit_clause {
        None => None,
        Some(sqlparser::ast::LimitClause::LimitOffset { limit: None, offset, limit_by }) if limit_by.is_empty() => offset.clone(),
        Some(_) => return None,
    };
    let mut rewritten = query.clone();
    rewritten.fetch = None;
    rewritten.limit_clause = Some(sqlparser::ast::LimitClause::LimitOffset { limit: Some(quantity), offset, limit_by: Vec::new() });
    Some(rewritten)
}
