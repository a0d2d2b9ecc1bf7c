//! Query blocks: CTEs, FROM and joins, WHERE, GROUP BY / HAVING, projection, set operations,
//! ORDER BY and LIMIT, emitted as method chains.

use crate::catalog::Catalog;
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Aggregation, Cx, Phase, contains_aggregate, contains_subquery, contains_window, deferred_safe, is_aggregate_call};
use crate::python;
use crate::scope::{BoundJoin, Column, Resolved, Scope, Source};
use crate::{RESULT_NAME, Translation};
use sqlparser::ast::{
    BinaryOperator, Distinct, Expr, GroupByExpr, GroupByWithModifier, Ident, Join, JoinConstraint, JoinOperator, LimitClause, ObjectName, OrderBy, OrderByKind,
    Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor, TableWithJoins,
};
use std::collections::{HashMap, HashSet};

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

/// One output column of a SELECT list.
struct Item {
    name: String,
    expr: Expr,
}

pub(crate) struct Translator<'c> {
    catalog: &'c Catalog,
    statements: Vec<String>,
    variables: HashSet<String>,
    tables: Vec<String>,
    ctes: Vec<CteDef>,
}

pub(crate) fn translate(query: &Query, catalog: &Catalog) -> Result<Translation, TranspileError> {
    let mut translator = Translator {
        catalog,
        statements: Vec::new(),
        variables: catalog.tables().iter().map(|t| t.name.clone()).collect(),
        tables: Vec::new(),
        ctes: Vec::new(),
    };
    translator.variables.insert(RESULT_NAME.to_string());
    let root = Scope::default();
    let rel = translator.query(query, &root)?;
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

    /// Binds a relation to a new variable, as its own statement.
    pub(crate) fn bind(&mut self, hint: &str, chain: &Chain) -> String {
        let var = self.fresh_variable(hint);
        self.statements.push(chain.assignment(&var));
        var
    }

    pub(crate) fn query(&mut self, query: &Query, outer: &Scope) -> Result<Rel, TranspileError> {
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

    fn set_expr(&mut self, body: &SetExpr, outer: &Scope) -> Result<Rel, TranspileError> {
        match body {
            SetExpr::Select(select) => self.select(select, None, None, outer),
            SetExpr::Query(query) => self.query(query, outer),
            SetExpr::SetOperation { left, op, set_quantifier, right } => {
                let left = self.set_expr(left, outer)?;
                let right = self.set_expr(right, outer)?;
                if left.columns.len() != right.columns.len() {
                    return Err(TranspileError::resolve_at(
                        format!("the two sides of {op} have {} and {} columns", left.columns.len(), right.columns.len()),
                        body,
                    ));
                }
                let (method, default_distinct) = match op {
                    SetOperator::Union => ("union", false),
                    SetOperator::Intersect => ("intersect", true),
                    SetOperator::Except | SetOperator::Minus => ("difference", true),
                };
                let distinct = match set_quantifier {
                    SetQuantifier::All => false,
                    SetQuantifier::Distinct | SetQuantifier::None => true,
                    _ => return Err(TranspileError::unsupported_at(&format!("{op} {set_quantifier}"), body)),
                };
                let (left, right) = self.align_set_operands(left, right);
                let mut args = vec![inline_relation(&right.chain)];
                if distinct != default_distinct {
                    args.push(format!("distinct={}", if distinct { "True" } else { "False" }));
                }
                let mut chain = left.chain;
                chain.call(method, &args);
                Ok(Rel { chain, columns: left.columns })
            }
            SetExpr::Values(_) => Err(TranspileError::unsupported_at("VALUES lists", body)),
            _ => Err(TranspileError::unsupported_at("a statement other than a query", body)),
        }
    }

    /// ORDER BY and LIMIT over the output columns of a finished relation (set operations).
    fn order_and_limit_outputs(&mut self, rel: Rel, order_by: Option<&OrderBy>, limit: Option<&LimitClause>) -> Result<Rel, TranspileError> {
        let mut rel = rel;
        if let Some(order_by) = order_by {
            self.order_by_outputs(&mut rel.chain, order_by, &rel.columns)?;
        }
        self.limit(&mut rel.chain, limit)?;
        Ok(rel)
    }

    /// ORDER BY that may only name output columns (after DISTINCT or a set operation), through `_`.
    fn order_by_outputs(&mut self, chain: &mut Chain, order_by: &OrderBy, columns: &[Column]) -> Result<(), TranspileError> {
        let outputs = Scope { sources: vec![output_source(columns)], ..Scope::default() };
        let items: Vec<Item> = columns.iter().map(|c| Item { name: c.name.clone(), expr: ident_expr(&c.name) }).collect();
        let cx = Cx { scope: &outputs, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let keys = self.order_keys(order_by, &items, &cx, false)?;
        chain.call("order_by", &keys);
        Ok(())
    }

    fn select(&mut self, select: &Select, order_by: Option<&OrderBy>, limit: Option<&LimitClause>, outer: &Scope) -> Result<Rel, TranspileError> {
        let inlined = crate::named_windows::inline_named_windows(select)?;
        let select = inlined.as_ref().unwrap_or(select);
        reject_select_extras(select)?;
        let mut scope = Scope::child(outer);
        let mut conjuncts: Vec<&Expr> = Vec::new();
        if let Some(selection) = &select.selection {
            split_conjuncts(selection, &mut conjuncts);
        }
        let needs_bound_join = select.selection.as_ref().is_some_and(contains_subquery)
            || select.having.as_ref().is_some_and(|e| contains_subquery(e) || contains_window(e))
            || select.qualify.is_some()
            || order_by_exprs(order_by).iter().any(|e| contains_window(e))
            || select
                .projection
                .iter()
                .any(|item| select_item_expr(item).is_some_and(|e| contains_subquery(e) || contains_window(e) || counts_rows_conditionally(e)))
            || select.having.as_ref().is_some_and(counts_rows_conditionally);
        let mut chain = self.from_clause(&select.from, &mut scope, &mut conjuncts, needs_bound_join, select)?;
        let items = self.select_items(&select.projection, &scope)?;
        if !conjuncts.is_empty() {
            let cx = Cx { scope: &scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
            let mut args = Vec::new();
            for conjunct in conjuncts {
                args.push(self.expr(conjunct, &cx)?.code);
            }
            chain.call("filter", &args);
        }
        let (group_exprs, grouping_sets): (Vec<Expr>, Option<Vec<Vec<Expr>>>) = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => match expand_grouping_sets(exprs, modifiers, select)? {
                None => (exprs.iter().map(|e| group_key_expr(e, &items, &scope)).collect::<Result<_, _>>()?, None),
                Some(sets) => {
                    let sets: Vec<Vec<Expr>> =
                        sets.iter().map(|set| set.iter().map(|e| group_key_expr(e, &items, &scope)).collect::<Result<_, _>>()).collect::<Result<_, _>>()?;
                    let mut keys: Vec<Expr> = Vec::new();
                    for key in sets.iter().flatten() {
                        if !keys.contains(key) {
                            keys.push(key.clone());
                        }
                    }
                    (keys, Some(sets))
                }
            },
            GroupByExpr::All(_) => (items.iter().filter(|i| !contains_aggregate(&i.expr) && !is_constant(&i.expr)).map(|i| i.expr.clone()).collect(), None),
        };
        let order_exprs = order_by_exprs(order_by);
        let aggregated = !group_exprs.is_empty()
            || select.having.is_some()
            || items.iter().any(|i| contains_aggregate(&i.expr))
            || order_exprs.iter().any(|e| contains_aggregate(e));
        let distinct = match &select.distinct {
            None | Some(Distinct::All) => false,
            Some(Distinct::Distinct) => true,
            Some(Distinct::On(_)) if aggregated || select.qualify.is_some() => {
                return Err(TranspileError::unsupported_at("DISTINCT ON with GROUP BY, aggregates or QUALIFY", select));
            }
            Some(Distinct::On(on)) => {
                self.keep_first_per_key(&mut chain, on, order_by, &scope, &items)?;
                false
            }
        };
        let columns = if aggregated {
            self.aggregate_block(&mut chain, select, &scope, &items, (group_exprs, grouping_sets), order_by, distinct)?
        } else {
            self.projection_block(&mut chain, select, &scope, &items, order_by, distinct)?
        };
        self.limit(&mut chain, limit)?;
        Ok(Rel { chain, columns })
    }

    /// `DISTINCT ON (keys)`: the first row of each key by the ORDER BY, as a row-number filter;
    /// the ORDER BY then sorts the rows kept, as in SQL.
    fn keep_first_per_key(&mut self, chain: &mut Chain, on: &[Expr], order_by: Option<&OrderBy>, scope: &Scope, items: &[Item]) -> Result<(), TranspileError> {
        let aliases: Vec<(String, Expr)> = items.iter().map(|i| (i.name.clone(), i.expr.clone())).collect();
        let cx = Cx { scope, phase: Phase::Source, aliases: &aliases, prefer_alias: true };
        let mut keys = Vec::new();
        for expr in on {
            keys.push(self.expr(&group_key_expr(expr, items, scope)?, &cx)?.value());
        }
        let mut over = vec![format!("group_by=[{}]", keys.join(", "))];
        if let Some(order_by) = order_by {
            over.push(format!("order_by=[{}]", self.order_keys(order_by, items, &cx, false)?.join(", ")));
        }
        chain.call("filter", &[deferred_safe(&format!("ibis.row_number().over({}) == 0", over.join(", ")))]);
        Ok(())
    }

    /// SELECT without aggregation: QUALIFY, ORDER BY (on the input, where it may use any
    /// column), the projection, then DISTINCT.
    fn projection_block(
        &mut self,
        chain: &mut Chain,
        select: &Select,
        scope: &Scope,
        items: &[Item],
        order_by: Option<&OrderBy>,
        distinct: bool,
    ) -> Result<Vec<Column>, TranspileError> {
        let aliases: Vec<(String, Expr)> = items.iter().map(|i| (i.name.clone(), i.expr.clone())).collect();
        if let Some(qualify) = &select.qualify {
            let cx = Cx { scope, phase: Phase::Source, aliases: &aliases, prefer_alias: false };
            let predicate = self.expr(qualify, &cx)?.code;
            chain.call("filter", &[predicate]);
        }
        let sort_after_windows = sorts_after_windows(order_by, items, distinct);
        if let (Some(order_by), false, false) = (order_by, distinct, sort_after_windows) {
            let cx = Cx { scope, phase: Phase::Source, aliases: &aliases, prefer_alias: true };
            let keys = self.order_keys(order_by, items, &cx, false)?;
            chain.call("order_by", &keys);
        }
        let cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut values = Vec::new();
        let mut columns = Vec::new();
        for item in items {
            let py = self.expr(&item.expr, &cx)?;
            let ty = plain_column(&item.expr, scope).and_then(|r| r.ty).or_else(|| null_type(&item.expr));
            values.push((item.name.clone(), py.value(), column_name_of(&item.expr, scope)));
            columns.push(Column { name: item.name.clone(), ty });
        }
        let source_columns: Vec<String> = match scope.sources.as_slice() {
            [only] => only.columns.iter().map(|c| c.name.clone()).collect(),
            _ => Vec::new(),
        };
        let passes_through = |(name, _, from): &(String, String, Option<String>)| from.as_deref() == Some(name.as_str());
        let prefix = values.iter().take_while(|v| passes_through(v)).count();
        let prefix_names: Vec<&String> = values[..prefix].iter().map(|(n, _, _)| n).collect();
        let whole_input = !source_columns.is_empty()
            && prefix >= source_columns.len()
            && prefix_names[..source_columns.len()].iter().zip(&source_columns).all(|(a, b)| *a == b);
        if let (Some(order_by), true) = (order_by, sort_after_windows) {
            self.sort_after_windows(chain, order_by, items, &values, &cx)?;
        } else if whole_input && prefix == values.len() && values.len() == source_columns.len() {
            // SELECT *: nothing to project.
        } else if whole_input && values.len() > source_columns.len() && prefix == source_columns.len() {
            chain.call("mutate", &named_arguments(&values[prefix..]));
        } else {
            chain.call("select", &select_arguments(&values));
        }
        if distinct {
            chain.call("distinct", &[]);
            if let Some(order_by) = order_by {
                self.order_by_outputs(chain, order_by, &columns)?;
            }
        }
        Ok(columns)
    }

    /// SELECT with GROUP BY or aggregates: `group_by(keys).aggregate(metrics)`, HAVING as a
    /// filter on the result, ORDER BY, and a final projection where the SELECT list is more than
    /// the keys and metrics in order. With grouping sets (ROLLUP, CUBE, GROUPING SETS), one
    /// aggregation per set, united (see [`Translator::grouping_set_union`]).
    #[allow(clippy::too_many_arguments)]
    fn aggregate_block(
        &mut self,
        chain: &mut Chain,
        select: &Select,
        scope: &Scope,
        items: &[Item],
        (group_exprs, grouping_sets): (Vec<Expr>, Option<Vec<Vec<Expr>>>),
        order_by: Option<&OrderBy>,
        distinct: bool,
    ) -> Result<Vec<Column>, TranspileError> {
        let source_cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut taken: HashSet<String> = HashSet::new();
        let mut aggregation = Aggregation::default();
        let mut key_args = Vec::new();
        let mut key_names = Vec::new();
        for (index, key) in group_exprs.iter().enumerate() {
            if aggregation.keys.iter().any(|(e, _)| e == key) {
                continue;
            }
            let from_item = items.iter().find(|i| &i.expr == key).map(|i| i.name.clone());
            let column = column_name_of(key, scope);
            let mut name = from_item.or(column.clone()).unwrap_or_else(|| format!("key{}", index + 1));
            if taken.contains(&name) {
                name = format!("{name}_{}", index + 1);
            }
            taken.insert(name.clone());
            let code = self.expr(key, &source_cx)?.value();
            key_args.push(if column.as_deref() == Some(name.as_str()) { (name.clone(), code, Some(name.clone())) } else { (name.clone(), code, None) });
            key_names.push(name.clone());
            aggregation.keys.push((key.clone(), name));
        }
        // Metrics: SELECT items that are aggregates through and through keep their names; the
        // aggregates used anywhere else become hidden metrics.
        let mut metric_args = Vec::new();
        for item in items {
            let is_key = aggregation.keys.iter().any(|(e, _)| e == &item.expr);
            if !is_key
                && contains_aggregate(&item.expr)
                && !contains_window(&item.expr)
                && !refers_outside_aggregates(&item.expr)
                && !taken.contains(&item.name)
            {
                if aggregation.metrics.iter().any(|(e, _)| e == &item.expr) {
                    continue;
                }
                taken.insert(item.name.clone());
                let code = self.expr(&item.expr, &source_cx)?.value();
                metric_args.push((item.name.clone(), code, None));
                aggregation.metrics.push((item.expr.clone(), item.name.clone()));
            }
        }
        // Items computed whole as metrics need none of their inner aggregates again.
        let mut hidden_sources: Vec<&Expr> = items.iter().map(|i| &i.expr).filter(|e| !aggregation.metrics.iter().any(|(metric, _)| metric == *e)).collect();
        hidden_sources.extend(select.having.iter());
        hidden_sources.extend(select.qualify.iter());
        let order_exprs = order_by_exprs(order_by);
        hidden_sources.extend(order_exprs.iter().copied());
        let mut calls = Vec::new();
        for expr in hidden_sources {
            collect_aggregate_calls(expr, &mut calls);
        }
        let mut hidden = Vec::new();
        for call in calls {
            if aggregation.metrics.iter().any(|(e, _)| e == &call) {
                continue;
            }
            let name = format!("_agg{}", hidden.len() + 1);
            let code = self.expr(&call, &source_cx)?.value();
            metric_args.push((name.clone(), code, None));
            hidden.push(name.clone());
            aggregation.metrics.push((call, name));
        }
        if key_args.is_empty() && metric_args.is_empty() {
            return Err(TranspileError::unsupported_at("an aggregation without keys or aggregates", select));
        }
        let mut grouping_calls = Vec::new();
        for expr in items.iter().map(|i| &i.expr).chain(select.having.iter()).chain(select.qualify.iter()).chain(order_exprs.iter().copied()) {
            collect_grouping_calls(expr, &mut grouping_calls);
        }
        let mut flags = Vec::new();
        if grouping_sets.is_some() || !grouping_calls.is_empty() {
            let sets = grouping_sets.unwrap_or_else(|| vec![group_exprs.clone()]);
            for call in grouping_calls {
                let name = (1..).map(|n| format!("grouping_{n}")).find(|name| !taken.contains(name)).expect("a free name");
                taken.insert(name.clone());
                flags.push((call.clone(), name.clone()));
                aggregation.metrics.push((call, name));
            }
            *chain = self.grouping_set_union(chain, scope, &sets, &key_args, &aggregation.keys, &metric_args, &flags)?;
        } else if metric_args.is_empty() {
            chain.call("select", &select_arguments(&key_args));
            chain.call("distinct", &[]);
        } else {
            if !key_args.is_empty() {
                chain.call("group_by", &select_arguments(&key_args));
            }
            chain.call("aggregate", &named_arguments(&metric_args));
        }
        let aliases: Vec<(String, Expr)> = items.iter().map(|i| (i.name.clone(), i.expr.clone())).collect();
        let post = Scope::child(scope);
        if let Some(having) = &select.having {
            let cx = Cx { scope: &post, phase: Phase::Aggregated(&aggregation), aliases: &aliases, prefer_alias: false };
            let predicate = deferred_safe(&self.expr(having, &cx)?.code);
            chain.call("filter", &[predicate]);
        }
        if let Some(qualify) = &select.qualify {
            let cx = Cx { scope: &post, phase: Phase::Aggregated(&aggregation), aliases: &aliases, prefer_alias: false };
            let predicate = self.expr(qualify, &cx)?.code;
            chain.call("filter", &[predicate]);
        }
        let sort_after_windows = sorts_after_windows(order_by, items, distinct);
        if let (Some(order_by), false, false) = (order_by, distinct, sort_after_windows) {
            let cx = Cx { scope: &post, phase: Phase::Aggregated(&aggregation), aliases: &aliases, prefer_alias: true };
            let keys = self.order_keys(order_by, items, &cx, false)?;
            chain.call("order_by", &keys);
        }
        let produced: Vec<String> = key_names.iter().chain(metric_args.iter().map(|(n, _, _)| n)).chain(flags.iter().map(|(_, n)| n)).cloned().collect();
        let item_names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
        let cx = Cx { scope: &post, phase: Phase::Aggregated(&aggregation), aliases: &[], prefer_alias: false };
        let mut columns = Vec::new();
        let mut values = Vec::new();
        for item in items {
            let py = self.expr(&item.expr, &cx)?;
            let passthrough = py.code == python::attribute("_", &item.name);
            values.push((item.name.clone(), py.value(), passthrough.then(|| item.name.clone())));
            let ty = aggregation
                .keys
                .iter()
                .find(|(e, _)| e == &item.expr)
                .and_then(|(e, _)| plain_column(e, scope))
                .and_then(|r| r.ty)
                .or_else(|| null_type(&item.expr));
            columns.push(Column { name: item.name.clone(), ty });
        }
        if let (Some(order_by), true) = (order_by, sort_after_windows) {
            self.sort_after_windows(chain, order_by, items, &values, &cx)?;
        } else if produced != item_names || values.iter().any(|(_, _, p)| p.is_none()) {
            chain.call("select", &select_arguments(&values));
        }
        if distinct {
            chain.call("distinct", &[]);
            if let Some(order_by) = order_by {
                self.order_by_outputs(chain, order_by, &columns)?;
            }
        }
        Ok(columns)
    }

    /// One aggregation per grouping set over the same rows, united: the keys a set leaves out
    /// are typed NULLs, and each `GROUPING(...)` is the constant bit mask of its set (1 for an
    /// argument the set leaves out, the first argument the highest bit). Ibis has no grouping
    /// sets; this is what they mean.
    #[allow(clippy::too_many_arguments)]
    fn grouping_set_union(
        &mut self,
        input: &Chain,
        scope: &Scope,
        sets: &[Vec<Expr>],
        key_args: &[(String, String, Option<String>)],
        keys: &[(Expr, String)],
        metric_args: &[(String, String, Option<String>)],
        flags: &[(Expr, String)],
    ) -> Result<Chain, TranspileError> {
        let rows = if sets.len() > 1 && !input.is_plain() { Chain::new(self.bind("grouped_rows", input)) } else { input.clone() };
        let order: Vec<String> = key_args
            .iter()
            .map(|(name, _, _)| name)
            .chain(metric_args.iter().map(|(name, _, _)| name))
            .chain(flags.iter().map(|(_, name)| name))
            .map(|name| python::string(name))
            .collect();
        let mut branches = Vec::new();
        for set in sets {
            let in_set = |key: &Expr| set.iter().any(|e| e == key || crate::expr::same_column(e, key, scope));
            let present: Vec<(String, String, Option<String>)> =
                key_args.iter().zip(keys).filter(|(_, (key, _))| in_set(key)).map(|(arg, _)| arg.clone()).collect();
            let mut branch = rows.clone();
            if metric_args.is_empty() && present.is_empty() {
                return Err(TranspileError::unsupported_at("an empty grouping set without aggregates", &keys[0].0));
            }
            if metric_args.is_empty() {
                branch.call("select", &select_arguments(&present));
                branch.call("distinct", &[]);
            } else {
                if !present.is_empty() {
                    branch.call("group_by", &select_arguments(&present));
                }
                branch.call("aggregate", &named_arguments(metric_args));
            }
            let mut constants = Vec::new();
            for ((name, _, _), (key, _)) in key_args.iter().zip(keys).filter(|(_, (key, _))| !in_set(key)) {
                // The type of the NULL: the column's, from the catalog or, for a column computed
                // upstream (a derived table's), read off the grouped rows.
                let ty = match plain_column(key, scope) {
                    Some(Resolved { ty: Some(ty), .. }) => python::string(&ty),
                    Some(resolved) if scope.sources.len() == 1 && rows.is_plain() => format!("{}.type()", python::attribute(&rows.inline(), &resolved.column)),
                    _ => {
                        return Err(TranspileError::unsupported_at(
                            "ROLLUP, CUBE or GROUPING SETS over a computed key (group by a column, or compute the key in a subquery first)",
                            key,
                        ));
                    }
                };
                constants.push((name.clone(), format!("ibis.null({ty})"), None));
            }
            for (call, name) in flags {
                let mask = grouping_mask(call, &in_set)?;
                constants.push((name.clone(), format!("ibis.literal({mask})"), None));
            }
            if !constants.is_empty() {
                branch.call("mutate", &named_arguments(&constants));
            }
            if sets.len() > 1 {
                branch.call("select", &order);
            }
            branches.push(branch);
        }
        let mut branches = branches.into_iter();
        let first = branches.next().expect("at least one grouping set");
        if sets.len() == 1 {
            return Ok(first);
        }
        let mut chain = Chain::new(self.bind("grouping_set", &first));
        let rest: Vec<String> = branches.map(|branch| self.bind("grouping_set", &branch)).collect();
        chain.call("union", &rest);
        Ok(chain)
    }

    /// The right operand of a set operation takes the left's column names, and types where they
    /// differ (Ibis unites only equal schemas). A bare `NULL` column takes the other side's type:
    /// the known one, or else the one read off the other side, bound to a name for that.
    fn align_set_operands(&mut self, left: Rel, right: Rel) -> (Rel, Rel) {
        let mut left = left;
        let pairs: Vec<(Column, Column)> = left.columns.iter().cloned().zip(right.columns.iter().cloned()).collect();
        let is_null = |ty: &Option<String>| ty.as_deref() == Some(NULL_TYPE);
        let needs_rename = pairs.iter().any(|(l, r)| l.name != r.name);
        let needs_cast = pairs.iter().any(|(l, r)| l.ty != r.ty && (is_null(&l.ty) || is_null(&r.ty) || (l.ty.is_some() && r.ty.is_some())));
        if !needs_rename && !needs_cast {
            return (left, right);
        }
        let mut left_values = Vec::new();
        let mut right_values = Vec::new();
        let mut right_var: Option<String> = None;
        let mut left_var: Option<String> = None;
        for (l, r) in &pairs {
            let mut left_code = python::attribute("_", &l.name);
            let mut right_code = python::attribute("_", &r.name);
            match (&l.ty, &r.ty) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), _) if is_null(&r.ty) && !is_null(&l.ty) => right_code = format!("{right_code}.cast({})", python::string(a)),
                (None, _) if is_null(&r.ty) => {
                    let var = left_var.get_or_insert_with(|| self.bind("left", &left.chain)).clone();
                    right_code = format!("{right_code}.cast({}.type())", python::attribute(&var, &l.name));
                }
                (_, Some(b)) if is_null(&l.ty) && !is_null(&r.ty) => left_code = format!("{left_code}.cast({})", python::string(b)),
                (_, None) if is_null(&l.ty) => {
                    let var = right_var.get_or_insert_with(|| self.bind("right", &right.chain)).clone();
                    left_code = format!("{left_code}.cast({}.type())", python::attribute(&var, &r.name));
                }
                (Some(a), Some(_)) => right_code = format!("{right_code}.cast({})", python::string(a)),
                _ => {}
            }
            let left_same = (!left_code.contains(".cast(")).then(|| l.name.clone());
            left_values.push((l.name.clone(), left_code, left_same));
            let right_same = (l.name == r.name && !right_code.contains(".cast(")).then(|| l.name.clone());
            right_values.push((l.name.clone(), right_code, right_same));
        }
        if let Some(var) = left_var {
            left.chain = Chain::new(var);
        }
        if left_values.iter().any(|(_, _, same)| same.is_none()) {
            left.chain.call("select", &select_arguments(&left_values));
        }
        let mut chain = match right_var {
            Some(var) => Chain::new(var),
            None => right.chain,
        };
        chain.call("select", &select_arguments(&right_values));
        let columns = left
            .columns
            .iter()
            .zip(&right.columns)
            .map(|(l, r)| Column { name: l.name.clone(), ty: if is_null(&l.ty) { r.ty.clone() } else { l.ty.clone() } })
            .collect();
        left.columns = columns;
        (left, Rel { chain, columns: right.columns })
    }

    /// ORDER BY over a SELECT list with window functions: a sort below a window is lost (the
    /// window reorders rows), so the list is computed first (`mutate`, keeping every column the
    /// sort may need), then sorted, then projected to the list.
    fn sort_after_windows(
        &mut self,
        chain: &mut Chain,
        order_by: &OrderBy,
        items: &[Item],
        values: &[(String, String, Option<String>)],
        cx: &Cx,
    ) -> Result<(), TranspileError> {
        chain.call("mutate", &named_arguments(values));
        let keys = self.order_keys(order_by, items, cx, true)?;
        chain.call("order_by", &keys);
        let outputs: Vec<(String, String, Option<String>)> =
            values.iter().map(|(name, _, _)| (name.clone(), python::attribute("_", name), Some(name.clone()))).collect();
        chain.call("select", &select_arguments(&outputs));
        Ok(())
    }

    /// Sort keys; with `items_are_columns`, a key naming a SELECT item (by alias, position or the
    /// same expression) is that item's column of the current table.
    fn order_keys(&mut self, order_by: &OrderBy, items: &[Item], cx: &Cx, items_are_columns: bool) -> Result<Vec<String>, TranspileError> {
        let OrderByKind::Expressions(exprs) = &order_by.kind else {
            return Err(TranspileError::Unsupported { construct: "ORDER BY ALL".into(), line: 0, column: 0 });
        };
        let mut keys = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for order in exprs {
            if order.with_fill.is_some() {
                return Err(TranspileError::unsupported_at("ORDER BY ... WITH FILL", &order.expr));
            }
            let expr = match positional(&order.expr) {
                Some(position) => {
                    &items
                        .get(position.wrapping_sub(1))
                        .ok_or_else(|| TranspileError::resolve_at(format!("ORDER BY position {position} is not in the SELECT list"), &order.expr))?
                        .expr
                }
                None => &order.expr,
            };
            let item = items_are_columns
                .then(|| items.iter().find(|i| &i.expr == expr || matches!(&order.expr, Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case(&i.name))))
                .flatten();
            let mut code = match item {
                Some(item) => python::attribute("_", &item.name),
                None => self.expr(expr, cx)?.value(),
            };
            // Ibis names sort keys and refuses two of one name (`inv.d_moy`, `inv2.d_moy`).
            if let Some(name) = python::attribute_name(&code) {
                if seen.contains(&name) {
                    let renamed = (2..).map(|n| format!("{name}_{n}")).find(|n| !seen.contains(n)).expect("a free name");
                    code = format!("{code}.name({})", python::string(&renamed));
                    seen.insert(renamed);
                } else {
                    seen.insert(name);
                }
            }
            keys.push(deferred_safe(&sort_key(code, &order.options)));
        }
        Ok(keys)
    }

    fn limit(&mut self, chain: &mut Chain, limit: Option<&LimitClause>) -> Result<(), TranspileError> {
        let Some(limit) = limit else { return Ok(()) };
        let (count, offset) = match limit {
            LimitClause::LimitOffset { limit, offset, limit_by } => {
                if !limit_by.is_empty() {
                    return Err(TranspileError::unsupported_at("LIMIT BY", &limit_by[0]));
                }
                (limit.as_ref(), offset.as_ref().map(|o| &o.value))
            }
            LimitClause::OffsetCommaLimit { offset, limit } => (Some(limit), Some(offset)),
        };
        let number = |e: &Expr| -> Result<String, TranspileError> {
            match e {
                Expr::Value(v) => match &v.value {
                    sqlparser::ast::Value::Number(n, _) if n.parse::<u64>().is_ok() => Ok(n.clone()),
                    sqlparser::ast::Value::Null => Ok("None".into()),
                    _ => Err(TranspileError::unsupported_at("a LIMIT or OFFSET that is not a whole number", e)),
                },
                _ => Err(TranspileError::unsupported_at("a LIMIT or OFFSET that is not a whole number", e)),
            }
        };
        let count = match count {
            Some(e) => number(e)?,
            None => "None".into(),
        };
        let mut args = vec![count];
        if let Some(offset) = offset {
            args.push(format!("offset={}", number(offset)?));
        }
        chain.call("limit", &args);
        Ok(())
    }

    /// The SELECT list with stars expanded, each item named.
    fn select_items(&mut self, projection: &[SelectItem], scope: &Scope) -> Result<Vec<Item>, TranspileError> {
        let mut items = Vec::new();
        let mut used: HashSet<String> = HashSet::new();
        for (index, item) in projection.iter().enumerate() {
            match item {
                SelectItem::UnnamedExpr(expr) => {
                    let name = column_name_of(expr, scope).unwrap_or_else(|| generated_name(expr, index));
                    items.push(Item { name, expr: expr.clone() });
                }
                SelectItem::ExprWithAlias { expr, alias } => items.push(Item { name: alias.value.clone(), expr: expr.clone() }),
                SelectItem::Wildcard(options) => {
                    reject_wildcard_options(options, item)?;
                    for source in &scope.sources {
                        for column in &source.columns {
                            if scope.sources.len() > 1
                                && scope.using.iter().any(|(c, i)| c.eq_ignore_ascii_case(&column.name) && scope.sources[*i].qualifier != source.qualifier)
                            {
                                continue;
                            }
                            items.push(Item { name: column.name.clone(), expr: qualified_expr(&source.qualifier, &column.name) });
                        }
                    }
                }
                SelectItem::QualifiedWildcard(kind, options) => {
                    reject_wildcard_options(options, item)?;
                    let SelectItemQualifiedWildcardKind::ObjectName(name) = kind else {
                        return Err(TranspileError::unsupported_at("a wildcard over an expression", item));
                    };
                    let qualifier = object_name(name);
                    let source = scope
                        .sources
                        .iter()
                        .find(|s| s.qualifier.eq_ignore_ascii_case(&qualifier))
                        .ok_or_else(|| TranspileError::resolve_at(format!("unknown table `{qualifier}` in `{qualifier}.*`"), item))?;
                    for column in &source.columns {
                        items.push(Item { name: column.name.clone(), expr: qualified_expr(&source.qualifier, &column.name) });
                    }
                }
                SelectItem::ExprWithAliases { .. } => return Err(TranspileError::unsupported_at("multiple aliases", item)),
            }
        }
        // SQL allows two output columns of one name (`a.id, b.id`); an Ibis table does not. Later
        // ones are renamed as DuckDB does for a subquery's columns: `id_1`, `id_2`, ...
        let taken: HashSet<String> = items.iter().map(|i| i.name.clone()).collect();
        for item in &mut items {
            if !used.insert(item.name.clone()) {
                let renamed = (1..).map(|n| format!("{}_{n}", item.name)).find(|n| !taken.contains(n) && !used.contains(n)).expect("a free name");
                used.insert(renamed.clone());
                item.name = renamed;
            }
        }
        Ok(items)
    }

    /// FROM with its joins. Comma-separated relations become inner joins on the WHERE equalities
    /// that connect them (which are removed from `conjuncts`), else cross joins.
    fn from_clause<'q>(
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
                steps.push(JoinStep { how: "cross", right, equalities: Vec::new(), all_equalities: false, rname });
            } else {
                let equalities = predicates.iter().filter_map(|p| column_equality(p, scope)).collect::<Vec<_>>();
                let all_equalities = equalities.len() == predicates.len();
                chain.call("join", &with_rname(vec![var, predicate_argument(codes)], &rname));
                steps.push(JoinStep { how: "inner", right, equalities, all_equalities, rname });
            }
            for join in &item.joins {
                self.join(join, scope, &mut chain, &mut steps)?;
            }
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

    fn join(&mut self, join: &Join, scope: &mut Scope, chain: &mut Chain, steps: &mut Vec<JoinStep>) -> Result<(), TranspileError> {
        let (how, constraint) = match &join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => ("inner", c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => ("left", c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => ("right", c),
            JoinOperator::FullOuter(c) => ("outer", c),
            JoinOperator::CrossJoin(c) => ("cross", c),
            JoinOperator::Semi(c) | JoinOperator::LeftSemi(c) => ("semi", c),
            JoinOperator::Anti(c) | JoinOperator::LeftAnti(c) => ("anti", c),
            _ => return Err(TranspileError::unsupported_at("this kind of join", &join.relation)),
        };
        self.add_source(&join.relation, scope)?;
        let right = scope.sources.len() - 1;
        let var = scope.sources[right].var.clone();
        let mut predicates: Vec<String> = Vec::new();
        let mut equalities = Vec::new();
        let mut all_equalities = true;
        match constraint {
            JoinConstraint::On(on) => {
                let mut parts = Vec::new();
                split_conjuncts(on, &mut parts);
                let cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
                for part in parts {
                    predicates.push(self.expr(part, &cx)?.code);
                    match column_equality(part, scope) {
                        Some(pair) => equalities.push(pair),
                        None => all_equalities = false,
                    }
                }
            }
            JoinConstraint::Using(names) => {
                for name in names {
                    let column = object_name(name);
                    let left = (0..right)
                        .find(|i| scope.sources[*i].columns.iter().any(|c| c.name.eq_ignore_ascii_case(&column)))
                        .ok_or_else(|| TranspileError::resolve_at(format!("no table before the join has the USING column `{column}`"), name))?;
                    let left_ref = Resolved { depth: 0, source: left, column: exact_column(scope, left, &column), ty: None };
                    let right_ref = Resolved { depth: 0, source: right, column: exact_column(scope, right, &column), ty: None };
                    predicates.push(format!("{} == {}", scope.reference(&left_ref), scope.reference(&right_ref)));
                    equalities.push(((left, left_ref.column.clone()), (right, right_ref.column.clone())));
                    if how != "outer" {
                        scope.using.push((column.clone(), left));
                    }
                }
            }
            JoinConstraint::None if how == "cross" => {}
            JoinConstraint::Natural => return Err(TranspileError::unsupported_at("NATURAL JOIN", &join.relation)),
            _ => return Err(TranspileError::unsupported_at("a join without a condition", &join.relation)),
        }
        let rname = right_name_template(scope, steps, right);
        if how == "cross" {
            chain.call("cross_join", &with_rname(vec![var], &rname));
        } else {
            let mut args = vec![var, predicate_argument(predicates)];
            if how != "inner" {
                args.push(format!("how={}", python::string(how)));
            }
            chain.call("join", &with_rname(args, &rname));
        }
        steps.push(JoinStep { how, right, equalities, all_equalities: all_equalities && how == "inner", rname });
        Ok(())
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
                    let columns = table.columns.iter().map(|(c, t)| Column { name: c.clone(), ty: Some(t.clone()) }).collect();
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
                let root = Scope { parent: None, ..Scope::default() };
                let mut rel = self.query(subquery, &root)?;
                if !alias.columns.is_empty() {
                    rel = rename_columns(rel, &alias.columns.iter().map(|c| c.name.value.clone()).collect::<Vec<_>>(), &alias.name)?;
                }
                let var = self.bind(&alias.name.value, &rel.chain);
                scope.sources.push(Source { qualifier: alias.name.value.clone(), var: var.clone(), origin: format!("derived:{var}"), columns: rel.columns });
                Ok(())
            }
            TableFactor::NestedJoin { .. } => Err(TranspileError::unsupported_at("parenthesized joins", factor)),
            TableFactor::Derived { lateral: true, .. } => Err(TranspileError::unsupported_at("LATERAL subqueries", factor)),
            _ => Err(TranspileError::unsupported_at("this kind of FROM item (table functions, samples, ...)", factor)),
        }
    }
}

