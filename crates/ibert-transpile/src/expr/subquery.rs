//! Subqueries inside expressions: scalar subqueries, `IN (SELECT ...)` and EXISTS.

use super::deferred::attribute_roots;
use super::py::{COMPARISON, Py};
use super::{Cx, Phase};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::python;
use crate::query::Translator;
use crate::scope::Scope;
use sqlparser::ast::{Expr, GroupByExpr, Query, SetExpr, TableFactor};

impl Translator<'_> {
    /// A subquery used inside an expression: inline when short, else bound to a name; always
    /// bound when it uses `_`, which would otherwise be taken for the outer table's (and be
    /// rewritten with it by [`deferred_safe`](super::deferred_safe)).
    pub(super) fn relation_receiver(&mut self, chain: Chain) -> String {
        let inline = chain.inline();
        let uses_deferred = attribute_roots(&inline).iter().any(|(_, name)| *name == "_");
        if inline.len() > 70 || uses_deferred { self.bind("subquery", &chain) } else { inline }
    }

    /// The single column of an `IN (SELECT ...)` subquery.
    pub(super) fn subquery_column(&mut self, query: &Query, cx: &Cx) -> Result<String, TranspileError> {
        let rel = self.query(query, cx.scope)?;
        let [column] = rel.columns.as_slice() else {
            return Err(TranspileError::resolve_at(format!("an IN subquery must return one column, not {}", rel.columns.len()), query));
        };
        let name = column.name.clone();
        let receiver = self.relation_receiver(rel.chain);
        Ok(python::attribute(&receiver, &name))
    }

    /// `(a, b) IN (SELECT x, y ...)` where it only decides whether a row is kept: the rows of
    /// `EXISTS (... WHERE x = a AND y = b)`, which Ibis writes `((sub.x == a) & (sub.y ==
    /// b)).any()` and compiles to a correlated EXISTS. (As a value, or under NOT, the NULLs of
    /// SQL's IN differ from EXISTS's false, and the row value is refused.)
    pub(super) fn row_in_subquery(&mut self, items: &[Expr], query: &Query, cx: &Cx) -> Result<Py, TranspileError> {
        let rel = self.query(query, cx.scope)?;
        if rel.columns.len() != items.len() {
            return Err(TranspileError::resolve_at(
                format!("the row value has {} fields but its IN subquery returns {} columns", items.len(), rel.columns.len()),
                query,
            ));
        }
        let names: Vec<String> = rel.columns.iter().map(|column| column.name.clone()).collect();
        let receiver = self.relation_receiver(rel.chain);
        let mut equalities = Vec::new();
        for (item, name) in items.iter().zip(&names) {
            let value = self.expr(item, cx)?;
            equalities.push(format!("({} == {})", python::attribute(&receiver, name), value.code));
        }
        Ok(Py::atom(format!("({}).any()", equalities.join(" & "))))
    }

    /// EXISTS over one table with a WHERE becomes `(condition).any()`, which Ibis compiles to a
    /// correlated EXISTS; anything else counts the rows of the subquery.
    pub(super) fn exists(&mut self, query: &Query, cx: &Cx) -> Result<Py, TranspileError> {
        if let SetExpr::Select(select) = query.body.as_ref()
            && query.with.is_none()
            && query.order_by.is_none()
            && query.limit_clause.is_none()
            && select.from.len() == 1
            && select.from[0].joins.is_empty()
            && matches!(select.from[0].relation, TableFactor::Table { .. })
            && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
            && select.having.is_none()
            && select.qualify.is_none()
            && let Some(selection) = &select.selection
        {
            let mut scope = Scope::child(cx.scope);
            self.add_source(&select.from[0].relation, &mut scope)?;
            let inner = Cx { scope: &scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
            let condition = self.expr(selection, &inner)?;
            return Ok(condition.method("any", &[]));
        }
        let rel = self.query(query, cx.scope)?;
        let receiver = self.relation_receiver(rel.chain);
        Ok(Py::op(format!("{receiver}.count() > 0"), COMPARISON))
    }
}
