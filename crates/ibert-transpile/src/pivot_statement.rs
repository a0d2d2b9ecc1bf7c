//! DuckDB's PIVOT statement, `PIVOT t ON c IN ('a', 'b') USING agg(x) GROUP BY g ORDER BY ...
//! LIMIT n`, which `sqlparser` does not parse: read here with `sqlparser`'s own parser, and
//! written as the standard PIVOT it means, `SELECT * FROM (SELECT g, c, x FROM t) PIVOT (agg(x)
//! FOR c IN ('a', 'b'))`, so that the translator only meets that. The pieces keep their places in
//! the SQL for error messages.

use crate::ast::visit_columns;
use crate::error::TranspileError;
use sqlparser::ast::{
    Expr, ExprWithAlias, InTarget, LimitClause, OrderBy, OrderByKind, PivotValueSource, Query, SelectItem, SetExpr, TableFactor, visit_expressions_mut,
};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;
use std::ops::ControlFlow;

/// The standard query a PIVOT statement means; `None` when `sql` is not a PIVOT statement.
pub(crate) fn parse(sql: &str, dialect: &dyn Dialect) -> Option<Result<Query, TranspileError>> {
    let mut parser = Parser::new(dialect).try_with_sql(sql).ok()?;
    if !parser.parse_keyword(Keyword::PIVOT) {
        return None;
    }
    Some(parse_rest(&mut parser, dialect).map_err(|error| TranspileError::Parse(error.to_string())).and_then(|parts| parts.into_query(dialect)))
}

/// A PIVOT statement's clauses.
struct Statement {
    table: TableFactor,
    on: Expr,
    using: Vec<ExprWithAlias>,
    group_by: Vec<Expr>,
    order_by: Option<OrderBy>,
    limit: Option<Expr>,
}

fn parse_rest(parser: &mut Parser, dialect: &dyn Dialect) -> Result<Statement, ParserError> {
    let table = parser.parse_table_factor()?;
    parser.expect_keyword_is(Keyword::ON)?;
    let on = parser.parse_expr()?;
    let using = if parser.parse_keyword(Keyword::USING) {
        parser.parse_comma_separated(|p| {
            let expr = p.parse_expr()?;
            let alias = if p.parse_keyword(Keyword::AS) { Some(p.parse_identifier()?) } else { None };
            Ok(ExprWithAlias { expr, alias })
        })?
    } else {
        // Without USING, PIVOT counts the rows.
        vec![ExprWithAlias { expr: Parser::new(dialect).try_with_sql("count(*)")?.parse_expr()?, alias: None }]
    };
    let group_by = if parser.parse_keywords(&[Keyword::GROUP, Keyword::BY]) { parser.parse_comma_separated(Parser::parse_expr)? } else { Vec::new() };
    let order_by = if parser.parse_keywords(&[Keyword::ORDER, Keyword::BY]) {
        let exprs = parser.parse_comma_separated(Parser::parse_order_by_expr)?;
        Some(OrderBy { kind: OrderByKind::Expressions(exprs), interpolate: None })
    } else {
        None
    };
    let limit = if parser.parse_keyword(Keyword::LIMIT) { Some(parser.parse_expr()?) } else { None };
    while parser.consume_token(&Token::SemiColon) {}
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(ParserError::ParserError(format!("Expected: end of the PIVOT statement, found: {} at {}", next.token, next.span.start)));
    }
    Ok(Statement { table, on, using, group_by, order_by, limit })
}

impl Statement {
    fn into_query(self, dialect: &dyn Dialect) -> Result<Query, TranspileError> {
        let Expr::In { expr: column, target: InTarget::List(list), negated: false, global: false } = self.on else {
            return Err(TranspileError::unsupported_at("PIVOT ... ON without an IN list: its columns would depend on the data", &self.on));
        };
        // The template whose pieces are replaced; it parses, so the unwraps cannot fail.
        let template = "SELECT * FROM (SELECT 1 FROM t) AS pivot_input PIVOT (count(*) FOR c IN ('x'))";
        let mut query = *Parser::new(dialect).try_with_sql(template).and_then(|mut p| p.parse_query()).expect("the template parses");
        query.order_by = self.order_by;
        query.limit_clause = self.limit.map(|limit| LimitClause::LimitOffset { limit: Some(limit), offset: None, limit_by: Vec::new() });
        let SetExpr::Select(select) = query.body.as_mut() else { unreachable!("the template is a SELECT") };
        let TableFactor::Pivot { table, aggregate_functions, value_column, value_source, .. } = &mut select.from[0].relation else {
            unreachable!("the template pivots")
        };
        *aggregate_functions = self.using;
        *value_source = PivotValueSource::List(list.into_iter().map(|expr| ExprWithAlias { expr, alias: None }).collect());
        if self.group_by.is_empty() {
            // Every other column groups, as in the standard PIVOT.
            **table = self.table;
        } else {
            // Only the GROUP BY columns group: the input keeps those, the pivoted column and the
            // columns the aggregates read.
            let mut keep: Vec<Expr> = self.group_by.clone();
            keep.push((*column).clone());
            for aggregate in aggregate_functions.iter() {
                visit_columns(&aggregate.expr, &mut |_, _, node| {
                    if !keep.contains(node) {
                        keep.push(node.clone());
                    }
                });
            }
            let TableFactor::Derived { subquery, .. } = table.as_mut() else { unreachable!("the template pivots a subquery") };
            let SetExpr::Select(input) = subquery.body.as_mut() else { unreachable!("the template's input is a SELECT") };
            input.projection = keep.into_iter().map(SelectItem::UnnamedExpr).collect();
            input.from[0].relation = self.table;
            // Outside the input, its columns are the subquery's, named without the table.
            for aggregate in aggregate_functions.iter_mut() {
                unqualify(&mut aggregate.expr);
            }
            let mut column = column;
            unqualify(&mut column);
            *value_column = vec![*column];
            return Ok(query);
        }
        *value_column = vec![*column];
        Ok(query)
    }
}

/// `t.x` as `x`, everywhere in `expr`.
fn unqualify(expr: &mut Expr) {
    let _ = visit_expressions_mut(expr, |e| {
        if let Expr::CompoundIdentifier(parts) = e
            && let Some(last) = parts.last()
        {
            *e = Expr::Identifier(last.clone());
        }
        ControlFlow::<()>::Continue(())
    });
}