/// One join of a chain, kept to work out the column names Ibis gives the joined table.
struct JoinStep {
    how: &'static str,
    right: usize,
    equalities: Vec<((usize, String), (usize, String))>,
    all_equalities: bool,
    /// How colliding right-hand names are renamed (Ibis's `rname`).
    rname: String,
}

const DEFAULT_RNAME: &str = "{name}_right";

/// Ibis renames a colliding right-hand column `{name}_right`; when that name is taken too (a
/// third table with an `id`), the join names the right table instead: `{name}_<variable>`.
fn right_name_template(scope: &Scope, steps: &[JoinStep], right: usize) -> String {
    let (names, _) = join_output_names(scope, steps);
    let taken: HashSet<&String> = names.values().collect();
    let collides = scope.sources[right].columns.iter().any(|c| taken.contains(&format!("{}_right", c.name)));
    if collides { format!("{{name}}_{}", scope.sources[right].var) } else { DEFAULT_RNAME.to_string() }
}

fn with_rname(mut args: Vec<String>, rname: &str) -> Vec<String> {
    if rname != DEFAULT_RNAME {
        args.push(format!("rname={}", python::string(rname)));
    }
    args
}

/// Ibis's names for the columns of a join chain: a right-hand column whose name is taken is
/// merged into the column of that name when an inner equi-join makes them equal (returned too,
/// as (source, column) -> the column kept), and is otherwise renamed `{name}_right`.
#[allow(clippy::type_complexity)]
fn join_output_names(scope: &Scope, steps: &[JoinStep]) -> (HashMap<(usize, String), String>, HashMap<(usize, String), (usize, String)>) {
    let mut names: HashMap<(usize, String), String> = HashMap::new();
    let mut merged = HashMap::new();
    let mut taken: Vec<(String, (usize, String))> = Vec::new();
    let mut groups: Vec<HashSet<(usize, String)>> = Vec::new();
    for column in &scope.sources[0].columns {
        names.insert((0, column.name.clone()), column.name.clone());
        taken.push((column.name.clone(), (0, column.name.clone())));
    }
    for step in steps {
        if step.how == "semi" || step.how == "anti" {
            continue;
        }
        if step.all_equalities {
            for (a, b) in &step.equalities {
                let ia = groups.iter().position(|g| g.contains(a));
                let ib = groups.iter().position(|g| g.contains(b));
                match (ia, ib) {
                    (Some(x), Some(y)) if x != y => {
                        let other = groups.remove(x.max(y));
                        groups[x.min(y)].extend(other);
                    }
                    (Some(x), None) => {
                        groups[x].insert(b.clone());
                    }
                    (None, Some(y)) => {
                        groups[y].insert(a.clone());
                    }
                    (None, None) => groups.push([a.clone(), b.clone()].into_iter().collect()),
                    _ => {}
                }
            }
        }
        for column in &scope.sources[step.right].columns {
            let key = (step.right, column.name.clone());
            match taken.iter().find(|(name, _)| name == &column.name) {
                None => {
                    names.insert(key.clone(), column.name.clone());
                    taken.push((column.name.clone(), key));
                }
                Some((_, owner)) => {
                    let equal = groups.iter().any(|g| g.contains(owner) && g.contains(&key));
                    if equal {
                        names.insert(key.clone(), column.name.clone());
                        merged.insert(key, owner.clone());
                    } else {
                        let renamed = step.rname.replace("{name}", &column.name);
                        names.insert(key.clone(), renamed.clone());
                        taken.push((renamed, key));
                    }
                }
            }
        }
    }
    (names, merged)
}

