//! SELECT blocks with GROUP BY or aggregates: the keys and metrics of one
//! `group_by(...).aggregate(...)`, then HAVING, QUALIFY, ORDER BY and the projection of the
//! aggregated rows.

use super::Translator;
use super::grouping_sets::{GroupedColumns, collect_grouping_calls, expand_grouping_sets};
use super::order::sorts_after_windows;
use super::select::{Block, Item, Output, named_arguments, select_arguments};
use super::set_operation::null_type;
use crate::ast::{
    column_name_of, contains_aggregate, contains_window, is_aggregate_call, is_constant, order_by_exprs, positional, refers_outside_aggregates, visit,
};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Aggregation, Cx, Phase, deferred_safe, ibis_type, value_type};
use crate::python;
use crate::scope::{Column, Scope};
use sqlparser::ast::{Expr, GroupByExpr, InTarget, Select};
use std::collections::HashSet;

/// The GROUP BY of a block: its keys, and its grouping sets where it has ROLLUP, CUBE or
/// GROUPING SETS.
pub(super) struct Grouping {
    pub keys: Vec<Expr>,
    pub sets: Option<Vec<Vec<Expr>>>,
}

impl Grouping {
    pub fn of(select: &Select, items: &[Item], scope: &Scope) -> Result<Grouping, TranspileError> {
        Ok(match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => match expand_grouping_sets(exprs, modifiers, select)? {
                None => Grouping { keys: exprs.iter().map(|e| Grouping::key_expr(e, items, scope)).collect::<Result<_, _>>()?, sets: None },
                Some(sets) => {
                    let sets: Vec<Vec<Expr>> =
                        sets.iter().map(|set| set.iter().map(|e| Grouping::key_expr(e, items, scope)).collect::<Result<_, _>>()).collect::<Result<_, _>>()?;
                    let mut keys: Vec<Expr> = Vec::new();
                    for key in sets.iter().flatten() {
                        if !keys.contains(key) {
                            keys.push(key.clone());
                        }
                    }
                    Grouping { keys, sets: Some(sets) }
                }
            },
            GroupByExpr::All(_) => {
                Grouping { keys: items.iter().filter(|i| !contains_aggregate(&i.expr) && !is_constant(&i.expr)).map(|i| i.expr.clone()).collect(), sets: None }
            }
        })
    }

    /// GROUP BY items may be positions or SELECT aliases; both stand for the item's expression.
    pub fn key_expr(expr: &Expr, items: &[Item], scope: &Scope) -> Result<Expr, TranspileError> {
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
}

/// The columns one aggregation produces: keys, then metrics.
struct Metrics {
    aggregation: Aggregation,
    keys: Vec<Output>,
    metrics: Vec<Output>,
    /// Every output name taken so far.
    taken: HashSet<String>,
}

