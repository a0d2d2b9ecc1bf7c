//! Function calls: which of aggregate, window or scalar function a call is, and its arguments.

use super::{Cx, Phase, Py};
use crate::ast::{ORDERED_AGGREGATES, function_name};
use crate::error::TranspileError;
use crate::functions;
use crate::query::{Translator, ascending};
use sqlparser::ast::{DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, WindowType};

/// A call of an aggregate or window function, its arguments unpacked.
pub(super) struct Call<'a> {
    /// The function's name, lowercase.
    pub name: &'a str,
    pub args: &'a [Expr],
    /// `count(*)`.
    pub star: bool,
    /// `agg(DISTINCT ...)`.
    pub distinct: bool,
    /// `agg(...) FILTER (WHERE ...)`.
    pub filter: Option<&'a Expr>,
    /// The whole call, for error positions and the ORDER BY inside its parentheses.
    pub expr: &'a Expr,
}

impl Translator<'_> {
    pub(super) fn function(&mut self, function: &Function, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        let name = function_name(function);
        if function.null_treatment.is_some() || (!function.within_group.is_empty() && function.over.is_some()) {
            return Err(TranspileError::unsupported_at(&format!("{name}(...) IGNORE NULLS or WITHIN GROUP ... OVER"), expr));
        }
        let (args, star, distinct) = match &function.args {
            FunctionArguments::None => (Vec::new(), false, false),
            FunctionArguments::Subquery(_) => return Err(TranspileError::unsupported_at("a subquery as a function argument", expr)),
            FunctionArguments::List(list) => {
                let mut filter_clause = false;
                for clause in &list.clauses {
                    match clause {
                        FunctionArgumentClause::Where(_) => filter_clause = true,
                        // Read by the aggregates that order their input (`string_agg(x, ',' ORDER BY y)`).
                        FunctionArgumentClause::OrderBy(_) if ORDERED_AGGREGATES.contains(&name.as_str()) && function.over.is_none() => {}
                        _ => return Err(TranspileError::unsupported_at(&format!("{name}(... {clause})"), expr)),
                    }
                }
                if filter_clause {
                    return Err(TranspileError::unsupported_at("WHERE inside function arguments", expr));
                }
                let mut args = Vec::new();
                let mut star = false;
                for arg in &list.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e.clone()),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => return Err(TranspileError::unsupported_at(&format!("named or qualified arguments to {name}"), expr)),
                    }
                }
                (args, star, matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)))
            }
        };
        if let [order] = function.within_group.as_slice() {
            // Ordered-set aggregates: the ordered column is the value.
            if let Phase::Aggregated(_) = cx.phase {
                return Err(TranspileError::unsupported_at("an aggregate that is not computed by the GROUP BY", expr));
            }
            let ascending = ascending(&order.options);
            let filter = function.filter.as_deref();
            let ordered = |name, args| Call { name, args, star: false, distinct: false, filter, expr };
            return match (name.as_str(), args.as_slice()) {
                ("percentile_cont" | "quantile_cont", [fraction]) if ascending => {
                    self.aggregate(&ordered("quantile_cont", &[order.expr.clone(), fraction.clone()]), cx)
                }
                ("mode", []) => self.aggregate(&ordered("mode", std::slice::from_ref(&order.expr)), cx),
                _ => Err(TranspileError::unsupported_at(&format!("{name}(...) WITHIN GROUP (ORDER BY ...{})", if ascending { "" } else { " DESC" }), expr)),
            };
        }
        if !function.within_group.is_empty() {
            return Err(TranspileError::unsupported_at(&format!("{name}(...) WITHIN GROUP with several keys"), expr));
        }
        if let Some(over) = &function.over {
            let WindowType::WindowSpec(spec) = over else {
                return Err(TranspileError::unsupported_at("a named window this SELECT does not define", expr));
            };
            if spec.window_name.is_some() {
                return Err(TranspileError::unsupported_at("a named window this SELECT does not define", expr));
            }
            let call = Call { name: &name, args: &args, star, distinct, filter: function.filter.as_deref(), expr };
            return self.window(&call, spec, cx);
        }
        if functions::is_window_only(&name) {
            return Err(TranspileError::resolve_at(format!("{name}() needs an OVER clause"), expr));
        }
        if functions::is_aggregate(&name) {
            if let Phase::Aggregated(_) = cx.phase {
                return Err(TranspileError::unsupported_at("an aggregate that is not computed by the GROUP BY", expr));
            }
            return self.aggregate(&Call { name: &name, args: &args, star, distinct, filter: function.filter.as_deref(), expr }, cx);
        }
        if distinct || function.filter.is_some() {
            return Err(TranspileError::resolve_at(format!("DISTINCT or FILTER on the non-aggregate {name}()"), expr));
        }
        self.scalar_function(&name, &args, expr, cx)
    }
}

impl<'a> Call<'a> {
    /// The first argument, which the function needs.
    pub fn first_arg(&self) -> Result<&'a Expr, TranspileError> {
        self.args.first().ok_or_else(|| TranspileError::resolve_at(format!("{}() needs an argument", self.name), self.expr))
    }
}