/// `a.x = b.y` between two columns of the current block.
fn column_equality(expr: &Expr, scope: &Scope) -> Option<((usize, String), (usize, String))> {
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = expr else { return None };
    let left = plain_column(left, scope)?;
    let right = plain_column(right, scope)?;
    (left.depth == 0 && right.depth == 0).then_some(((left.source, left.column), (right.source, right.column)))
}

/// The sources of the current block that `expr` reads, or None when it holds a subquery or a
/// name that does not resolve here.
fn sources_of(expr: &Expr, scope: &Scope) -> Option<Vec<usize>> {
    if contains_subquery(expr) {
        return None;
    }
    let mut used = Vec::new();
    let mut ok = true;
    crate::expr::visit_columns(expr, &mut |qualifier, name, node| match scope.resolve(qualifier, name, node.span()) {
        Ok(resolved) if resolved.depth == 0 => {
            if !used.contains(&resolved.source) {
                used.push(resolved.source);
            }
        }
        _ => ok = false,
    });
    ok.then_some(used)
}

pub(crate) fn plain_column(expr: &Expr, scope: &Scope) -> Option<Resolved> {
    match expr {
        Expr::Identifier(ident) => scope.resolve(None, &ident.value, ident.span).ok(),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => scope.resolve(Some(&parts[0].value), &parts[1].value, parts[1].span).ok(),
        Expr::Nested(inner) => plain_column(inner, scope),
        _ => None,
    }
}

