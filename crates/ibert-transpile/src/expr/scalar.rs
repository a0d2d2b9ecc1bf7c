//! Scalar functions: `lower(x)` as `x.lower()`, `date_trunc('month', d)` as `d.truncate("M")`,
//! and the rest of the SQL functions Ibis has a spelling for.

use super::literal::extract;
use super::py::{ADDITIVE, ATOM, MULTIPLICATIVE, POWER, Py, UNARY};
use super::{Cx, array_index, common_decimals, ibis_type};
use crate::ast::{positional, quoted_string};
use crate::error::TranspileError;
use crate::functions;
use crate::python;
use crate::query::Translator;
use crate::scope::Scope;
use sqlparser::ast::{Expr, OneOrManyWithParens, Value};

impl Translator<'_> {
    pub(super) fn scalar_function(&mut self, name: &str, args: &[Expr], expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        if let Some(method) = functions::lambda_method(name) {
            return self.lambda_call(name, method, args, expr, cx);
        }
        let mut values = Vec::new();
        for arg in args {
            values.push(self.expr(arg, cx)?);
        }
        let need = |n: usize| -> Result<(), TranspileError> {
            if values.len() == n { Ok(()) } else { Err(TranspileError::resolve_at(format!("{name}() takes {n} argument(s) here"), expr)) }
        };
        let unit_of = |e: &Expr| -> Option<String> {
            match e {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => Some(s.to_ascii_lowercase()),
                    _ => None,
                },
                Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
                _ => None,
            }
        };
        if name == "array_length" && values.len() == 2 {
            // PostgreSQL's form names the dimension; a list has one.
            if positional(&args[1]) != Some(1) {
                return Err(TranspileError::unsupported_at("array_length() of a dimension other than 1", &args[1]));
            }
            return Ok(values[0].method("length", &[]));
        }
        if let Some((method, arity)) = functions::scalar_method(name) {
            need(arity)?;
            let rest: Vec<String> = values[1..].iter().map(|v| v.code.clone()).collect();
            return Ok(values[0].method(method, &rest));
        }
        if let (Some(method), [value]) = (functions::one_argument_method(name), values.as_slice()) {
            return Ok(value.method(method, &[]));
        }
        match name {
            "dayname" => {
                need(1)?;
                Ok(Py::atom(format!("{}.day_of_week.full_name()", values[0].receiver())))
            }
            "monthname" => {
                need(1)?;
                Ok(values[0].method("strftime", &[python::string("%B")]))
            }
            "last_day" => {
                need(1)?;
                // The month's first day, a month on, a day back; DuckDB's last_day is a date.
                let date = if ibis_type(&args[0], cx).as_deref() == Some("timestamp") { values[0].method("date", &[]) } else { values.remove(0) };
                let first = date.method("truncate", &[python::string("M")]);
                Ok(Py::op(format!("{} + ibis.interval(months=1) - ibis.interval(days=1)", first.code), ADDITIVE))
            }
            "to_years" | "to_quarters" | "to_months" | "to_weeks" | "to_days" | "to_hours" | "to_minutes" | "to_seconds" => {
                need(1)?;
                let unit = functions::interval_unit_code(&name["to_".len()..]).expect("every to_ function names a unit");
                Ok(values[0].method("as_interval", &[python::string(unit)]))
            }
            "log" if values.len() == 2 => Ok(values[1].method("log", &[values[0].code.clone()])),
            "pi" if values.is_empty() => Ok(Py::atom("ibis.pi".into())),
            "regexp_replace" => {
                // Without the `g` option DuckDB replaces the first match only; `re_replace` replaces every one.
                let flags = args.get(3).and_then(quoted_string);
                if values.len() != 4 || flags.as_deref() != Some("g") {
                    return Err(TranspileError::unsupported_at(
                        "regexp_replace without the 'g' option (it replaces the first match; Ibis's re_replace replaces every match)",
                        expr,
                    ));
                }
                Ok(values[0].method("re_replace", &[values[1].code.clone(), values[2].code.clone()]))
            }
            "list_value" | "list_pack" => Ok(Py::atom(format!("ibis.array([{}])", values.iter().map(|v| v.code.clone()).collect::<Vec<_>>().join(", ")))),
            "list_element" | "list_extract" => {
                need(2)?;
                Ok(Py::atom(format!("{}[{}]", values[0].receiver(), array_index(&args[1])?)))
            }
            "list_aggregate" | "list_aggr" | "array_aggregate" | "array_aggr" => {
                need(2)?;
                let method = quoted_string(&args[1])
                    .and_then(|aggregate| functions::list_aggregate_method(&aggregate.to_ascii_lowercase()))
                    .ok_or_else(|| TranspileError::unsupported_at("list_aggregate with another aggregate than 'sum', 'min', 'max' or 'avg'", &args[1]))?;
                Ok(values[0].method(method, &[]))
            }
            "dayofweek" | "dow" | "weekday" => {
                need(1)?;
                extract("dow", values.remove(0), expr)
            }
            "isodow" => {
                need(1)?;
                extract("isodow", values.remove(0), expr)
            }
            "round" => match values.len() {
                1 => Ok(values[0].method("round", &[])),
                2 => Ok(values[0].method("round", &[values[1].code.clone()])),
                _ => Err(TranspileError::resolve_at("round() takes 1 or 2 arguments".into(), expr)),
            },
            "power" | "pow" => {
                need(2)?;
                Ok(Py::op(format!("{} ** {}", values[0].operand(POWER + 1), values[1].operand(UNARY)), POWER))
            }
            "mod" => {
                need(2)?;
                Ok(Py::op(format!("{} % {}", values[0].operand(MULTIPLICATIVE), values[1].operand(MULTIPLICATIVE + 1)), MULTIPLICATIVE))
            }
            "coalesce" | "ifnull" => {
                if values.len() < 2 {
                    return Err(TranspileError::resolve_at(format!("{name}() takes at least 2 arguments"), expr));
                }
                let values = common_decimals(args, values, cx);
                Ok(Py::atom(format!("ibis.coalesce({})", values.iter().map(|v| v.code.clone()).collect::<Vec<_>>().join(", "))))
            }
            "greatest" | "least" => {
                let values = common_decimals(args, values, cx);
                Ok(Py::atom(format!("ibis.{name}({})", values.iter().map(|v| v.code.clone()).collect::<Vec<_>>().join(", "))))
            }
            "if" | "iff" => {
                need(3)?;
                Ok(Py::atom(format!("ibis.ifelse({}, {}, {})", values[0].code, values[1].code, values[2].code)))
            }
            "substr" | "substring" => {
                if !(2..=3).contains(&values.len()) {
                    return Err(TranspileError::resolve_at(format!("{name}() takes 2 or 3 arguments"), expr));
                }
                let mut call = vec![self.zero_based(&args[1], cx)?];
                if let Some(length) = values.get(2) {
                    call.push(length.code.clone());
                }
                Ok(values[0].method("substr", &call))
            }
            "strpos" | "instr" => {
                need(2)?;
                Ok(Py::op(format!("{} + 1", values[0].method("find", &[values[1].code.clone()]).code), ADDITIVE))
            }
            "regexp_extract" => {
                let group = values.get(2).map(|v| v.code.clone()).unwrap_or_else(|| "0".into());
                if values.len() < 2 {
                    return Err(TranspileError::resolve_at("regexp_extract() takes 2 or 3 arguments".into(), expr));
                }
                Ok(values[0].method("re_extract", &[values[1].code.clone(), group]))
            }
            "split_part" => {
                need(3)?;
                // DuckDB counts parts from 1, and past the last part returns '' (NULL only for a
                // NULL string); an Ibis array index past the end is NULL, hence the fill.
                let index = positional(&args[2])
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| TranspileError::unsupported_at("split_part with a part number that is not a positive integer literal", &args[2]))?;
                if !values[1].literal || values[1].code.len() <= 2 {
                    return Err(TranspileError::unsupported_at("split_part with a separator that is not a non-empty string literal", &args[1]));
                }
                let part = format!("{}[{}]", values[0].method("split", &[values[1].code.clone()]).code, index - 1);
                let string = values[0].receiver();
                Ok(Py::atom(format!("{string}.isnull().ifelse(ibis.null(\"string\"), {part}.fill_null(\"\"))")))
            }
            "concat_ws" => {
                // DuckDB's concat_ws skips NULL parts; Ibis's `sep.join([...])` compiles to it.
                let Some((separator, parts)) = values.split_first() else {
                    return Err(TranspileError::resolve_at("concat_ws() takes a separator and parts".into(), expr));
                };
                if parts.is_empty() {
                    return Err(TranspileError::resolve_at("concat_ws() takes a separator and parts".into(), expr));
                }
                let separator = if separator.literal { format!("ibis.literal({})", separator.code) } else { separator.operand(ATOM) };
                let parts: Vec<String> = parts.iter().map(|p| p.code.clone()).collect();
                Ok(Py::atom(format!("{separator}.join([{}])", parts.join(", "))))
            }
            "current_date" | "today" if values.is_empty() => Ok(Py::atom("ibis.today()".into())),
            "current_timestamp" | "now" | "get_current_timestamp" if values.is_empty() => Ok(Py::atom("ibis.now()".into())),
            "concat" => {
                if values.is_empty() {
                    return Err(TranspileError::resolve_at("concat() takes arguments".into(), expr));
                }
                // DuckDB's concat() skips NULLs, unlike `||`.
                let parts: Vec<String> =
                    values.iter().map(|v| if v.literal { v.code.clone() } else { v.method("fill_null", &[python::string("")]).code }).collect();
                let first = Py { code: parts[0].clone(), prec: ATOM, literal: values[0].literal };
                Ok(first.method("concat", &parts[1..]))
            }
            "date_trunc" | "datetrunc" => {
                need(2)?;
                let unit = unit_of(&args[0])
                    .and_then(|u| functions::truncate_unit(&u))
                    .ok_or_else(|| TranspileError::unsupported_at("this date_trunc unit", &args[0]))?;
                Ok(values[1].method("truncate", &[python::string(unit)]))
            }
            "date_part" | "datepart" => {
                need(2)?;
                let unit = unit_of(&args[0]).ok_or_else(|| TranspileError::unsupported_at("a date_part unit that is not a literal", &args[0]))?;
                if ibis_type(&args[1], cx).is_some_and(|ty| crate::types::is_interval(&ty)) {
                    return self.extract_field(&unit, &args[1], expr, cx);
                }
                extract(&unit, values.remove(1), expr)
            }
            "date_diff" | "datediff" | "date_sub" => {
                need(3)?;
                let unit =
                    unit_of(&args[0]).and_then(|u| functions::delta_unit(&u)).ok_or_else(|| TranspileError::unsupported_at("this date_diff unit", &args[0]))?;
                Ok(values[2].method("delta", &[values[1].code.clone(), format!("unit={}", python::string(unit))]))
            }
            "date_add" => {
                need(2)?;
                // DuckDB adds a whole number of days to a date; Ibis needs the interval.
                let days = ibis_type(&args[1], cx).is_some_and(|t| t.starts_with("int"));
                let amount = if days { format!("ibis.interval(days={})", values[1].code) } else { values[1].operand(ADDITIVE + 1) };
                Ok(Py::op(format!("{} + {amount}", values[0].operand(ADDITIVE)), ADDITIVE))
            }
            "make_date" => {
                need(3)?;
                Ok(Py::atom(format!("ibis.date({}, {}, {})", values[0].code, values[1].code, values[2].code)))
            }
            "to_date" | "date" if values.len() == 1 => Ok(values[0].method("cast", &[python::string("date")])),
            _ => {
                let hint = crate::dialect_hints::function_rewrite(name).map(|rewrite| format!(" ({rewrite})")).unwrap_or_default();
                Err(TranspileError::unsupported_at(&format!("the function {name}(){hint}"), expr))
            }
        }
    }

    /// `list_transform(l, x -> f(x))` as `l.map(lambda x: f(x))`, `list_filter` as `.filter`:
    /// the body is translated with the parameter in scope, as a Python name.
    fn lambda_call(&mut self, name: &str, method: &str, args: &[Expr], expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        let [list, Expr::Lambda(lambda)] = args else {
            return Err(TranspileError::resolve_at(format!("{name}() takes a list and a lambda `x -> ...`"), expr));
        };
        let parameter = match &lambda.params {
            OneOrManyWithParens::One(parameter) => parameter,
            OneOrManyWithParens::Many(parameters) if parameters.len() == 1 => &parameters[0],
            OneOrManyWithParens::Many(_) => return Err(TranspileError::unsupported_at("a lambda with an index parameter", expr)),
        };
        let sql_name = parameter.name.value.clone();
        let mut python_name = python::variable_name(&sql_name);
        while self.is_variable(&python_name) {
            python_name.push('_');
        }
        let list = self.expr(list, cx)?;
        let mut scope = Scope::child(cx.scope);
        scope.lambda_parameters.push((sql_name, python_name.clone()));
        let inner = Cx { scope: &scope, phase: cx.phase, aliases: cx.aliases, prefer_alias: cx.prefer_alias };
        let body = self.expr(&lambda.body, &inner)?;
        Ok(list.method(method, &[format!("lambda {python_name}: {}", body.value())]))
    }
}
