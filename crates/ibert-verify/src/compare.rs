//! Equality of two normalized results: positional columns (names are not compared), numbers by
//! value (integers and decimals exactly, floats within a tight tolerance), NULL equal to NULL,
//! and rows as multisets unless the query orders them totally. See `docs/verification.md`.

use std::cmp::Ordering;

use crate::result_set::{ResultSet, Value};

/// Relative tolerance for floats: sums and averages may be accumulated in different orders, which
/// moves the last few bits, but a value rounded to another decimal place (202.13 against
/// 202.129) is a difference.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;
/// Absolute tolerance for floats near zero.
pub const ABSOLUTE_TOLERANCE: f64 = 1e-12;

pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Typed(kind_x, x), Value::Typed(kind_y, y)) => (kind_x == kind_y && x == y) || same_day(kind_x, x, kind_y, y),
        (Value::Decimal(..) | Value::Int(_), Value::Decimal(..) | Value::Int(_)) => match (exact(a), exact(b)) {
            (Some((x, x_scale)), Some((y, y_scale))) => same_decimal(x, x_scale, y, y_scale),
            _ => false,
        },
        (Value::Int(_) | Value::Float(_) | Value::Decimal(..), Value::Int(_) | Value::Float(_) | Value::Decimal(..)) => floats_equal(as_f64(a), as_f64(b)),
        _ => false,
    }
}

/// A date and a timestamp at midnight of that date hold the same value (DuckDB's `date +
/// interval` is a timestamp where Ibis's is a date, which it casts back when executed); whether
/// the *types* agree is checked separately, on what Ibis returns to a user.
fn same_day(kind_x: &str, x: &str, kind_y: &str, y: &str) -> bool {
    let midnight = |date: &str, timestamp: &str| timestamp.strip_prefix(date).is_some_and(|time| time == "T00:00:00");
    match (kind_x, kind_y) {
        ("date", "timestamp") => midnight(x, y),
        ("timestamp", "date") => midnight(y, x),
        _ => false,
    }
}

/// An integer or decimal as `(raw, scale)`.
fn exact(value: &Value) -> Option<(i128, u8)> {
    match value {
        Value::Int(x) => Some((*x, 0)),
        Value::Decimal(raw, scale) => Some((*raw, *scale)),
        _ => None,
    }
}

/// `x / 10^x_scale == y / 10^y_scale`, exactly.
fn same_decimal(x: i128, x_scale: u8, y: i128, y_scale: u8) -> bool {
    let scale_up = |raw: i128, by: u8| 10_i128.checked_pow(u32::from(by)).and_then(|factor| raw.checked_mul(factor));
    match x_scale.cmp(&y_scale) {
        Ordering::Equal => x == y,
        Ordering::Less => scale_up(x, y_scale - x_scale) == Some(y),
        Ordering::Greater => scale_up(y, x_scale - y_scale) == Some(x),
    }
}

fn floats_equal(x: f64, y: f64) -> bool {
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    if x == y {
        return true;
    }
    if x.is_infinite() || y.is_infinite() {
        return false;
    }
    (x - y).abs() <= ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * x.abs().max(y.abs())
}

fn as_f64(value: &Value) -> f64 {
    match value {
        Value::Int(x) => *x as f64,
        Value::Float(x) => *x,
        Value::Decimal(raw, scale) => *raw as f64 / 10_f64.powi(i32::from(*scale)),
        _ => f64::NAN,
    }
}

fn rows_equal(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_equal(x, y))
}

/// An order on values that puts values equal within tolerance next to each other (numbers are
/// ordered by their value rounded to 6 significant digits).
fn canonical_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::Decimal(..) => 2,
            Value::Text(_) => 3,
            Value::Typed(_, _) => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Typed(kind_x, x), Value::Typed(kind_y, y)) => kind_x.cmp(kind_y).then_with(|| x.cmp(y)),
        (Value::Int(_) | Value::Float(_) | Value::Decimal(..), Value::Int(_) | Value::Float(_) | Value::Decimal(..)) => {
            rounded(as_f64(a)).total_cmp(&rounded(as_f64(b)))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn rounded(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.5e}").parse().unwrap_or(x)
}