/// The output name SQL gives a bare column reference.
fn column_name_of(expr: &Expr, scope: &Scope) -> Option<String> {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => plain_column(expr, scope).map(|r| r.column),
        Expr::Nested(inner) => column_name_of(inner, scope),
        _ => None,
    }
}

fn exact_column(scope: &Scope, source: usize, name: &str) -> String {
    scope.sources[source].columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)).map(|c| c.name.clone()).unwrap_or_else(|| name.to_string())
}

fn generated_name(expr: &Expr, index: usize) -> String {
    if let Expr::Function(function) = expr {
        let name = function.name.to_string().to_ascii_lowercase();
        let argument = crate::expr::first_column_name(expr);
        return match argument {
            Some(column) => python::variable_name(&format!("{name}_{column}")),
            None => python::variable_name(&name),
        };
    }
    format!("col{}", index + 1)
}

fn split_conjuncts<'q>(expr: &'q Expr, out: &mut Vec<&'q Expr>) {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_conjuncts(left, out);
            split_conjuncts(right, out);
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => split_conjuncts(inner, out),
        _ => out.push(expr),
    }
}

fn predicate_argument(mut predicates: Vec<String>) -> String {
    if predicates.len() == 1 { predicates.remove(0) } else { format!("[{}]", predicates.join(", ")) }
}

