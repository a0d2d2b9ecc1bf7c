//! The Ibis type an expression's translation will have, where the syntax and the catalog decide
//! it without running Ibis. It is `None` wherever that is not certain: the translator casts on
//! these types (two decimals of another precision or scale, the typed NULL keys of grouping
//! sets, set operations), and a wrong guess would be a wrong cast.

use super::{Cx, Phase};
use crate::ast::{function_name, plain_column, unparenthesized};
use crate::functions;
use crate::scope::Scope;
use crate::types::{self, TIMESTAMP_DIFFERENCE};
use sqlparser::ast::{BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator, Value};

/// Whose type: the one Ibis declares for the translation (what it checks operands against, and
/// what it drops a cast to), or the one DuckDB computes its values in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Semantics {
    Ibis,
    Values,
}

/// The type Ibis declares for the translation of `expr`.
pub(crate) fn ibis_type(expr: &Expr, cx: &Cx) -> Option<String> {
    infer(expr, cx, Semantics::Ibis)
}

/// The type DuckDB computes the values of `expr` in: for decimals it differs from Ibis's (a
/// product has the sum of the scales, a mean is a double, a number literal is a decimal).
pub(crate) fn value_type(expr: &Expr, cx: &Cx) -> Option<String> {
    infer(expr, cx, Semantics::Values)
}

fn infer(expr: &Expr, cx: &Cx, semantics: Semantics) -> Option<String> {
    let ibis_type = |e: &Expr, cx: &Cx| infer(e, cx, semantics);
    if let Phase::Aggregated(aggregation) = cx.phase
        && let Some((computed, _)) = aggregation.keys.iter().chain(&aggregation.metrics).find(|(e, _)| e == expr)
    {
        // A key or an aggregate: the type of what it computes over the grouped rows.
        let source = cx.scope.parent?;
        return ibis_type(computed, &Cx { scope: source, phase: Phase::Source, aliases: &[], prefer_alias: false });
    }
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match cx.phase {
            Phase::Source => column_type(expr, cx.scope, semantics),
            Phase::Aggregated(_) => None,
        },
        Expr::CompoundFieldAccess { .. } => match cx.phase {
            Phase::Source => super::structs::field_access(expr, cx.scope).and_then(|access| access.ty),
            Phase::Aggregated(_) => None,
        },
        Expr::Nested(inner) => ibis_type(inner, cx),
        Expr::Value(value) => match &value.value {
            Value::Number(n, _) if n.parse::<i64>().is_ok() => Some("int64".into()),
            // DuckDB reads `1.035` as DECIMAL(4, 3).
            Value::Number(n, _) if semantics == Semantics::Values && n.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                let digits = n.chars().filter(char::is_ascii_digit).count().max(1);
                let scale = n.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                Some(format!("decimal({}, {scale})", digits.max(scale)))
            }
            Value::Number(..) => Some("float64".into()),
            Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) => Some("string".into()),
            Value::Boolean(_) => Some("boolean".into()),
            _ => None,
        },
        Expr::TypedString(typed) => functions::ibis_type(&typed.data_type.to_string()),
        Expr::Cast { data_type, .. } => functions::ibis_type(&data_type.to_string()),
        Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr } => ibis_type(expr, cx),
        Expr::UnaryOp { op: UnaryOperator::Not, .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::Between { .. }
        | Expr::In { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::SimilarTo { .. }
        | Expr::RLike { .. }
        | Expr::Exists { .. }
        | Expr::AnyOp { .. }
        | Expr::AllOp { .. } => Some("boolean".into()),
        Expr::BinaryOp { left, op, right } => binary_type(left, op, right, cx, semantics),
        Expr::Case { conditions, else_result, .. } => {
            let results: Vec<&Expr> = conditions.iter().map(|when| &when.result).chain(else_result.as_deref()).filter(|e| !is_null(e)).collect();
            common_type(&results, cx, semantics)
        }
        Expr::Interval(_) => Some("interval".into()),
        Expr::Function(function) if function.over.is_none() => function_type(&function_name(function), &arguments(function), cx, semantics),
        Expr::Function(function) => window_type(&function_name(function), &arguments(function), cx, semantics),
        _ => None,
    }
}