fn row_cmp(a: &[Value], b: &[Value]) -> Ordering {
    a.iter().zip(b).map(|(x, y)| canonical_cmp(x, y)).find(|o| o.is_ne()).unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Rows in canonical order, for multiset comparison and fingerprints.
pub fn sorted_rows(result: &ResultSet) -> Vec<Vec<Value>> {
    let mut rows = result.rows.clone();
    rows.sort_by(|a, b| row_cmp(a, b));
    rows
}

/// Whether two results hold the same rows, in any order.
pub fn same_multiset(a: &ResultSet, b: &ResultSet) -> bool {
    a.rows.len() == b.rows.len() && sorted_rows(a).iter().zip(&sorted_rows(b)).all(|(x, y)| rows_equal(x, y))
}

/// Whether two results hold the same rows in the same order.
pub fn same_sequence(a: &ResultSet, b: &ResultSet) -> bool {
    a.rows.len() == b.rows.len() && a.rows.iter().zip(&b.rows).all(|(x, y)| rows_equal(x, y))
}

/// Compares `actual` (from Ibis) to `expected` (from the SQL); on a difference, a short diff.
pub fn compare(expected: &ResultSet, actual: &ResultSet, ordered: bool) -> Result<(), String> {
    if expected.columns.len() != actual.columns.len() {
        return Err(format!(
            "SQL returns {} columns ({}), Ibis {} ({})",
            expected.columns.len(),
            expected.columns.join(", "),
            actual.columns.len(),
            actual.columns.join(", ")
        ));
    }
    if ordered && same_sequence(expected, actual) {
        return Ok(());
    }
    // Where the rows differ, the diff is between the canonically sorted rows even when order
    // matters: the order of the side that is wrong may vary from run to run (ties, NULLs),
    // and a reject must read the same in every run.
    let (left, right) = (sorted_rows(expected), sorted_rows(actual));
    if let Some(index) = (0..left.len().max(right.len())).find(|&i| match (left.get(i), right.get(i)) {
        (Some(x), Some(y)) => !rows_equal(x, y),
        _ => true,
    }) {
        return Err(format!(
            "{} SQL rows vs {} Ibis rows, compared as multisets; first difference at row {}: SQL {} vs Ibis {}",
            left.len(),
            right.len(),
            index + 1,
            left.get(index).map_or("(none)".into(), |row| render_row(row)),
            right.get(index).map_or("(none)".into(), |row| render_row(row)),
        ));
    }
    if ordered {
        return Err(format!("the same {} rows as the SQL, in another order (the SQL orders its rows totally)", left.len()));
    }
    Ok(())
}

pub fn render_row(row: &[Value]) -> String {
    let cells: Vec<String> = row.iter().map(Value::to_string).collect();
    let text = format!("({})", cells.join(", "));
    if text.chars().count() > 160 { format!("{}...)", text.chars().take(157).collect::<String>()) } else { text }
}

/// Text of the rows for a fingerprint, with floats rounded so that tolerance-equal results
/// fingerprint the same.
pub fn canonical_text(rows: &[Vec<Value>]) -> String {
    let mut text = String::new();
    for row in rows {
        for value in row {
            match value {
                Value::Float(x) => text.push_str(&format!("{:.5e}", x)),
                Value::Int(_) | Value::Decimal(..) => text.push_str(&format!("{:.5e}", as_f64(value))),
                other => text.push_str(&other.to_string()),
            }
            text.push('\u{1f}');
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rows: Vec<Vec<Value>>) -> ResultSet {
        let width = rows.first().map_or(1, Vec::len);
        ResultSet { columns: (0..width).map(|i| format!("c{i}")).collect(), kinds: Vec::new(), rows }
    }

    #[test]
    fn numbers_compare_by_value_within_tolerance() {
        assert!(values_equal(&Value::Int(3), &Value::Float(3.0)));
        assert!(values_equal(&Value::Float(0.1 + 0.2), &Value::Float(0.3)));
        assert!(!values_equal(&Value::Float(1.0), &Value::Float(1.01)));
        assert!(!values_equal(&Value::Float(202.13), &Value::Float(202.129)), "a value rounded to another place differs");
        assert!(!values_equal(&Value::Float(219.5925), &Value::Decimal(21959, 2)));
        assert!(values_equal(&Value::Float(202.13), &Value::Decimal(20213, 2)));
        assert!(values_equal(&Value::Decimal(20213, 2), &Value::Decimal(202130, 3)), "decimals compare by value at any scale");
        assert!(!values_equal(&Value::Decimal(202129, 3), &Value::Decimal(20213, 2)));
        assert!(values_equal(&Value::Decimal(500, 2), &Value::Int(5)));
        let date = Value::Typed("date", "2024-02-29".into());
        assert!(values_equal(&date, &Value::Typed("timestamp", "2024-02-29T00:00:00".into())), "a date is its midnight");
        assert!(!values_equal(&date, &Value::Typed("timestamp", "2024-02-29T00:00:01".into())));
        assert!(!values_equal(&date, &Value::Text("2024-02-29".into())));
        assert!(values_equal(&Value::Null, &Value::Null));
        assert!(!values_equal(&Value::Null, &Value::Int(0)));
        assert!(!values_equal(&Value::Text("1".into()), &Value::Int(1)));
        assert!(values_equal(&Value::Float(f64::NAN), &Value::Float(f64::NAN)));
        assert!(!values_equal(&Value::Float(f64::INFINITY), &Value::Float(5.0)));
        assert!(!values_equal(&Value::Float(f64::INFINITY), &Value::Float(f64::NEG_INFINITY)));
        assert!(values_equal(&Value::Float(f64::INFINITY), &Value::Float(f64::INFINITY)));
    }

    #[test]
    fn multiset_ignores_order_but_not_duplicates() {
        let a = set(vec![vec![Value::Int(1)], vec![Value::Int(2)], vec![Value::Int(2)]]);
        let b = set(vec![vec![Value::Int(2)], vec![Value::Int(1)], vec![Value::Int(2)]]);
        let c = set(vec![vec![Value::Int(2)], vec![Value::Int(1)], vec![Value::Int(1)]]);
        assert!(compare(&a, &b, false).is_ok());
        assert!(compare(&a, &b, true).unwrap_err().contains("the same 3 rows as the SQL, in another order"));
        // Rows that differ are reported by their sorted order, however each side ordered them.
        let shuffled = set(vec![vec![Value::Int(1)], vec![Value::Int(1)], vec![Value::Int(2)]]);
        assert_eq!(compare(&a, &c, true).unwrap_err(), compare(&a, &shuffled, true).unwrap_err());
        let diff = compare(&a, &c, false).unwrap_err();
        assert!(diff.contains("first difference at row 2"), "{diff}");
    }

    #[test]
    fn column_count_mismatch_is_reported() {
        let a = set(vec![vec![Value::Int(1), Value::Int(2)]]);
        let b = set(vec![vec![Value::Int(1)]]);
        assert!(compare(&a, &b, false).unwrap_err().contains("2 columns"));
    }

    #[test]
    fn nulls_sort_together_with_mixed_numbers() {
        let a = set(vec![vec![Value::Null], vec![Value::Float(2.0)], vec![Value::Int(1)]]);
        let b = set(vec![vec![Value::Int(2)], vec![Value::Float(1.000000000001)], vec![Value::Null]]);
        assert!(same_multiset(&a, &b));
        assert_eq!(canonical_text(&sorted_rows(&a)), canonical_text(&sorted_rows(&b)));
    }
}