/// `(name, code, passthrough)` items as `select` arguments: plain columns positionally, computed
/// ones by keyword, in the SELECT order.
fn select_arguments(values: &[(String, String, Option<String>)]) -> Vec<String> {
    let prefix = values.iter().take_while(|(name, _, from)| from.as_deref() == Some(name.as_str())).count();
    let mut args: Vec<String> = values[..prefix].iter().map(|(_, code, _)| code.clone()).collect();
    args.extend(named_arguments(&values[prefix..]));
    args
}

fn named_arguments(values: &[(String, String, Option<String>)]) -> Vec<String> {
    values
        .iter()
        .map(|(name, code, _)| (name, deferred_safe(code)))
        .map(|(name, code)| {
            if python::is_keyword_argument(name) && !is_reserved_keyword(name) {
                format!("{name}={code}")
            } else {
                format!("**{{{}: {code}}}", python::string(name))
            }
        })
        .collect()
}

/// Keyword names that `select`, `aggregate` and `mutate` take for themselves.
fn is_reserved_keyword(name: &str) -> bool {
    matches!(name, "by" | "metrics" | "having" | "exprs" | "named_exprs")
}

pub(crate) fn sort_key(code: String, options: &sqlparser::ast::OrderByOptions) -> String {
    match (ascending(options), options.nulls_first) {
        (true, None | Some(false)) => code,
        (false, None | Some(false)) => format!("ibis.desc({code})"),
        (true, Some(true)) => format!("ibis.asc({code}, nulls_first=True)"),
        (false, Some(true)) => format!("ibis.desc({code}, nulls_first=True)"),
    }
}

