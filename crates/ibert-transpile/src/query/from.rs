//! FROM items: catalog tables, CTEs and derived tables, and comma-separated FROM lists.

use super::join::{JoinStep, column_equality, join_output_names, predicate_argument, right_name_template, sources_of, with_rname};
use super::pivot::Pivot;
use super::{Rel, Translator, rename_columns};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Cx, Phase};
use crate::python;
use crate::scope::{BoundJoin, Column, Scope, Source};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, ObjectName, Select, SetExpr, TableAlias, TableFactor, TableWithJoins};

impl Translator<'_> {
    /// FROM with its joins. Comma-separated relations become inner joins on the WHERE equalities
    /// that connect them (which are removed from `conjuncts`), else cross joins.
    pub(super) fn relation_chain<'q>(
        &mut self,
        from: &'q [TableWithJoins],
        scope: &mut Scope,
        conjuncts: &mut Vec<&'q Expr>,
        bind_join: bool,
        select: &Select,
    ) -> Result<Chain, TranspileError> {
        let Some(first) = from.first() else {
            return Err(TranspileError::unsupported_at("SELECT without FROM", select));
        };
        let mut steps: Vec<JoinStep> = Vec::new();
        self.add_source(&first.relation, scope)?;
        let mut chain = Chain::new(scope.sources[0].var.clone());
        for join in &first.joins {
            self.join(join, scope, &mut chain, &mut steps)?;
        }
        for item in &from[1..] {
            self.add_source(&item.relation, scope)?;
            let right = scope.sources.len() - 1;
            let mut predicates = Vec::new();
            let mut index = 0;
            while index < conjuncts.len() {
                match sources_of(conjuncts[index], scope) {
                    Some(used) if used.contains(&right) && used.len() > 1 && used.iter().all(|s| *s <= right) => {
                        predicates.push(conjuncts.remove(index));
                    }
                    _ => index += 1,
                }
            }
            let cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
            let mut codes = Vec::new();
            for predicate in &predicates {
                codes.push(self.expr(predicate, &cx)?.code);
            }
            let var = scope.sources[right].var.clone();
            let rname = right_name_template(scope, &steps, right);
            if codes.is_empty() {
                chain.call("cross_join", &with_rname(vec![var], &rname));
                steps.push(JoinStep { how: "cross", right, equalities: Vec::new(), all_equalities: false, rname, filter: None });
            } else {
                let equalities = predicates.iter().filter_map(|p| column_equality(p, scope)).collect::<Vec<_>>();
                let all_equalities = equalities.len() == predicates.len();
                chain.call("join", &with_rname(vec![var, predicate_argument(codes)], &rname));
                steps.push(JoinStep { how: "inner", right, equalities, all_equalities, rname, filter: None });
            }
            for join in &item.joins {
                self.join(join, scope, &mut chain, &mut steps)?;
            }
        }
        let filters: Vec<String> = steps.iter().filter_map(|step| step.filter.clone()).collect();
        if !filters.is_empty() {
            chain.call("filter", &filters);
        }
        let (names, merged) = join_output_names(scope, &steps);
        if bind_join && scope.sources.len() > 1 {
            let var = self.bind("joined", &chain);
            scope.bound_join = Some(BoundJoin { var: var.clone(), names });
            return Ok(Chain::new(var));
        }
        scope.merged = merged;
        Ok(chain)
    }

    /// Adds a FROM item to the scope: a catalog table, a CTE or a derived table.
    pub(crate) fn add_source(&mut self, factor: &TableFactor, scope: &mut Scope) -> Result<(), TranspileError> {
        match factor {
            TableFactor::Table { name, alias, args: None, with_hints, version: None, partitions, sample: None, .. }
                if with_hints.is_empty() && partitions.is_empty() =>
            {
                let table_name = object_name(name);
                let alias_name = alias.as_ref().map(|a| a.name.value.clone());
                if let Some(alias) = alias
                    && !alias.columns.is_empty()
                {
                    return Err(TranspileError::unsupported_at("column aliases on a table", factor));
                }
                let (origin, base_var, columns) = if let Some(cte) = self.ctes.iter().rev().find(|c| c.name.eq_ignore_ascii_case(&table_name)) {
                    (format!("cte:{}", cte.name), cte.var.clone(), cte.columns.clone())
                } else if let Some(table) = self.catalog.table(&table_name) {
                    if !python::is_identifier(&table.name) || table.name.starts_with('_') {
                        return Err(TranspileError::unsupported_at(&format!("the table name `{}` (not a Python identifier)", table.name), factor));
                    }
                    if !self.tables.contains(&table.name) {
                        self.tables.push(table.name.clone());
                    }
                    let columns = table.columns.iter().map(|(c, t)| Column::typed(c.clone(), Some(t.clone()))).collect();
                    (format!("table:{}", table.name), table.name.clone(), columns)
                } else {
                    return Err(TranspileError::resolve_at(format!("unknown table `{table_name}`; declare it with --schema"), factor));
                };
                let var = if scope.reads(&origin) {
                    let view = Chain::new(format!("{base_var}.view()"));
                    self.bind(alias_name.as_deref().unwrap_or(&base_var), &view)
                } else {
                    base_var
                };
                let qualifier = alias_name.unwrap_or_else(|| last_name_part(name));
                if scope.sources.iter().any(|s| s.qualifier.eq_ignore_ascii_case(&qualifier)) {
                    return Err(TranspileError::resolve_at(format!("the name `{qualifier}` is used twice in FROM; alias one of them"), factor));
                }
                scope.sources.push(Source { qualifier, var, origin, columns });
                Ok(())
            }
            TableFactor::Derived { lateral: false, subquery, alias, sample: None } => {
                let Some(alias) = alias else {
                    return Err(TranspileError::unsupported_at("a subquery in FROM without an alias", factor));
                };
                let names: Vec<String> = alias.columns.iter().map(|c| c.name.value.clone()).collect();
                let rel = match subquery.body.as_ref() {
                    // `(VALUES ...) AS t(a, b)` names the columns itself.
                    SetExpr::Values(values)
                        if subquery.with.is_none() && subquery.order_by.is_none() && subquery.limit_clause.is_none() && !names.is_empty() =>
                    {
                        self.values(values, Some(&names), factor)?
                    }
                    _ => {
                        let root = Scope { parent: None, ..Scope::default() };
                        let rel = self.query(subquery, &root)?;
                        if names.is_empty() { rel } else { rename_columns(rel, &names, &alias.name)? }
                    }
                };
                self.add_derived(&alias.name.value, rel, scope);
                Ok(())
            }
            TableFactor::Table { name, alias, args: Some(args), with_hints, version: None, partitions, sample: None, with_ordinality: false, .. }
                if with_hints.is_empty() && partitions.is_empty() && args.settings.is_none() =>
            {
                let function = object_name(name).to_ascii_lowercase();
                if !matches!(function.as_str(), "generate_series" | "range" | "unnest") {
                    return Err(TranspileError::unsupported_at(&format!("the table function {function}()"), factor));
                }
                let mut exprs = Vec::new();
                for arg in &args.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => exprs.push(e),
                        _ => return Err(TranspileError::unsupported_at(&format!("named arguments to {function}()"), factor)),
                    }
                }
                self.add_table_function(&function, &exprs, alias.as_ref(), scope, factor)
            }
            TableFactor::UNNEST { alias, array_exprs, with_offset: false, with_offset_alias: None, with_ordinality: false } => {
                let exprs: Vec<&Expr> = array_exprs.iter().collect();
                self.add_table_function("unnest", &exprs, alias.as_ref(), scope, factor)
            }
            TableFactor::Pivot { table, aggregate_functions, value_column, value_source, default_on_null: None, alias } => {
                let pivot = Pivot { table, aggregates: aggregate_functions, value_column, value_source, alias: alias.as_ref(), at: factor };
                self.add_pivot(&pivot, scope)
            }
            TableFactor::NestedJoin { .. } => Err(TranspileError::unsupported_at("parenthesized joins", factor)),
            TableFactor::Derived { lateral: true, .. } => Err(TranspileError::unsupported_at("LATERAL subqueries", factor)),
            TableFactor::Function { lateral: true, .. } => Err(TranspileError::unsupported_at(
                "this LATERAL table function (`CROSS JOIN LATERAL unnest(t.list) AS u(x)` and `JOIN LATERAL ... ON true` are translated; a LEFT JOIN LATERAL is not)",
                factor,
            )),
            TableFactor::Table { sample: Some(_), .. } | TableFactor::Derived { sample: Some(_), .. } => {
                Err(TranspileError::unsupported_at("TABLESAMPLE (a random sample gives other rows on every run)", factor))
            }
            _ => Err(TranspileError::unsupported_at("this kind of FROM item", factor)),
        }
    }

    /// A relation computed in FROM, bound to a variable named after its alias.
    pub(super) fn add_derived(&mut self, alias: &str, rel: Rel, scope: &mut Scope) {
        let var = self.bind(alias, &rel.chain);
        scope.sources.push(Source { qualifier: alias.to_string(), var: var.clone(), origin: format!("derived:{var}"), columns: rel.columns });
    }

    /// `generate_series(...)`, `range(...)` or `unnest(...)` in FROM, named by its alias (and
    /// its one column by the alias's column, else after the function, as DuckDB names it).
    fn add_table_function(
        &mut self,
        function: &str,
        exprs: &[&Expr],
        alias: Option<&TableAlias>,
        scope: &mut Scope,
        at: &TableFactor,
    ) -> Result<(), TranspileError> {
        let column = match alias.map(|a| a.columns.as_slice()) {
            None | Some([]) => None,
            Some([column]) => Some(column.name.value.as_str()),
            Some(_) => return Err(TranspileError::resolve_at(format!("{function}() makes one column, and the alias names more"), at)),
        };
        let rel = self.table_function(function, exprs, column, at)?;
        let name = alias.map(|a| a.name.value.clone()).unwrap_or_else(|| function.to_string());
        if scope.sources.iter().any(|s| s.qualifier.eq_ignore_ascii_case(&name)) {
            return Err(TranspileError::resolve_at(format!("the name `{name}` is used twice in FROM; alias one of them"), at));
        }
        self.add_derived(&name, rel, scope);
        Ok(())
    }
}

pub(super) fn exact_column(scope: &Scope, source: usize, name: &str) -> String {
    scope.sources[source].columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)).map(|c| c.name.clone()).unwrap_or_else(|| name.to_string())
}

pub(super) fn object_name(name: &ObjectName) -> String {
    last_name_part(name)
}

fn last_name_part(name: &ObjectName) -> String {
    name.0.last().and_then(|part| part.as_ident()).map(|i| i.value.clone()).unwrap_or_else(|| name.to_string())
}