/// The type of a (possibly qualified) column, or of a struct field read as `col.field`.
fn column_type(expr: &Expr, scope: &Scope, semantics: Semantics) -> Option<String> {
    if let Some(resolved) = plain_column(expr, scope) {
        return match semantics {
            Semantics::Ibis => resolved.ty,
            Semantics::Values => resolved.value_ty,
        };
    }
    super::structs::field_access(expr, scope).and_then(|access| access.ty)
}

fn binary_type(left: &Expr, op: &BinaryOperator, right: &Expr, cx: &Cx, semantics: Semantics) -> Option<String> {
    use BinaryOperator::*;
    match op {
        Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or => return Some("boolean".into()),
        StringConcat => return Some("string".into()),
        Plus | Minus | Multiply | Divide | Modulo => {}
        _ => return None,
    }
    let (lt, rt) = (infer(left, cx, semantics)?, infer(right, cx, semantics)?);
    let temporal = |t: &str| t == "date" || t.starts_with("timestamp");
    match op {
        Minus if lt.starts_with("timestamp") && rt.starts_with("timestamp") => return Some(TIMESTAMP_DIFFERENCE.into()),
        // `d2 - d1` is translated as a whole number of days.
        Minus if lt == "date" && rt == "date" => return Some("int64".into()),
        // A date and hours make a timestamp (the translation casts the date).
        Plus | Minus if lt == "date" && as_time_interval(right) => return Some("timestamp".into()),
        Plus | Minus if temporal(&lt) && (types::is_interval(&rt) || types::is_integer(&rt)) => return Some(lt),
        Plus if types::is_interval(&lt) && temporal(&rt) => return Some(rt),
        Divide if is_numeric(&lt) && is_numeric(&rt) => return Some("float64".into()),
        _ => {}
    }
    if !is_numeric(&lt) || !is_numeric(&rt) {
        return None;
    }
    let literal = |e: &Expr| matches!(unparenthesized(e), Expr::Value(_));
    match (types::decimal_parts(&lt), types::decimal_parts(&rt)) {
        (Some(_), Some(_)) if *op == Multiply => multiplied(left, right, &lt, &rt, cx, semantics),
        (Some(_), Some(_)) => Some(types::common_decimal(&lt, &rt).unwrap_or(lt)),
        // Ibis keeps a decimal operand's type against an integer or a number literal.
        (Some(_), None) if types::is_integer(&rt) || literal(right) => Some(lt),
        (None, Some(_)) if types::is_integer(&lt) || literal(left) => Some(rt),
        (None, None) if types::is_integer(&lt) && types::is_integer(&rt) => Some("int64".into()),
        _ => Some("float64".into()),
    }
}

/// A product of two decimals. The translation casts two decimals of other types to
/// `decimal(38, larger scale)` (Ibis multiplies only equal ones, and a narrower common type
/// would overflow sooner than the SQL); Ibis then declares that type, DuckDB computes the sum
/// of the scales.
fn multiplied(left: &Expr, right: &Expr, lt: &str, rt: &str, cx: &Cx, semantics: Semantics) -> Option<String> {
    let (declared_l, declared_r) = (infer(left, cx, Semantics::Ibis)?, infer(right, cx, Semantics::Ibis)?);
    let cast = types::product_operands(&declared_l, &declared_r);
    match semantics {
        Semantics::Ibis => Some(cast.unwrap_or(declared_l)),
        Semantics::Values => {
            let ((pl, sl), (pr, sr)) = match cast {
                Some(common) => (types::decimal_parts(&common)?, types::decimal_parts(&common)?),
                None => (types::decimal_parts(lt)?, types::decimal_parts(rt)?),
            };
            let scale = (sl + sr).min(38);
            Some(format!("decimal({}, {scale})", (pl + pr).clamp(scale, 38)))
        }
    }
}

