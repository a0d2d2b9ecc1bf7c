//! Questions about SQL syntax trees, asked before or while translating: walks, what an
//! expression contains, and what a name or literal stands for.

use crate::functions;
use crate::scope::{Resolved, Scope};
use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident, InTarget, OrderBy, OrderByExpr,
    OrderByKind, SelectItem, Subscript, Value, WindowType,
};

/// Pre-order walk; `visit` returns whether to descend into the node's children.
pub(crate) fn visit(expr: &Expr, f: &mut dyn FnMut(&Expr) -> bool) {
    if !f(expr) {
        return;
    }
    let mut children: Vec<&Expr> = Vec::new();
    match expr {
        Expr::BinaryOp { left, right, .. } | Expr::IsDistinctFrom(left, right) | Expr::IsNotDistinctFrom(left, right) => {
            children.push(left);
            children.push(right);
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsNotFalse(expr)
        | Expr::Cast { expr, .. }
        | Expr::Extract { expr, .. }
        | Expr::Ceil { expr, .. }
        | Expr::Floor { expr, .. } => children.push(expr),
        Expr::Between { expr, low, high, .. } => children.extend([expr.as_ref(), low, high]),
        Expr::In { expr, target, .. } => {
            children.push(expr);
            if let InTarget::List(items) = target {
                children.extend(items.iter());
            }
        }
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } | Expr::RLike { expr, pattern, .. } | Expr::SimilarTo { expr, pattern, .. } => {
            children.push(expr);
            children.push(pattern);
        }
        Expr::Position { expr, r#in } => children.extend([expr.as_ref(), r#in]),
        Expr::Substring { expr, substring_from, substring_for, .. } => {
            children.push(expr);
            children.extend(substring_from.as_deref());
            children.extend(substring_for.as_deref());
        }
        Expr::Trim { expr, .. } => children.push(expr),
        Expr::Interval(interval) => children.push(&interval.value),
        Expr::Array(array) => children.extend(array.elem.iter()),
        Expr::Lambda(lambda) => children.push(&lambda.body),
        Expr::CompoundFieldAccess { root, access_chain } => {
            children.push(root);
            for access in access_chain {
                if let AccessExpr::Subscript(Subscript::Index { index }) = access {
                    children.push(index);
                }
            }
        }
        Expr::Case { operand, conditions, else_result, .. } => {
            children.extend(operand.as_deref());
            for when in conditions {
                children.push(&when.condition);
                children.push(&when.result);
            }
            children.extend(else_result.as_deref());
        }
        Expr::Function(function) => {
            if let FunctionArguments::List(list) = &function.args {
                for arg in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                        children.push(e);
                    }
                }
            }
            children.extend(function.filter.as_deref());
            if let Some(WindowType::WindowSpec(spec)) = &function.over {
                children.extend(spec.partition_by.iter());
                children.extend(spec.order_by.iter().map(|o| &o.expr));
            }
        }
        _ => {}
    }
    for child in children {
        visit(child, f);
    }
}

/// Calls `f(qualifier, column, node)` for every column reference outside subqueries.
pub(crate) fn visit_columns(expr: &Expr, f: &mut dyn FnMut(Option<&str>, &str, &Expr)) {
    visit(expr, &mut |e| {
        match e {
            Expr::Identifier(ident) => f(None, &ident.value, e),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => f(Some(&parts[parts.len() - 2].value), &parts[parts.len() - 1].value, e),
            _ => {}
        }
        !matches!(e, Expr::Subquery(_) | Expr::Exists { .. })
    });
}

/// A function's own name (the last part of a qualified one), lowercase; empty when it has none.
pub(crate) fn function_name(function: &Function) -> String {
    function.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default()
}

/// A call of an aggregate function without OVER.
pub(crate) fn is_aggregate_call(expr: &Expr) -> bool {
    match expr {
        // An ordered-set aggregate (`percentile_disc(q) WITHIN GROUP (ORDER BY x)`) is one
        // whatever its name.
        Expr::Function(function) => function.over.is_none() && (functions::is_aggregate(&function_name(function)) || !function.within_group.is_empty()),
        _ => false,
    }
}

/// Whether `expr` holds an aggregate call outside subqueries.
pub(crate) fn contains_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if is_aggregate_call(e) {
            found = true;
        }
        !found && !matches!(e, Expr::Subquery(_) | Expr::Exists { .. })
    });
    found
}

/// Whether `expr` holds a window function call.
pub(crate) fn contains_window(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if matches!(e, Expr::Function(f) if f.over.is_some()) {
            found = true;
        }
        !found
    });
    found
}