pub(crate) fn ascending(options: &sqlparser::ast::OrderByOptions) -> bool {
    !matches!(options.sort, Some(sqlparser::ast::OrderBySort::Desc))
}

/// A non-negative integer literal (`ORDER BY 2`, `split_part(s, ',', 2)`).
pub(crate) fn positional(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// GROUP BY items may be positions or SELECT aliases; both stand for the item's expression.
fn group_key_expr(expr: &Expr, items: &[Item], scope: &Scope) -> Result<Expr, TranspileError> {
    if let Some(position) = positional(expr) {
        return items
            .get(position.wrapping_sub(1))
            .map(|i| i.expr.clone())
            .ok_or_else(|| TranspileError::resolve_at(format!("GROUP BY position {position} is not in the SELECT list"), expr));
    }
    if let Expr::Identifier(ident) = expr
        && scope.resolve(None, &ident.value, ident.span).is_err()
        && let Some(item) = items.iter().find(|i| i.name.eq_ignore_ascii_case(&ident.value))
    {
        return Ok(item.expr.clone());
    }
    Ok(expr.clone())
}

/// The grouping sets of a GROUP BY with ROLLUP, CUBE or GROUPING SETS, as lists of key
/// expressions (before alias and position resolution); `None` for a plain GROUP BY.
fn expand_grouping_sets(exprs: &[Expr], modifiers: &[GroupByWithModifier], at: &Select) -> Result<Option<Vec<Vec<Expr>>>, TranspileError> {
    let has_sets = exprs.iter().any(|e| matches!(e, Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)));
    if modifiers.is_empty() && !has_sets {
        return Ok(None);
    }
    let rollup = |lists: &[Vec<Expr>]| -> Vec<Vec<Expr>> { (0..=lists.len()).rev().map(|n| lists[..n].concat()).collect() };
    let cube = |lists: &[Vec<Expr>]| -> Vec<Vec<Expr>> {
        let n = lists.len();
        (0..1u32 << n).rev().map(|mask| (0..n).filter(|i| mask & (1 << (n - 1 - i)) != 0).flat_map(|i| lists[i].clone()).collect()).collect()
    };
    let too_many = || TranspileError::unsupported_at("more than 64 grouping sets", at);
    let mut sets: Vec<Vec<Expr>> = vec![Vec::new()];
    for expr in exprs {
        if let Expr::Rollup(lists) | Expr::Cube(lists) | Expr::GroupingSets(lists) = expr
            && lists.len() > 64
        {
            return Err(too_many());
        }
        if matches!(expr, Expr::Cube(lists) if lists.len() > 6) {
            return Err(too_many());
        }
        let options = match expr {
            Expr::Rollup(lists) => rollup(lists),
            Expr::Cube(lists) => cube(lists),
            Expr::GroupingSets(lists) => lists.clone(),
            other => vec![vec![other.clone()]],
        };
        if sets.len() * options.len() > 64 {
            return Err(too_many());
        }
        sets = sets.iter().flat_map(|set| options.iter().map(move |option| [set.clone(), option.clone()].concat())).collect();
    }
    for modifier in modifiers {
        let whole: Vec<Vec<Expr>> = match (modifier, sets.as_slice()) {
            (GroupByWithModifier::Cube, [only]) if only.len() > 6 => return Err(too_many()),
            (GroupByWithModifier::Rollup | GroupByWithModifier::Cube, [only]) => only.iter().map(|e| vec![e.clone()]).collect(),
            _ => return Err(TranspileError::unsupported_at(&format!("GROUP BY ... {modifier}"), at)),
        };
        sets = if matches!(modifier, GroupByWithModifier::Rollup) { rollup(&whole) } else { cube(&whole) };
    }
    if sets.len() > 64 {
        return Err(too_many());
    }
    Ok(Some(sets))
}

