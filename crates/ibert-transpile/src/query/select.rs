//! One SELECT block: FROM and WHERE, the SELECT list with its stars expanded, DISTINCT and
//! DISTINCT ON, and the projection of a block without aggregation.

use super::aggregate::Grouping;
use super::from::object_name;
use super::order::sorts_after_windows;
use super::set_operation::null_type;
use super::{Rel, Translator};
use crate::ast::{
    column_name_of, contains_aggregate, contains_subquery, contains_window, counts_rows_conditionally, first_column_name, order_by_exprs, qualified_expr,
    select_item_expr, split_conjuncts,
};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Cx, Phase, deferred_safe, field_access, ibis_type, value_type};
use crate::python;
use crate::scope::{Column, Scope};
use sqlparser::ast::{
    Distinct, ExcludeSelectItem, Expr, IdentWithAlias, LimitClause, OrderBy, RenameSelectItem, Select, SelectItem, SelectItemQualifiedWildcardKind,
    WildcardAdditionalOptions,
};
use std::collections::HashSet;

/// One output column of a SELECT list.
pub(super) struct Item {
    pub name: String,
    pub expr: Expr,
}

/// A SELECT block as its projection or aggregation reads it.
pub(super) struct Block<'a> {
    pub select: &'a Select,
    pub scope: &'a Scope<'a>,
    pub items: &'a [Item],
    pub order_by: Option<&'a OrderBy>,
    pub distinct: bool,
}

impl Block<'_> {
    /// SELECT items by name, for ORDER BY, HAVING and QUALIFY that refer to them.
    pub fn aliases(&self) -> Vec<(String, Expr)> {
        self.items.iter().map(|i| (i.name.clone(), i.expr.clone())).collect()
    }
}

/// One argument of a `select`, `aggregate`, `group_by` or `mutate` call.
#[derive(Clone, Debug)]
pub(crate) struct Output {
    pub name: String,
    pub code: String,
    /// The input column the value is, unchanged (a plain column reference); `None` when computed.
    pub source_column: Option<String>,
}

impl Output {
    pub fn computed(name: String, code: String) -> Output {
        Output { name, code, source_column: None }
    }

    /// Whether the value is the input column of its own name, which needs no keyword. The code
    /// must name it too: a column renamed by a join (`joined.currency_right` for `a.currency`)
    /// keeps the SQL's name only as a keyword.
    fn passes_through(&self) -> bool {
        self.source_column.as_deref() == Some(self.name.as_str()) && python::attribute_name(&self.code).as_deref() == Some(self.name.as_str())
    }
}