/// Whether `expr` holds a subquery, EXISTS or `IN (SELECT ...)`.
pub(crate) fn contains_subquery(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: InTarget::Subquery(_), .. }) {
            found = true;
        }
        !found
    });
    found
}

/// `COUNT(*) FILTER (WHERE ...)` becomes `_.count(where=...)`, whose condition Ibis does not
/// dereference through a join chain: over joins it needs the join bound to a name.
pub(crate) fn counts_rows_conditionally(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if let Expr::Function(function) = e {
            let name = function_name(function);
            let star = matches!(&function.args, FunctionArguments::List(list)
                if list.args.iter().any(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Wildcard))));
            found |= name == "count" && star && function.filter.is_some();
        }
        !found
    });
    found
}

/// Whether `expr` reads a column outside of any aggregate call.
pub(crate) fn refers_outside_aggregates(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
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

/// An expression that reads no column, not even through an aggregate (`1`, `'x'`).
pub(crate) fn is_constant(expr: &Expr) -> bool {
    !refers_outside_aggregates(expr) && !contains_aggregate(expr)
}

/// The name of the first column `expr` reads, to name a computed output after.
pub(crate) fn first_column_name(expr: &Expr) -> Option<String> {
    let mut name = None;
    visit_columns(expr, &mut |_, column, _| {
        if name.is_none() {
            name = Some(column.to_string());
        }
    });
    name
}

/// Aggregates whose result depends on the order of their input, and which take it as
/// `order_by=` in Ibis.
pub(crate) const ORDERED_AGGREGATES: &[&str] = &["string_agg", "listagg", "group_concat", "array_agg", "list", "first", "last"];

/// The `ORDER BY` inside an aggregate's parentheses.
pub(crate) fn argument_order(expr: &Expr) -> Option<&Vec<OrderByExpr>> {
    let Expr::Function(function) = expr else { return None };
    let FunctionArguments::List(list) = &function.args else { return None };
    list.clauses.iter().find_map(|clause| match clause {
        FunctionArgumentClause::OrderBy(order) => Some(order),
        _ => None,
    })
}

/// The expression inside any parentheses around it.
pub(crate) fn unparenthesized(expr: &Expr) -> &Expr {
    match expr {
        Expr::Nested(inner) => unparenthesized(inner),
        other => other,
    }
}

/// The column a bare (possibly qualified or parenthesized) column reference resolves to.
pub(crate) fn plain_column(expr: &Expr, scope: &Scope) -> Option<Resolved> {
    match expr {
        Expr::Identifier(ident) => scope.resolve(None, &ident.value, ident.span).ok(),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => scope.resolve(Some(&parts[0].value), &parts[1].value, parts[1].span).ok(),
        Expr::Nested(inner) => plain_column(inner, scope),
        _ => None,
    }
}

/// The output name SQL gives a bare column reference.
pub(crate) fn column_name_of(expr: &Expr, scope: &Scope) -> Option<String> {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => plain_column(expr, scope).map(|r| r.column),
        Expr::Nested(inner) => column_name_of(inner, scope),
        _ => None,
    }
}

/// Two references to the same column, however qualified.
pub(crate) fn same_column(a: &Expr, b: &Expr, scope: &Scope) -> bool {
    if !matches!(a, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) || !matches!(b, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
        return false;
    }
    match (plain_column(a, scope), plain_column(b, scope)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The operands of a chain of ANDs, parenthesized ones too.
pub(crate) fn split_conjuncts<'q>(expr: &'q Expr, out: &mut Vec<&'q Expr>) {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_conjuncts(left, out);
            split_conjuncts(right, out);
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => split_conjuncts(inner, out),
        _ => out.push(expr),
    }
}

/// The expression of a SELECT item; `None` for a star.
pub(crate) fn select_item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// The expressions of an ORDER BY (none for ORDER BY ALL).
pub(crate) fn order_by_exprs(order_by: Option<&OrderBy>) -> Vec<&Expr> {
    match order_by.map(|o| &o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|o| &o.expr).collect(),
        _ => Vec::new(),
    }
}

/// A non-negative integer literal (`ORDER BY 2`, `split_part(s, ',', 2)`).
pub(crate) fn positional(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The text of a single-quoted string literal.
pub(crate) fn quoted_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// An unqualified column reference.
pub(crate) fn ident_expr(name: &str) -> Expr {
    Expr::Identifier(Ident::new(name))
}

/// A qualified column reference `qualifier.name`.
pub(crate) fn qualified_expr(qualifier: &str, name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(qualifier), Ident::new(name)])
}