/// `GROUPING(a, b, ...)` calls, each once.
fn collect_grouping_calls(expr: &Expr, out: &mut Vec<Expr>) {
    crate::expr::visit(expr, &mut |e| {
        if let Expr::Function(function) = e
            && function.over.is_none()
            && crate::expr::function_name(function) == "grouping"
        {
            if !out.contains(e) {
                out.push(e.clone());
            }
            return false;
        }
        !matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: sqlparser::ast::InTarget::Subquery(_), .. })
    });
}

/// The value of a `GROUPING(...)` call in the grouping set that `in_set` describes.
fn grouping_mask(call: &Expr, in_set: &dyn Fn(&Expr) -> bool) -> Result<u64, TranspileError> {
    let Expr::Function(function) = call else { unreachable!("collected as a function call") };
    let sqlparser::ast::FunctionArguments::List(list) = &function.args else {
        return Err(TranspileError::resolve_at("GROUPING() needs the grouped columns as arguments".into(), call));
    };
    let mut mask = 0u64;
    for arg in &list.args {
        let sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(arg)) = arg else {
            return Err(TranspileError::resolve_at("GROUPING() takes column expressions".into(), call));
        };
        mask = (mask << 1) | u64::from(!in_set(arg));
    }
    Ok(mask)
}

