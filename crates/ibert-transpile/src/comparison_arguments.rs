//! `count_if(status = 'paid')`: the DuckDB dialect of `sqlparser` reads `name = value` inside a
//! function's parentheses as a named argument, where DuckDB (whose named arguments are written
//! `name := value`) compares. Such arguments are written back as the comparison before
//! translation.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments, Query, VisitMut, VisitorMut};

pub(crate) fn restore(query: &mut Query) {
    let _ = query.visit(&mut Restorer);
}

struct Restorer;

impl VisitorMut for Restorer {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(function) = expr else { return ControlFlow::Continue(()) };
        let FunctionArguments::List(list) = &mut function.args else { return ControlFlow::Continue(()) };
        for arg in &mut list.args {
            let left = match arg {
                FunctionArg::Named { name, arg: FunctionArgExpr::Expr(_), operator: FunctionArgOperator::Equals } => Expr::Identifier(name.clone()),
                FunctionArg::ExprNamed { name, arg: FunctionArgExpr::Expr(_), operator: FunctionArgOperator::Equals } => name.clone(),
                _ => continue,
            };
            let (FunctionArg::Named { arg: FunctionArgExpr::Expr(right), .. } | FunctionArg::ExprNamed { arg: FunctionArgExpr::Expr(right), .. }) = arg else {
                continue;
            };
            let comparison = Expr::BinaryOp { left: Box::new(left), op: BinaryOperator::Eq, right: Box::new(right.clone()) };
            *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(comparison));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::DuckDbDialect;
    use sqlparser::parser::Parser;

    #[test]
    fn equals_inside_arguments_compares() {
        let mut statements = Parser::parse_sql(&DuckDbDialect {}, "SELECT count_if(status = 'paid'), sum(x) FILTER (WHERE y = 1) FROM t").unwrap();
        let sqlparser::ast::Statement::Query(query) = &mut statements[0] else { panic!("a query") };
        restore(query);
        let sqlparser::ast::SetExpr::Select(select) = query.body.as_ref() else { panic!("a select") };
        let sqlparser::ast::SelectItem::UnnamedExpr(Expr::Function(function)) = &select.projection[0] else { panic!("a call") };
        let FunctionArguments::List(list) = &function.args else { panic!("arguments") };
        assert!(matches!(&list.args[0], FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp { op: BinaryOperator::Eq, .. }))), "{:?}", list.args[0]);
    }
}
