//! Which `x = ANY (list)` comparisons and `(a, b) IN (SELECT ...)` tests only decide whether a
//! row is kept: those reached from a WHERE, HAVING, QUALIFY, `JOIN ... ON`, `FILTER (WHERE ...)`
//! or `CASE WHEN` condition through AND, OR and parentheses. There a NULL and a false keep the
//! same rows (in SQL's three-valued logic, a condition that is true with an unknown operand is
//! true with any), so the comparison can be Ibis's `list.contains(x)`, and the row test a
//! correlated EXISTS, both of which say false where SQL says NULL. Anywhere else (under NOT, as
//! a value) they need the exact form.

use sqlparser::ast::{BinaryOperator, Expr, InTarget, JoinConstraint, JoinOperator, Query, Select, SetExpr, Spanned, Visit, Visitor};
use sqlparser::tokenizer::Location;
use std::collections::HashSet;
use std::ops::ControlFlow;

/// Where each such comparison starts in the SQL.
pub(crate) fn filtering_comparisons(query: &Query) -> HashSet<Location> {
    let mut collector = Collector { found: HashSet::new() };
    let _ = query.visit(&mut collector);
    collector.found
}

struct Collector {
    found: HashSet<Location>,
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.set_expr(&query.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Case { conditions, .. } => conditions.iter().for_each(|when| self.mark(&when.condition)),
            Expr::Function(function) => function.filter.iter().for_each(|filter| self.mark(filter)),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl Collector {
    fn set_expr(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            _ => {}
        }
    }

    fn select(&mut self, select: &Select) {
        for condition in [&select.selection, &select.having, &select.qualify].into_iter().flatten() {
            self.mark(condition);
        }
        for join in select.from.iter().flat_map(|table| &table.joins) {
            if let Some(JoinConstraint::On(on)) = join_constraint(&join.join_operator) {
                self.mark(on);
            }
        }
    }

    fn mark(&mut self, condition: &Expr) {
        match condition {
            Expr::Nested(inner) => self.mark(inner),
            Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
                self.mark(left);
                self.mark(right);
            }
            Expr::AnyOp { compare_op: BinaryOperator::Eq, .. } => {
                self.found.insert(condition.span().start);
            }
            Expr::In { expr, target: InTarget::Subquery(_), negated: false, .. } if matches!(expr.as_ref(), Expr::Tuple(_)) => {
                self.found.insert(condition.span().start);
            }
            _ => {}
        }
    }
}

fn join_constraint(operator: &JoinOperator) -> Option<&JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Statement;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn columns_of(sql: &str) -> Vec<u64> {
        let Statement::Query(query) = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0) else { panic!("a query") };
        let mut columns: Vec<u64> = filtering_comparisons(&query).iter().map(|at| at.column).collect();
        columns.sort();
        columns
    }

    #[test]
    fn only_comparisons_that_decide_a_filter_are_found() {
        assert_eq!(columns_of("SELECT id FROM t WHERE a = 1 AND ('x' = ANY(tags) OR 'y' = ANY(tags))"), [35, 54]);
        assert_eq!(columns_of("SELECT id FROM t WHERE NOT ('x' = ANY(tags))"), Vec::<u64>::new());
        assert_eq!(columns_of("SELECT 'x' = ANY(tags) AS has_x, count(*) FILTER (WHERE 'y' = ANY(tags)) AS n FROM t"), [57]);
        assert_eq!(columns_of("SELECT CASE WHEN 'x' = ANY(tags) THEN 1 END AS v FROM t JOIN u ON u.k = ANY(t.ks)"), [18, 67]);
        // Row values IN a subquery: in a filter, not under NOT, not as a value.
        assert_eq!(columns_of("SELECT id FROM t WHERE (a, b) IN (SELECT x, y FROM u) OR c > 1"), [25]);
        assert_eq!(columns_of("SELECT id FROM t WHERE (a, b) NOT IN (SELECT x, y FROM u)"), Vec::<u64>::new());
        assert_eq!(columns_of("SELECT (a, b) IN (SELECT x, y FROM u) AS found FROM t"), Vec::<u64>::new());
    }
}