fn sorts_after_windows(order_by: Option<&OrderBy>, items: &[Item], distinct: bool) -> bool {
    order_by.is_some() && !distinct && items.iter().any(|i| contains_window(&i.expr))
}

/// The type marker of a bare `NULL` column, whose type a set operation takes from the other side.
const NULL_TYPE: &str = "null";

fn null_type(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Null) => Some(NULL_TYPE.to_string()),
        Expr::Nested(inner) => null_type(inner),
        _ => None,
    }
}

fn order_by_exprs(order_by: Option<&OrderBy>) -> Vec<&Expr> {
    match order_by.map(|o| &o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|o| &o.expr).collect(),
        _ => Vec::new(),
    }
}

fn collect_aggregate_calls(expr: &Expr, out: &mut Vec<Expr>) {
    crate::expr::visit(expr, &mut |e| {
        if is_aggregate_call(e) {
            if !out.contains(e) {
                out.push(e.clone());
            }
            return false;
        }
        !matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: sqlparser::ast::InTarget::Subquery(_), .. })
    });
}

/// `COUNT(*) FILTER (WHERE ...)` and `count_if(...)` become `_.count(where=...)`, whose condition
/// Ibis does not dereference through a join chain: over joins they need the join bound to a name.
fn counts_rows_conditionally(expr: &Expr) -> bool {
    let mut found = false;
    crate::expr::visit(expr, &mut |e| {
        if let Expr::Function(function) = e {
            let name = crate::expr::function_name(function);
            let star = matches!(&function.args, sqlparser::ast::FunctionArguments::List(list)
                if list.args.iter().any(|a| matches!(a, sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Wildcard))));
            found |= (name == "count" && star && function.filter.is_some()) || name == "count_if" || name == "countif";
        }
        !found
    });
    found
}

/// Whether `expr` reads a column outside of any aggregate call.
fn refers_outside_aggregates(expr: &Expr) -> bool {
    let mut found = false;
    crate::expr::visit(expr, &mut |e| {
        if is_aggregate_call(e) || matches!(e, Expr::Subquery(_) | Expr::Exists { .. }) {
            return false;
        }
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            found = true;
        }
        true
    });
    found
}

fn is_constant(expr: &Expr) -> bool {
    !refers_outside_aggregates(expr) && !contains_aggregate(expr)
}

fn select_item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

fn reject_select_extras(select: &Select) -> Result<(), TranspileError> {
    let extra = if select.top.is_some() {
        Some("TOP")
    } else if select.into.is_some() {
        Some("SELECT INTO")
    } else if !select.lateral_views.is_empty() {
        Some("LATERAL VIEW")
    } else if select.prewhere.is_some() {
        Some("PREWHERE")
    } else if !select.connect_by.is_empty() {
        Some("CONNECT BY")
    } else if !select.cluster_by.is_empty() || !select.distribute_by.is_empty() || !select.sort_by.is_empty() {
        Some("CLUSTER/DISTRIBUTE/SORT BY")
    } else if select.value_table_mode.is_some() {
        Some("SELECT AS VALUE/STRUCT")
    } else if select.exclude.is_some() {
        Some("EXCLUDE")
    } else {
        None
    };
    match extra {
        Some(construct) => Err(TranspileError::unsupported_at(construct, select)),
        None => Ok(()),
    }
}

fn reject_wildcard_options(options: &sqlparser::ast::WildcardAdditionalOptions, item: &SelectItem) -> Result<(), TranspileError> {
    if options.opt_ilike.is_some()
        || options.opt_exclude.is_some()
        || options.opt_except.is_some()
        || options.opt_replace.is_some()
        || options.opt_rename.is_some()
    {
        return Err(TranspileError::unsupported_at("* with EXCLUDE/REPLACE/RENAME", item));
    }
    Ok(())
}

fn object_name(name: &ObjectName) -> String {
    last_name_part(name)
}

fn last_name_part(name: &ObjectName) -> String {
    name.0.last().and_then(|part| part.as_ident()).map(|i| i.value.clone()).unwrap_or_else(|| name.to_string())
}

fn ident_expr(name: &str) -> Expr {
    Expr::Identifier(Ident::new(name))
}

fn qualified_expr(qualifier: &str, name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(qualifier), Ident::new(name)])
}

/// A source standing for the output of the relation being built, reached through `_`.
fn output_source(columns: &[Column]) -> Source {
    Source { qualifier: String::new(), var: "_".into(), origin: "output".into(), columns: columns.to_vec() }
}

fn rename_columns(rel: Rel, names: &[String], at: &Ident) -> Result<Rel, TranspileError> {
    if names.len() != rel.columns.len() {
        return Err(TranspileError::resolve_in(format!("{} column names given for {} columns", names.len(), rel.columns.len()), at.span));
    }
    let values: Vec<(String, String, Option<String>)> =
        names.iter().zip(&rel.columns).map(|(new, old)| (new.clone(), python::attribute("_", &old.name), (new == &old.name).then(|| new.clone()))).collect();
    let mut chain = rel.chain;
    if values.iter().any(|(_, _, same)| same.is_none()) {
        chain.call("select", &select_arguments(&values));
    }
    let columns = names.iter().zip(rel.columns).map(|(n, c)| Column { name: n.clone(), ty: c.ty }).collect();
    Ok(Rel { chain, columns })
}

/// A relation used as an argument: a bare variable, or its chain inline.
pub(crate) fn inline_relation(chain: &Chain) -> String {
    chain.inline()
}