fn function_type(name: &str, args: &[&Expr], cx: &Cx, semantics: Semantics) -> Option<String> {
    let first = || args.first().and_then(|arg| infer(arg, cx, semantics));
    match name {
        "count" | "count_if" | "countif" => Some("int64".into()),
        "sum" => {
            let ty = first()?;
            match types::decimal_parts(&ty) {
                Some((_, scale)) => Some(format!("decimal(38, {scale})")),
                None if types::is_integer(&ty) => Some("int64".into()),
                None if types::is_float(&ty) => Some("float64".into()),
                None => None,
            }
        }
        // Ibis keeps a decimal's type for its mean; DuckDB computes a double.
        "avg" | "mean" => {
            let ty = first()?;
            if types::decimal_parts(&ty).is_some() && semantics == Semantics::Ibis { Some(ty) } else { is_numeric(&ty).then(|| "float64".into()) }
        }
        "min" | "max" | "any_value" | "arbitrary" | "first" | "last" | "abs" => first(),
        // Ibis rounds a decimal to a decimal of the digits asked for, anything else to a float.
        "round" => {
            let ty = first()?;
            let digits = match args.get(1) {
                None => Some(0),
                Some(digits) => crate::ast::positional(digits),
            };
            match (types::decimal_parts(&ty), digits) {
                (Some((precision, _)), Some(digits)) => Some(format!("decimal({precision}, {digits})")),
                _ if is_numeric(&ty) => Some("float64".into()),
                _ => None,
            }
        }
        "date_trunc" | "datetrunc" => args.get(1).and_then(|arg| infer(arg, cx, semantics)),
        "coalesce" | "ifnull" | "greatest" | "least" | "nullif" => {
            let known: Vec<&Expr> = args.iter().copied().filter(|e| !is_null(e)).collect();
            common_type(&known, cx, semantics)
        }
        "lower" | "upper" | "trim" | "ltrim" | "rtrim" | "concat" | "concat_ws" | "replace" | "substr" | "substring" | "left" | "right" | "lpad" | "rpad"
        | "string_agg" | "listagg" | "group_concat" | "initcap" | "reverse" => Some("string".into()),
        _ => None,
    }
}

/// A window function's value: a rank, a neighbouring row's value, or an aggregate over the frame.
fn window_type(name: &str, args: &[&Expr], cx: &Cx, semantics: Semantics) -> Option<String> {
    match name {
        "row_number" | "rank" | "dense_rank" | "ntile" => Some("int64".into()),
        "percent_rank" | "cume_dist" => Some("float64".into()),
        "lag" | "lead" | "first_value" | "last_value" | "nth_value" => args.first().and_then(|arg| infer(arg, cx, semantics)),
        _ if functions::is_aggregate(name) => function_type(name, args, cx, semantics),
        _ => None,
    }
}

/// The one type of several values, or their common decimal; `None` when any is unknown or two
/// differ otherwise.
fn common_type(values: &[&Expr], cx: &Cx, semantics: Semantics) -> Option<String> {
    let mut common: Option<String> = None;
    for value in values {
        let ty = infer(value, cx, semantics)?;
        common = Some(match common {
            None => ty,
            Some(current) if types::same(&current, &ty) => current,
            Some(current) => types::common_decimal(&current, &ty)?,
        });
    }
    common
}

fn as_time_interval(expr: &Expr) -> bool {
    matches!(unparenthesized(expr), Expr::Interval(interval) if super::literal::has_time_units(interval, expr))
}

fn is_numeric(ty: &str) -> bool {
    types::is_integer(ty) || types::is_float(ty) || types::decimal_parts(ty).is_some()
}

fn is_null(expr: &Expr) -> bool {
    matches!(unparenthesized(expr), Expr::Value(v) if matches!(v.value, Value::Null))
}

fn arguments(function: &sqlparser::ast::Function) -> Vec<&Expr> {
    let FunctionArguments::List(list) = &function.args else { return Vec::new() };
    list.args
        .iter()
        .filter_map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}
