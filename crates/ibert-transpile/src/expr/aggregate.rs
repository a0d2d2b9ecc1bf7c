//! Aggregate functions: `x.sum()`, `_.count()`, `x.group_concat(...)`, with `where=` and
//! `order_by=`.

use super::function::Call;
use super::{Cx, Py};
use crate::ast::argument_order;
use crate::error::TranspileError;
use crate::functions;
use crate::python;
use crate::query::{Translator, sort_key};

impl Translator<'_> {
    pub(super) fn aggregate(&mut self, call: &Call, cx: &Cx) -> Result<Py, TranspileError> {
        let Call { name, args, star, distinct, filter, expr } = *call;
        let mut extra: Vec<String> = Vec::new();
        if let Some(filter) = filter {
            extra.push(format!("where={}", self.expr(filter, cx)?.code));
        }
        if let Some(order) = argument_order(expr) {
            let mut keys = Vec::new();
            for key in order {
                let code = self.expr(&key.expr, cx)?.value();
                keys.push(sort_key(code, &key.options));
            }
            extra.push(format!("order_by=[{}]", keys.join(", ")));
        }
        // Ibis counts distinct values (`nunique`); min and max are the same without DISTINCT.
        if distinct && !matches!(name, "count" | "min" | "max") {
            return Err(TranspileError::unsupported_at(&format!("{name}(DISTINCT ...)"), expr));
        }
        let arity = |n: usize| -> Result<(), TranspileError> {
            if args.len() == n { Ok(()) } else { Err(TranspileError::resolve_at(format!("{name}() takes {n} argument(s) here"), expr)) }
        };
        match name {
            "count" if star || args.is_empty() => Ok(Py::atom(format!("_.count({})", extra.join(", ")))),
            "count" if distinct => {
                arity(1)?;
                Ok(self.expr(&args[0], cx)?.method("nunique", &extra))
            }
            "count_if" | "countif" => {
                arity(1)?;
                let condition = self.expr(&args[0], cx)?.code;
                let condition = match filter {
                    Some(_) => return Err(TranspileError::unsupported_at("count_if with FILTER", expr)),
                    None => condition,
                };
                Ok(Py::atom(format!("_.count(where={condition})")))
            }
            "array_agg" | "list" => {
                arity(1)?;
                // SQL keeps NULL elements; `collect` drops them unless told.
                extra.push("include_null=True".into());
                Ok(self.expr(&args[0], cx)?.method("collect", &extra))
            }
            "string_agg" | "listagg" | "group_concat" => {
                let value = self.expr(&args[0], cx)?;
                let mut call = Vec::new();
                match args.get(1) {
                    Some(separator) => call.push(self.expr(separator, cx)?.code),
                    None => call.push(python::string(",")),
                }
                call.extend(extra);
                Ok(value.method("group_concat", &call))
            }
            "quantile_cont" => {
                arity(2)?;
                let value = self.expr(&args[0], cx)?;
                let mut call = vec![self.expr(&args[1], cx)?.code];
                call.extend(extra);
                Ok(value.method("quantile", &call))
            }
            "corr" | "covar_samp" | "covar_pop" | "arg_max" | "arg_min" | "argmax" | "argmin" | "max_by" | "min_by" => {
                arity(2)?;
                let value = self.expr(&args[0], cx)?;
                let mut call = vec![self.expr(&args[1], cx)?.code];
                let method = match name {
                    "corr" => "corr",
                    "covar_samp" => "cov",
                    "covar_pop" => {
                        call.push("how=\"pop\"".into());
                        "cov"
                    }
                    "arg_max" | "argmax" | "max_by" => "argmax",
                    _ => "argmin",
                };
                call.extend(extra);
                Ok(value.method(method, &call))
            }
            _ => {
                let (method, fixed) =
                    functions::aggregate_method(name).ok_or_else(|| TranspileError::unsupported_at(&format!("the aggregate {name}()"), expr))?;
                arity(1)?;
                let value = self.expr(&args[0], cx)?;
                let mut call: Vec<String> = if fixed.is_empty() { Vec::new() } else { vec![fixed.to_string()] };
                call.extend(extra);
                Ok(value.method(method, &call))
            }
        }
    }
}
