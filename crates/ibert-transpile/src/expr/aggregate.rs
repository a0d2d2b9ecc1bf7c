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
        // Ibis counts distinct values (`nunique`) and collects them (`collect(distinct=True)`);
        // min and max are the same without DISTINCT.
        let collects_distinct = matches!(name, "string_agg" | "listagg" | "group_concat" | "array_agg" | "list" | "sum" | "avg" | "mean");
        if distinct && !matches!(name, "count" | "min" | "max") && !collects_distinct {
            return Err(TranspileError::unsupported_at(&format!("{name}(DISTINCT ...)"), expr));
        }
        let arity = |n: usize| -> Result<(), TranspileError> {
            if args.len() == n { Ok(()) } else { Err(TranspileError::resolve_at(format!("{name}() takes {n} argument(s) here"), expr)) }
        };
        if distinct && collects_distinct {
            return self.distinct_aggregate(call, extra, cx);
        }
        match name {
            // `COUNT(*) FILTER (WHERE c)` over filtered or joined rows counts the condition where
            // it holds: there Ibis's `t.count(where=c)` refers to the rows before the filter or
            // join (Ibis 12 does not rebind it), which DuckDB then cannot find.
            "count" if (star || args.is_empty()) && filter.is_some() && self.aggregating_built_rows => {
                let condition = self.expr(filter.expect("matched"), cx)?;
                Ok(condition.method("count", &[format!("where={}", condition.code)]))
            }
            "count" if star || args.is_empty() => Ok(Py::atom(format!("_.count({})", extra.join(", ")))),
            "count" if distinct => {
                arity(1)?;
                Ok(self.expr(&args[0], cx)?.method("nunique", &extra))
            }
            "count_if" | "countif" => {
                arity(1)?;
                // DuckDB sums the condition as 0 and 1: NULL where every condition is NULL.
                Ok(self.expr(&args[0], cx)?.method("sum", &extra))
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
            "first" | "last" => {
                arity(1)?;
                // SQL's first and last take NULLs too, and depend on the order of the rows.
                if argument_order(expr).is_none() {
                    return Err(TranspileError::unsupported_at(
                        &format!("{name}() without ORDER BY in its parentheses (its value depends on the row order)"),
                        expr,
                    ));
                }
                extra.push("include_null=True".into());
                Ok(self.expr(&args[0], cx)?.method(name, &extra))
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

    /// `string_agg(DISTINCT x, sep)`, `array_agg(DISTINCT x)`, `sum(DISTINCT x)`, `avg(DISTINCT x)`:
    /// the distinct values collected into an array, then joined, summed or averaged.
    fn distinct_aggregate(&mut self, call: &Call, extra: Vec<String>, cx: &Cx) -> Result<Py, TranspileError> {
        let Call { name, args, expr, .. } = *call;
        let Some(value) = args.first() else {
            return Err(TranspileError::resolve_at(format!("{name}() needs an argument"), expr));
        };
        let mut options = vec!["distinct=True".to_string()];
        options.extend(extra);
        if matches!(name, "array_agg" | "list") {
            // An array aggregate keeps NULL, as one more distinct value.
            options.push("include_null=True".into());
        }
        let collected = self.expr(value, cx)?.method("collect", &options);
        Ok(match name {
            "string_agg" | "listagg" | "group_concat" => {
                let separator = match args.get(1) {
                    Some(separator) => self.expr(separator, cx)?.code,
                    None => python::string(","),
                };
                collected.method("join", &[separator])
            }
            "sum" => collected.method("sums", &[]),
            "avg" | "mean" => collected.method("means", &[]),
            _ => collected,
        })
    }
}