impl Translator<'_> {
    /// SELECT with GROUP BY or aggregates: `group_by(keys).aggregate(metrics)`, HAVING as a
    /// filter on the result, ORDER BY, and a final projection where the SELECT list is more than
    /// the keys and metrics in order. With grouping sets (ROLLUP, CUBE, GROUPING SETS), one
    /// aggregation per set, united (see [`Translator::grouping_set_union`]).
    pub(super) fn aggregate_block(&mut self, chain: &mut Chain, block: &Block, grouping: Grouping) -> Result<Vec<Column>, TranspileError> {
        let Block { select, scope, items, order_by, distinct } = *block;
        self.aggregating_built_rows = !chain.is_plain();
        let metrics = self.metrics(block, &grouping.keys);
        self.aggregating_built_rows = false;
        let Metrics { mut aggregation, keys: key_args, metrics: metric_args, mut taken } = metrics?;
        if key_args.is_empty() && metric_args.is_empty() {
            return Err(TranspileError::unsupported_at("an aggregation without keys or aggregates", select));
        }
        let order_exprs = order_by_exprs(order_by);
        let mut grouping_calls = Vec::new();
        for expr in items.iter().map(|i| &i.expr).chain(select.having.iter()).chain(select.qualify.iter()).chain(order_exprs.iter().copied()) {
            collect_grouping_calls(expr, &mut grouping_calls);
        }
        let mut flags = Vec::new();
        if grouping.sets.is_some() || !grouping_calls.is_empty() {
            let sets = grouping.sets.unwrap_or_else(|| vec![grouping.keys.clone()]);
            for call in grouping_calls {
                let name = (1..).map(|n| format!("grouping_{n}")).find(|name| !taken.contains(name)).expect("a free name");
                taken.insert(name.clone());
                flags.push((call.clone(), name.clone()));
                aggregation.metrics.push((call, name));
            }
            let columns = GroupedColumns { key_args: &key_args, keys: &aggregation.keys, metric_args: &metric_args, flags: &flags };
            *chain = self.grouping_set_union(chain, scope, &sets, &columns)?;
        } else if metric_args.is_empty() {
            chain.call("select", &select_arguments(&key_args));
            chain.call("distinct", &[]);
        } else {
            if !key_args.is_empty() {
                chain.call("group_by", &select_arguments(&key_args));
            }
            chain.call("aggregate", &named_arguments(&metric_args));
        }
        let aliases = block.aliases();
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
        let produced: Vec<&String> = key_args.iter().chain(&metric_args).map(|o| &o.name).chain(flags.iter().map(|(_, n)| n)).collect();
        let cx = Cx { scope: &post, phase: Phase::Aggregated(&aggregation), aliases: &[], prefer_alias: false };
        let mut columns = Vec::new();
        let mut values = Vec::new();
        for item in items {
            let py = self.expr(&item.expr, &cx)?;
            let passthrough = py.code == python::attribute("_", &item.name);
            values.push(Output { name: item.name.clone(), code: py.value(), source_column: passthrough.then(|| item.name.clone()) });
            let null = null_type(&item.expr);
            let (ty, value_ty) = (null.clone().or_else(|| ibis_type(&item.expr, &cx)), null.or_else(|| value_type(&item.expr, &cx)));
            columns.push(Column { name: item.name.clone(), ty, value_ty });
        }
        let same_names = produced.len() == items.len() && produced.iter().zip(items).all(|(name, item)| **name == item.name);
        if let (Some(order_by), true) = (order_by, sort_after_windows) {
            self.sort_after_windows(chain, order_by, items, &values, &cx)?;
        } else if !same_names || values.iter().any(|v| v.source_column.is_none()) {
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

    /// The keys, named after their SELECT item or column, and the metrics: SELECT items that are
    /// aggregates through and through keep their names; the aggregates used anywhere else
    /// (inside expressions, HAVING, QUALIFY, ORDER BY) become hidden metrics `_agg1`, `_agg2`, ...
    fn metrics(&mut self, block: &Block, keys: &[Expr]) -> Result<Metrics, TranspileError> {
        let Block { select, scope, items, order_by, .. } = *block;
        let source_cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut taken: HashSet<String> = HashSet::new();
        let mut aggregation = Aggregation::default();
        let mut key_args = Vec::new();
        for (index, key) in keys.iter().enumerate() {
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
            let source_column = (column.as_deref() == Some(name.as_str())).then(|| name.clone());
            key_args.push(Output { name: name.clone(), code, source_column });
            aggregation.keys.push((key.clone(), name));
        }
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
                metric_args.push(Output::computed(item.name.clone(), code));
                aggregation.metrics.push((item.expr.clone(), item.name.clone()));
            }
        }
        // Items computed whole as metrics need none of their inner aggregates again.
        let mut hidden_sources: Vec<&Expr> = items.iter().map(|i| &i.expr).filter(|e| !aggregation.metrics.iter().any(|(metric, _)| metric == *e)).collect();
        hidden_sources.extend(select.having.iter());
        hidden_sources.extend(select.qualify.iter());
        hidden_sources.extend(order_by_exprs(order_by));
        let mut calls = Vec::new();
        for expr in hidden_sources {
            collect_aggregate_calls(expr, &mut calls);
        }
        let mut hidden = 0;
        for call in calls {
            if aggregation.metrics.iter().any(|(e, _)| e == &call) {
                continue;
            }
            hidden += 1;
            let name = format!("_agg{hidden}");
            let code = self.expr(&call, &source_cx)?.value();
            metric_args.push(Output::computed(name.clone(), code));
            aggregation.metrics.push((call, name));
        }
        Ok(Metrics { aggregation, keys: key_args, metrics: metric_args, taken })
    }
}

/// The aggregate calls of `expr`, each once, outside subqueries.
fn collect_aggregate_calls(expr: &Expr, out: &mut Vec<Expr>) {
    visit(expr, &mut |e| {
        if is_aggregate_call(e) {
            if !out.contains(e) {
                out.push(e.clone());
            }
            return false;
        }
        !matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: InTarget::Subquery(_), .. })
    });
}
