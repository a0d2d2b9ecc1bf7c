//! `FROM t PIVOT (agg(x) FOR c IN ('a', 'b'))` as Ibis's `pivot_wider`: one column per listed
//! value of `c`, holding the aggregate of the rows with that value, grouped by every other column
//! of `t` (Ibis's default `id_cols`, and what PIVOT groups by).

use super::Translator;
use crate::ast::{function_name, plain_column};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::functions;
use crate::python;
use crate::scope::{Column, Scope, Source};
use sqlparser::ast::{
    DuplicateTreatment, Expr, ExprWithAlias, FunctionArg, FunctionArgExpr, FunctionArguments, PivotValueSource, TableAlias, TableFactor, Value,
};

/// The parts of a `PIVOT` table factor.
pub(super) struct Pivot<'a> {
    pub table: &'a TableFactor,
    pub aggregates: &'a [ExprWithAlias],
    pub value_column: &'a [Expr],
    pub value_source: &'a PivotValueSource,
    pub alias: Option<&'a TableAlias>,
    pub at: &'a TableFactor,
}

impl Translator<'_> {
    /// Adds a pivoted relation to the scope, bound to a variable named after its alias.
    pub(super) fn add_pivot(&mut self, pivot: &Pivot, scope: &mut Scope) -> Result<(), TranspileError> {
        let at = pivot.at;
        let mut input = Scope::default();
        match pivot.table {
            // `FROM (SELECT ...) PIVOT (...)`: the subquery needs no alias.
            TableFactor::Derived { lateral: false, subquery, alias: None, sample: None } => {
                let rel = self.query(subquery, &Scope::default())?;
                self.add_derived("pivot_input", rel, &mut input);
            }
            table => self.add_source(table, &mut input)?,
        }
        let source = &input.sources[0];
        let [names_from] = pivot.value_column else {
            return Err(TranspileError::unsupported_at("PIVOT over several columns", at));
        };
        let names_from = pivot_column(names_from, &input, "the PIVOT ... FOR column")?;
        let PivotValueSource::List(values) = pivot.value_source else {
            return Err(TranspileError::unsupported_at("PIVOT ... IN (ANY) or IN (subquery): its columns would depend on the data", at));
        };
        let mut names = Vec::new();
        for value in values {
            match (&value.expr, &value.alias) {
                (Expr::Value(v), None) if matches!(v.value, Value::SingleQuotedString(_)) => {
                    let Value::SingleQuotedString(text) = &v.value else { unreachable!("matched above") };
                    names.push(text.clone());
                }
                _ => return Err(TranspileError::unsupported_at("PIVOT ... IN with a value that is not a string literal without alias", &value.expr)),
            }
        }
        let [aggregate] = pivot.aggregates else {
            return Err(TranspileError::unsupported_at("PIVOT with several aggregates", at));
        };
        if aggregate.alias.is_some() {
            return Err(TranspileError::unsupported_at("an alias on the PIVOT aggregate", &aggregate.expr));
        }
        let (values_from, values_agg) = pivot_aggregate(&aggregate.expr, &input, &names_from)?;
        let args = vec![
            format!("names_from={}", python::string(&names_from)),
            format!("values_from={}", python::string(&values_from)),
            format!("values_agg={}", python::string(values_agg)),
            format!("names=[{}]", names.iter().map(|n| python::string(n)).collect::<Vec<_>>().join(", ")),
        ];
        let mut chain = Chain::new(source.var.clone());
        chain.call("pivot_wider", &args);
        let mut columns: Vec<Column> = source.columns.iter().filter(|c| c.name != names_from && c.name != values_from).cloned().collect();
        columns.extend(names.iter().map(|name| Column::typed(name.clone(), None)));
        let qualifier = pivot.alias.map(|a| a.name.value.clone()).unwrap_or_else(|| source.qualifier.clone());
        if let Some(alias) = pivot.alias
            && !alias.columns.is_empty()
        {
            return Err(TranspileError::unsupported_at("column aliases on a PIVOT", at));
        }
        if scope.sources.iter().any(|s| s.qualifier.eq_ignore_ascii_case(&qualifier)) {
            return Err(TranspileError::resolve_at(format!("the name `{qualifier}` is used twice in FROM; alias one of them"), at));
        }
        let var = self.bind(pivot.alias.map_or("pivoted", |a| a.name.value.as_str()), &chain);
        scope.sources.push(Source { qualifier, var: var.clone(), origin: format!("derived:{var}"), columns });
        Ok(())
    }
}

/// The input column a PIVOT names.
fn pivot_column(expr: &Expr, input: &Scope, role: &str) -> Result<String, TranspileError> {
    plain_column(expr, input)
        .map(|resolved| resolved.column)
        .ok_or_else(|| TranspileError::unsupported_at(&format!("{role} that is not a column of the pivoted table"), expr))
}

/// `(values_from, values_agg)` of the PIVOT aggregate: `sum(x)` is `("x", "sum")`; `count(*)`
/// counts the rows of each value, so the values column itself.
fn pivot_aggregate(expr: &Expr, input: &Scope, names_from: &str) -> Result<(String, &'static str), TranspileError> {
    let unsupported =
        || TranspileError::unsupported_at("a PIVOT aggregate other than count(*) or sum, avg, min, max, count or count(DISTINCT) of a column", expr);
    let Expr::Function(function) = expr else { return Err(unsupported()) };
    let FunctionArguments::List(list) = &function.args else { return Err(unsupported()) };
    if function.filter.is_some() || function.over.is_some() || !list.clauses.is_empty() || !function.within_group.is_empty() {
        return Err(unsupported());
    }
    let name = function_name(function);
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    match (name.as_str(), list.args.as_slice(), distinct) {
        ("count", [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)], false) => Ok((names_from.to_string(), "count")),
        ("count", [FunctionArg::Unnamed(FunctionArgExpr::Expr(column))], true) => {
            Ok((pivot_column(column, input, "the PIVOT aggregate's argument")?, "nunique"))
        }
        (name, [FunctionArg::Unnamed(FunctionArgExpr::Expr(column))], false) => {
            let method = match functions::aggregate_method(name) {
                Some((method @ ("sum" | "mean" | "min" | "max" | "count"), "")) => method,
                _ => return Err(unsupported()),
            };
            Ok((pivot_column(column, input, "the PIVOT aggregate's argument")?, method))
        }
        _ => Err(unsupported()),
    }
}
