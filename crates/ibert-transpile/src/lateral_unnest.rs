//! PostgreSQL's way of exploding a list column: `FROM t CROSS JOIN LATERAL unnest(t.tags) AS
//! u(tag)`, `FROM t, unnest(t.tags) AS u(tag)` or `JOIN LATERAL unnest(t.tags) AS u(tag) ON
//! true`. Each row of `t` meets each element of its own list, and rows with an empty or NULL
//! list meet none: that is `SELECT *, unnest(tags) AS tag FROM t`, which the translator reads
//! as Ibis's `unnest`. So before translation `t` becomes that derived table (under its own
//! name), the unnest item goes, and `u.tag` is read as `t.tag`.

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, JoinConstraint, JoinOperator, Query, Select, SelectItem, SetExpr, Statement, TableAlias, TableFactor,
    TableWithJoins, Value, VisitMut, VisitorMut, visit_expressions_mut,
};
use sqlparser::dialect::Dialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// Folds every lateral unnest of an earlier FROM item's list column into that item, in each
/// query block.
pub(crate) fn fold_into_sources(query: &mut Query, dialect: &dyn Dialect) {
    let _ = query.visit(&mut Folder { dialect });
}

struct Folder<'d> {
    dialect: &'d dyn Dialect,
}

impl VisitorMut for Folder<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let renames = match query.body.as_mut() {
            SetExpr::Select(select) => fold_select(select, self.dialect),
            _ => Vec::new(),
        };
        if !renames.is_empty() {
            // ORDER BY belongs to the query, not to its SELECT.
            if let Some(order_by) = &mut query.order_by {
                let _ = visit_expressions_mut(order_by, |expr| rename(expr, &renames));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Where an unnest item stands: a FROM list entry, or a join of one.
#[derive(Clone, Copy)]
enum Place {
    Listed(usize),
    Joined(usize, usize),
}

fn fold_select(select: &mut Select, dialect: &dyn Dialect) -> Vec<(String, String)> {
    let mut renames = Vec::new();
    while let Some((place, source, column_alias, argument, unnest_alias)) = next_unnest(select) {
        let Some(derived) = exploded(select_factor(select, source).clone(), &argument, &column_alias, dialect) else { break };
        *select_factor_mut(select, source) = derived;
        match place {
            Place::Listed(index) => {
                select.from.remove(index);
            }
            Place::Joined(index, join) => {
                select.from[index].joins.remove(join);
            }
        }
        renames.push((unnest_alias, qualifier(select_factor(select, source)).unwrap_or_default()));
    }
    if !renames.is_empty() {
        let _ = visit_expressions_mut(select, |expr| rename(expr, &renames));
    }
    renames
}

type Found = (Place, Place, Ident, Expr, String);

/// The first unnest item over a qualified column of an earlier FROM item: where it stands,
/// where that item stands, the element column's name, the list expression and the unnest's
/// own alias.
fn next_unnest(select: &Select) -> Option<Found> {
    let mut earlier: Vec<(Place, String)> = Vec::new();
    for (index, item) in select.from.iter().enumerate() {
        if index > 0
            && item.joins.is_empty()
            && let Some(found) = unnest_over(&item.relation, &earlier, Place::Listed(index))
        {
            return Some(found);
        }
        if let Some(name) = qualifier(&item.relation) {
            earlier.push((Place::Listed(index), name));
        }
        for (join_index, join) in item.joins.iter().enumerate() {
            if inner_without_condition(&join.join_operator)
                && let Some(found) = unnest_over(&join.relation, &earlier, Place::Joined(index, join_index))
            {
                return Some(found);
            }
            if let Some(name) = qualifier(&join.relation) {
                earlier.push((Place::Joined(index, join_index), name));
            }
        }
    }
    None
}

fn unnest_over(factor: &TableFactor, earlier: &[(Place, String)], place: Place) -> Option<Found> {
    let (argument, alias) = match factor {
        TableFactor::Function { name, args, with_ordinality: false, alias, .. } if is_unnest(&name.to_string()) => (single(args)?, alias.as_ref()?),
        TableFactor::Table { name, args: Some(args), alias: Some(alias), with_ordinality: false, .. } if is_unnest(&name.to_string()) => {
            (single(&args.args)?, alias)
        }
        TableFactor::UNNEST { alias: Some(alias), array_exprs, with_offset: false, with_ordinality: false, .. } if array_exprs.len() == 1 => {
            (array_exprs[0].clone(), alias)
        }
        _ => return None,
    };
    let [column] = alias.columns.as_slice() else { return None };
    let Expr::CompoundIdentifier(parts) = &argument else { return None };
    let [table, _] = parts.as_slice() else { return None };
    let (source, _) = earlier.iter().find(|(_, name)| name.eq_ignore_ascii_case(&table.value))?;
    Some((place, *source, column.name.clone(), argument.clone(), alias.name.value.clone()))
}

/// `SELECT *, unnest(<list>) AS <column> FROM <factor>`, under the factor's name.
fn exploded(factor: TableFactor, list: &Expr, column: &Ident, dialect: &dyn Dialect) -> Option<TableFactor> {
    let name = qualifier(&factor)?;
    let template = format!("SELECT *, unnest(x) AS {column} FROM t");
    let Ok(mut statements) = Parser::parse_sql(dialect, &template) else { return None };
    let Some(Statement::Query(mut subquery)) = statements.pop() else { return None };
    let SetExpr::Select(inner) = subquery.body.as_mut() else { return None };
    if let Some(SelectItem::ExprWithAlias { expr: Expr::Function(function), .. }) = inner.projection.get_mut(1)
        && let sqlparser::ast::FunctionArguments::List(arguments) = &mut function.args
    {
        arguments.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(list.clone()))];
    } else {
        return None;
    }
    inner.from = vec![TableWithJoins { relation: factor, joins: Vec::new() }];
    Some(TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(TableAlias { explicit: true, name: Ident::new(name), columns: Vec::new(), at: None }),
        sample: None,
    })
}

