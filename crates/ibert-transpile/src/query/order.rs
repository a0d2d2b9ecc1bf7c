//! ORDER BY and LIMIT: sort keys by position, alias or expression, sorts that must follow a
//! window, and `limit(n, offset=m)`.

use super::select::{Item, Output, named_arguments, select_arguments};
use super::{Rel, Translator};
use crate::ast::{contains_window, ident_expr, positional};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Cx, Phase, deferred_safe};
use crate::python;
use crate::scope::{Column, Scope, Source};
use sqlparser::ast::{Expr, LimitClause, OrderBy, OrderByKind, OrderByOptions, OrderBySort, Value};
use std::collections::HashSet;

impl Translator<'_> {
    /// ORDER BY and LIMIT over the output columns of a finished relation (set operations).
    pub(super) fn order_and_limit_outputs(&mut self, rel: Rel, order_by: Option<&OrderBy>, limit: Option<&LimitClause>) -> Result<Rel, TranspileError> {
        let mut rel = rel;
        if let Some(order_by) = order_by {
            self.order_by_outputs(&mut rel.chain, order_by, &rel.columns)?;
        }
        self.limit(&mut rel.chain, limit)?;
        Ok(rel)
    }

    /// ORDER BY that may only name output columns (after DISTINCT or a set operation), through `_`.
    pub(super) fn order_by_outputs(&mut self, chain: &mut Chain, order_by: &OrderBy, columns: &[Column]) -> Result<(), TranspileError> {
        let outputs = Scope { sources: vec![output_source(columns)], ..Scope::default() };
        let items: Vec<Item> = columns.iter().map(|c| Item { name: c.name.clone(), expr: ident_expr(&c.name) }).collect();
        let cx = Cx { scope: &outputs, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let keys = self.order_keys(order_by, &items, &cx, false)?;
        chain.call("order_by", &keys);
        Ok(())
    }

    /// ORDER BY over a SELECT list with window functions: a sort below a window is lost (the
    /// window reorders rows), so the list is computed first (`mutate`, keeping every column the
    /// sort may need), then sorted, then projected to the list.
    pub(super) fn sort_after_windows(
        &mut self,
        chain: &mut Chain,
        order_by: &OrderBy,
        items: &[Item],
        values: &[Output],
        cx: &Cx,
    ) -> Result<(), TranspileError> {
        chain.call("mutate", &named_arguments(values));
        let keys = self.order_keys(order_by, items, cx, true)?;
        chain.call("order_by", &keys);
        let outputs: Vec<Output> =
            values.iter().map(|v| Output { name: v.name.clone(), code: python::attribute("_", &v.name), source_column: Some(v.name.clone()) }).collect();
        chain.call("select", &select_arguments(&outputs));
        Ok(())
    }

    /// Sort keys; with `items_are_columns`, a key naming a SELECT item (by alias, position or the
    /// same expression) is that item's column of the current table.
    pub(super) fn order_keys(&mut self, order_by: &OrderBy, items: &[Item], cx: &Cx, items_are_columns: bool) -> Result<Vec<String>, TranspileError> {
        let OrderByKind::Expressions(exprs) = &order_by.kind else {
            return Err(TranspileError::Unsupported { construct: "ORDER BY ALL".into(), line: 0, column: 0 });
        };
        let mut keys = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut seen_codes: HashSet<String> = HashSet::new();
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
            // A key sorted by already cannot change the order (and Ibis refuses it twice).
            if !seen_codes.insert(code.clone()) {
                continue;
            }
            // Ibis names sort keys and refuses two of one name (`inv.d_moy`, `inv2.d_moy`, or
            // the struct fields `a.loc["city"]`, `b.loc["city"]`).
            if let Some(name) = python::attribute_name(&code).or_else(|| struct_field_name(&code)) {
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

    pub(super) fn limit(&mut self, chain: &mut Chain, limit: Option<&LimitClause>) -> Result<(), TranspileError> {
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
                    Value::Number(n, _) if n.parse::<u64>().is_ok() => Ok(n.clone()),
                    Value::Null => Ok("None".into()),
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
}

/// Whether the ORDER BY must follow the SELECT list's windows, which would undo a sort below them.
pub(super) fn sorts_after_windows(order_by: Option<&OrderBy>, items: &[Item], distinct: bool) -> bool {
    order_by.is_some() && !distinct && items.iter().any(|i| contains_window(&i.expr))
}

/// A source standing for the output of the relation being built, reached through `_`.
fn output_source(columns: &[Column]) -> Source {
    Source { qualifier: String::new(), var: "_".into(), origin: "output".into(), columns: columns.to_vec() }
}

/// A sort key with its direction and NULL placement.
pub(crate) fn sort_key(code: String, options: &OrderByOptions) -> String {
    match (ascending(options), options.nulls_first) {
        (true, None | Some(false)) => code,
        (false, None | Some(false)) => format!("ibis.desc({code})"),
        (true, Some(true)) => format!("ibis.asc({code}, nulls_first=True)"),
        (false, Some(true)) => format!("ibis.desc({code}, nulls_first=True)"),
    }
}

pub(crate) fn ascending(options: &OrderByOptions) -> bool {
    !matches!(options.sort, Some(OrderBySort::Desc))
}

/// The field name of code ending in a struct field access, `x.loc["city"]` -> `city`.
fn struct_field_name(code: &str) -> Option<String> {
    let field = code.strip_suffix("\"]")?;
    let start = field.rfind("[\"")?;
    let name = &field[start + 2..];
    (!name.contains(['"', '\\'])).then(|| name.to_string())
}