impl Translator<'_> {
    pub(super) fn select(&mut self, select: &Select, order_by: Option<&OrderBy>, limit: Option<&LimitClause>, outer: &Scope) -> Result<Rel, TranspileError> {
        let inlined = crate::named_windows::inline_named_windows(select)?;
        let select = inlined.as_ref().unwrap_or(select);
        reject_select_extras(select)?;
        if select.from.is_empty() {
            return self.select_without_from(select, order_by, limit, outer);
        }
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
        let mut chain = self.relation_chain(&select.from, &mut scope, &mut conjuncts, needs_bound_join, select)?;
        let items = self.select_items(&select.projection, &scope)?;
        if !conjuncts.is_empty() {
            let cx = Cx { scope: &scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
            let mut args = Vec::new();
            for conjunct in conjuncts {
                args.push(self.expr(conjunct, &cx)?.code);
            }
            chain.call("filter", &args);
        }
        let grouping = Grouping::of(select, &items, &scope)?;
        let order_exprs = order_by_exprs(order_by);
        let aggregated = !grouping.keys.is_empty()
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
        let block = Block { select, scope: &scope, items: &items, order_by, distinct };
        let columns = if aggregated { self.aggregate_block(&mut chain, &block, grouping)? } else { self.projection_block(&mut chain, &block)? };
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
            keys.push(self.expr(&Grouping::key_expr(expr, items, scope)?, &cx)?.value());
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
    fn projection_block(&mut self, chain: &mut Chain, block: &Block) -> Result<Vec<Column>, TranspileError> {
        let Block { select, scope, items, order_by, distinct } = *block;
        let aliases = block.aliases();
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
            let null = null_type(&item.expr);
            let (ty, value_ty) = (null.clone().or_else(|| ibis_type(&item.expr, &cx)), null.or_else(|| value_type(&item.expr, &cx)));
            values.push(Output { name: item.name.clone(), code: py.value(), source_column: column_name_of(&item.expr, scope) });
            columns.push(Column { name: item.name.clone(), ty, value_ty });
        }
        let source_columns: Vec<String> = match scope.sources.as_slice() {
            [only] => only.columns.iter().map(|c| c.name.clone()).collect(),
            _ => Vec::new(),
        };
        let prefix = values.iter().take_while(|v| v.passes_through()).count();
        let prefix_names: Vec<&String> = values[..prefix].iter().map(|v| &v.name).collect();
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

    /// The SELECT list with stars expanded, each item named.
    pub(super) fn select_items(&mut self, projection: &[SelectItem], scope: &Scope) -> Result<Vec<Item>, TranspileError> {
        let mut items = Vec::new();
        let mut used: HashSet<String> = HashSet::new();
        for (index, item) in projection.iter().enumerate() {
            match item {
                SelectItem::UnnamedExpr(expr) => {
                    let name = column_name_of(expr, scope)
                        .or_else(|| field_access(expr, scope).map(|access| access.name().to_string()))
                        .unwrap_or_else(|| generated_name(expr, index));
                    items.push(Item { name, expr: expr.clone() });
                }
                SelectItem::ExprWithAlias { expr, alias } => items.push(Item { name: alias.value.clone(), expr: expr.clone() }),
                SelectItem::Wildcard(options) => {
                    let mut star = Vec::new();
                    for source in &scope.sources {
                        for column in &source.columns {
                            if scope.sources.len() > 1
                                && scope.using.iter().any(|(c, i)| c.eq_ignore_ascii_case(&column.name) && scope.sources[*i].qualifier != source.qualifier)
                            {
                                continue;
                            }
                            star.push(Item { name: column.name.clone(), expr: qualified_expr(&source.qualifier, &column.name) });
                        }
                    }
                    items.extend(apply_wildcard_options(options, star, item)?);
                }
                SelectItem::QualifiedWildcard(kind, options) => {
                    let SelectItemQualifiedWildcardKind::ObjectName(name) = kind else {
                        return Err(TranspileError::unsupported_at("a wildcard over an expression", item));
                    };
                    let qualifier = object_name(name);
                    let source = scope
                        .sources
                        .iter()
                        .find(|s| s.qualifier.eq_ignore_ascii_case(&qualifier))
                        .ok_or_else(|| TranspileError::resolve_at(format!("unknown table `{qualifier}` in `{qualifier}.*`"), item))?;
                    let star =
                        source.columns.iter().map(|column| Item { name: column.name.clone(), expr: qualified_expr(&source.qualifier, &column.name) }).collect();
                    items.extend(apply_wildcard_options(options, star, item)?);
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
}

fn generated_name(expr: &Expr, index: usize) -> String {
    if let Expr::Function(function) = expr {
        let name = function.name.to_string().to_ascii_lowercase();
        let argument = first_column_name(expr);
        return match argument {
            Some(column) => python::variable_name(&format!("{name}_{column}")),
            None => python::variable_name(&name),
        };
    }
    format!("col{}", index + 1)
}

/// Outputs as `select` arguments: the leading plain columns positionally, the rest by keyword,
/// in the SELECT order.
pub(super) fn select_arguments(values: &[Output]) -> Vec<String> {
    let prefix = values.iter().take_while(|v| v.passes_through()).count();
    let mut args: Vec<String> = values[..prefix].iter().map(|v| v.code.clone()).collect();
    args.extend(named_arguments(&values[prefix..]));
    args
}

/// Outputs as keyword arguments (`name=code`, or `**{"name": code}` for a name that cannot be a
/// keyword).
pub(super) fn named_arguments(values: &[Output]) -> Vec<String> {
    values
        .iter()
        .map(|v| (&v.name, deferred_safe(&v.code)))
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

fn reject_select_extras(select: &Select) -> Result<(), TranspileError> {
    let extra = if select.top.is_some() {
        Some("TOP (SQL Server's; end the query with LIMIT n)")
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

/// DuckDB's `* EXCLUDE (a, b)` (or `* EXCEPT`), `* REPLACE (expr AS a)` and `* RENAME (a AS b)`,
/// applied to the columns a star stands for.
fn apply_wildcard_options(options: &WildcardAdditionalOptions, mut star: Vec<Item>, at: &SelectItem) -> Result<Vec<Item>, TranspileError> {
    if options.opt_ilike.is_some() || options.opt_alias.is_some() {
        return Err(TranspileError::unsupported_at("* ILIKE and * AS", at));
    }
    let position = |star: &[Item], name: &str| -> Result<usize, TranspileError> {
        star.iter()
            .position(|item| item.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| TranspileError::resolve_at(format!("the star has no column `{name}`"), at))
    };
    let mut excluded: Vec<String> = match &options.opt_exclude {
        None => Vec::new(),
        Some(ExcludeSelectItem::Single(name)) => vec![object_name(name)],
        Some(ExcludeSelectItem::Multiple(names)) => names.iter().map(object_name).collect(),
    };
    if let Some(except) = &options.opt_except {
        excluded.extend(std::iter::once(&except.first_element).chain(&except.additional_elements).map(|i| i.value.clone()));
    }
    for name in &excluded {
        star.remove(position(&star, name)?);
    }
    if let Some(replace) = &options.opt_replace {
        for element in &replace.items {
            let index = position(&star, &element.column_name.value)?;
            star[index].expr = element.expr.clone();
        }
    }
    let renames: Vec<&IdentWithAlias> = match &options.opt_rename {
        None => Vec::new(),
        Some(RenameSelectItem::Single(rename)) => vec![rename],
        Some(RenameSelectItem::Multiple(renames)) => renames.iter().collect(),
    };
    for rename in renames {
        let index = position(&star, &rename.ident.value)?;
        star[index].name = rename.alias.value.clone();
    }
    Ok(star)
}
