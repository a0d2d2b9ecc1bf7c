//! DuckDB's `ORDER BY ALL [ASC|DESC] [NULLS ...]`: every output column, left to right, with the
//! same options. Written as `ORDER BY 1, 2, ...` before translation, so the translator only meets
//! ordinary sort keys. A query whose columns are not listed (`SELECT *`, set operations) keeps
//! `ORDER BY ALL` and is refused by name.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, OrderByExpr, OrderByKind, Query, SelectItem, SetExpr, Value, VisitMut, VisitorMut};

pub(crate) fn expand(query: &mut Query) {
    let _ = query.visit(&mut Expander);
}

struct Expander;

impl VisitorMut for Expander {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let (Some(order_by), SetExpr::Select(select)) = (&mut query.order_by, query.body.as_ref()) else { return ControlFlow::Continue(()) };
        let OrderByKind::All(options) = &order_by.kind else { return ControlFlow::Continue(()) };
        let listed = select.projection.iter().all(|item| matches!(item, SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }));
        if listed {
            let keys = (1..=select.projection.len())
                .map(|position| OrderByExpr { expr: Expr::value(Value::Number(position.to_string(), false)), options: options.clone(), with_fill: None })
                .collect();
            order_by.kind = OrderByKind::Expressions(keys);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::DuckDbDialect;
    use sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).unwrap();
        let sqlparser::ast::Statement::Query(query) = &mut statements[0] else { panic!("a query") };
        expand(query);
        query.to_string()
    }

    #[test]
    fn all_becomes_every_column_with_the_same_options() {
        assert_eq!(
            rewritten("SELECT a, b + 1 AS c FROM t ORDER BY ALL DESC NULLS FIRST"),
            "SELECT a, b + 1 AS c FROM t ORDER BY 1 DESC NULLS FIRST, 2 DESC NULLS FIRST"
        );
        assert_eq!(rewritten("SELECT * FROM (SELECT x FROM t ORDER BY ALL) AS s"), "SELECT * FROM (SELECT x FROM t ORDER BY 1) AS s");
        assert_eq!(rewritten("SELECT * FROM t ORDER BY ALL"), "SELECT * FROM t ORDER BY ALL");
    }
}