/// The name SQL qualifies a FROM item's columns with.
fn qualifier(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Table { alias: Some(alias), .. } | TableFactor::Derived { alias: Some(alias), .. } => Some(alias.name.value.clone()),
        TableFactor::Table { name, alias: None, args: None, .. } => name.0.last().and_then(|part| part.as_ident()).map(|ident| ident.value.clone()),
        _ => None,
    }
}

fn select_factor(select: &Select, place: Place) -> &TableFactor {
    match place {
        Place::Listed(index) => &select.from[index].relation,
        Place::Joined(index, join) => &select.from[index].joins[join].relation,
    }
}

fn select_factor_mut(select: &mut Select, place: Place) -> &mut TableFactor {
    match place {
        Place::Listed(index) => &mut select.from[index].relation,
        Place::Joined(index, join) => &mut select.from[index].joins[join].relation,
    }
}

/// `CROSS JOIN`, or an inner join `ON TRUE`: every row meets every element.
fn inner_without_condition(operator: &JoinOperator) -> bool {
    match operator {
        JoinOperator::CrossJoin(JoinConstraint::None) => true,
        JoinOperator::Join(JoinConstraint::On(on)) | JoinOperator::Inner(JoinConstraint::On(on)) => {
            matches!(on, Expr::Value(v) if matches!(v.value, Value::Boolean(true)))
        }
        _ => false,
    }
}

fn is_unnest(name: &str) -> bool {
    name.eq_ignore_ascii_case("unnest")
}

fn single(args: &[FunctionArg]) -> Option<Expr> {
    match args {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))] => Some(expr.clone()),
        _ => None,
    }
}

/// `u.tag` as `t.tag` for each (u, t).
fn rename(expr: &mut Expr, renames: &[(String, String)]) -> ControlFlow<()> {
    if let Expr::CompoundIdentifier(parts) = expr
        && let [qualifier, _] = parts.as_mut_slice()
        && let Some((_, to)) = renames.iter().find(|(from, _)| from.eq_ignore_ascii_case(&qualifier.value))
    {
        *qualifier = Ident::new(to.clone());
    }
    ControlFlow::Continue(())
}
