//! Literals: values, intervals, date parts and LIKE patterns spelled for Ibis.

use super::py::{ADDITIVE, MULTIPLICATIVE, Py};
use crate::error::TranspileError;
use crate::functions;
use crate::python;
use sqlparser::ast::{DateTimeField, Expr, Interval, Value};

pub(super) fn literal(value: &Value, expr: &Expr) -> Result<Py, TranspileError> {
    Ok(match value {
        Value::Number(n, _) => Py::literal(n.clone()),
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::EscapedStringLiteral(s) | Value::NationalStringLiteral(s) => {
            Py::literal(python::string(s))
        }
        Value::Boolean(b) => Py::literal(if *b { "True".into() } else { "False".into() }),
        Value::Null => Py::atom("ibis.null()".into()),
        _ => return Err(TranspileError::unsupported_at(&format!("the literal {value}"), expr)),
    })
}

pub(super) fn interval_literal(interval: &Interval, expr: &Expr) -> Result<Py, TranspileError> {
    let parts: Vec<String> = interval_parts(interval, expr)?.iter().map(|(keyword, amount)| format!("{keyword}={amount}")).collect();
    Ok(Py::atom(format!("ibis.interval({})", parts.join(", "))))
}

/// An interval literal of fixed-length units (weeks, days, hours, minutes, seconds) in seconds,
/// as DuckDB compares it with a timestamp difference; `None` for months and years, whose
/// length varies.
pub(super) fn interval_seconds(interval: &Interval, expr: &Expr) -> Option<i64> {
    let mut total = 0i64;
    for (keyword, amount) in interval_parts(interval, expr).ok()? {
        let unit = match keyword {
            "weeks" => 7 * 86_400,
            "days" => 86_400,
            "hours" => 3_600,
            "minutes" => 60,
            "seconds" => 1,
            _ => return None,
        };
        total = total.checked_add(amount.checked_mul(unit)?)?;
    }
    Some(total)
}

/// Whether an interval literal counts hours, minutes or seconds, which Ibis adds to timestamps
/// only (DuckDB adds them to a date as to its midnight).
pub(super) fn has_time_units(interval: &Interval, expr: &Expr) -> bool {
    interval_parts(interval, expr).is_ok_and(|parts| parts.iter().any(|(keyword, _)| matches!(*keyword, "hours" | "minutes" | "seconds")))
}

/// The (Ibis keyword, amount) pairs of an interval literal: `INTERVAL '1 day 2 hours'`,
/// `INTERVAL 3 DAY`, `INTERVAL '7' DAY`.
fn interval_parts(interval: &Interval, expr: &Expr) -> Result<Vec<(&'static str, i64)>, TranspileError> {
    if interval.last_field.is_some() {
        return Err(TranspileError::unsupported_at("intervals with two fields (YEAR TO MONTH)", expr));
    }
    let text = match interval.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            _ => return Err(TranspileError::unsupported_at("this interval value", expr)),
        },
        _ => return Err(TranspileError::unsupported_at("an interval whose value is not a literal", expr)),
    };
    let mut parts = Vec::new();
    match &interval.leading_field {
        Some(field) => {
            let unit = field_name(field);
            let keyword = functions::interval_keyword(&unit).ok_or_else(|| TranspileError::unsupported_at(&format!("{unit} intervals"), expr))?;
            let amount: i64 = text.trim().parse().map_err(|_| TranspileError::unsupported_at("an interval amount that is not a whole number", expr))?;
            parts.push((keyword, amount));
        }
        None => {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() || !words.len().is_multiple_of(2) {
                return Err(TranspileError::unsupported_at(&format!("the interval '{text}'"), expr));
            }
            for pair in words.chunks(2) {
                let amount: i64 = pair[0].parse().map_err(|_| TranspileError::unsupported_at(&format!("the interval '{text}'"), expr))?;
                let keyword = functions::interval_keyword(&pair[1].to_ascii_lowercase())
                    .ok_or_else(|| TranspileError::unsupported_at(&format!("the interval '{text}'"), expr))?;
                parts.push((keyword, amount));
            }
        }
    }
    Ok(parts)
}

pub(super) fn field_name(field: &DateTimeField) -> String {
    match field {
        DateTimeField::Custom(ident) => ident.value.to_ascii_lowercase(),
        DateTimeField::Week(_) => "week".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

pub(super) fn extract(unit: &str, value: Py, expr: &Expr) -> Result<Py, TranspileError> {
    let method = match unit {
        "year" | "years" | "y" => "year",
        "month" | "months" | "mon" => "month",
        "day" | "days" | "d" | "dayofmonth" => "day",
        "hour" | "hours" | "h" => "hour",
        "minute" | "minutes" | "m" => "minute",
        "second" | "seconds" | "s" => "second",
        "quarter" => "quarter",
        "week" | "weeks" | "isoweek" | "weekofyear" => "week_of_year",
        "doy" | "dayofyear" => "day_of_year",
        "epoch" => "epoch_seconds",
        "dow" | "dayofweek" => {
            // SQL counts from Sunday = 0, Ibis from Monday = 0.
            return Ok(Py::op(format!("({}.day_of_week.index() + 1) % 7", value.receiver()), MULTIPLICATIVE));
        }
        "isodow" => return Ok(Py::op(format!("{}.day_of_week.index() + 1", value.receiver()), ADDITIVE)),
        _ => return Err(TranspileError::unsupported_at(&format!("extracting {unit}"), expr)),
    };
    Ok(value.method(method, &[]))
}

/// A LIKE pattern with an escape character as an anchored regular expression (RE2, as DuckDB's
/// regexp_matches reads it): `%` any run of characters (newlines too), `_` one character, the
/// escape character makes the next one literal.
pub(super) fn like_regex(pattern: &str, escape: char, case_insensitive: bool) -> String {
    let mut regex = String::from(if case_insensitive { "(?is)^" } else { "(?s)^" });
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = if c == escape {
            match chars.next() {
                Some(next) => next,
                None => break,
            }
        } else if c == '%' {
            regex.push_str(".*");
            continue;
        } else if c == '_' {
            regex.push('.');
            continue;
        } else {
            c
        };
        if "\\.+*?()|[]{}^$".contains(literal) {
            regex.push('\\');
        }
        regex.push(literal);
    }
    regex.push('$');
    regex
}

#[cfg(test)]
mod like_tests {
    use super::like_regex;

    #[test]
    fn escaped_wildcards_are_literal_and_others_match_anything() {
        assert_eq!(like_regex("a!_b%", '!', false), "(?s)^a_b.*$");
        assert_eq!(like_regex("50!%_(x)", '!', true), "(?is)^50%.\\(x\\)$");
    }
}
