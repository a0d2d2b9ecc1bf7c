//! `_` where an Ibis expression cannot take it: such a value becomes a `lambda`.

/// `ibis.` functions that build an Ibis value, which cannot take `_` as an operand (ranking
/// functions can: their `.over(...)` takes `_`).
const IBIS_VALUE_MAKERS: &[&str] =
    &["literal", "null", "date", "timestamp", "time", "interval", "now", "today", "random", "uuid", "array", "map", "struct", "pi", "e"];

/// `_` stands for the table a method is called on, but an Ibis expression cannot take a deferred
/// operand (`orders.x.count() / _.count()` fails); such a value becomes `lambda t: ...` with `t`
/// in place of `_`, which Ibis calls with that same table.
pub(crate) fn deferred_safe(code: &str) -> String {
    let roots = attribute_roots(code);
    let deferred: Vec<usize> = roots.iter().filter(|(_, name)| *name == "_").map(|(at, _)| *at).collect();
    // Only where another name starts a chain (`orders.amount`), or an `ibis.` function makes a
    // value (`ibis.literal(50)`), does an Ibis expression meet `_`; `ibis.desc(_.x)` and the
    // like take `_` themselves.
    let mixed = roots.iter().any(|(at, name)| match *name {
        "_" => false,
        "ibis" => IBIS_VALUE_MAKERS.iter().any(|maker| code[at + 5..].starts_with(maker) && code[at + 5 + maker.len()..].starts_with('(')),
        _ => true,
    });
    if deferred.is_empty() || !mixed {
        return code.to_string();
    }
    // The parameter must not shadow a table variable of the code (a self-join's `t`).
    let parameter = ["t", "tbl", "rel", "rows"].into_iter().find(|p| !roots.iter().any(|(_, name)| name == p)).unwrap_or("_t");
    let mut out = String::with_capacity(code.len() + 12);
    let mut last = 0;
    for position in deferred {
        out.push_str(&code[last..position]);
        out.push_str(parameter);
        last = position + 1;
    }
    out.push_str(&code[last..]);
    format!("lambda {parameter}: {out}")
}

/// Every name that starts an attribute chain (followed by `.` or `[`) outside string literals,
/// with its byte offset: `_` and `orders` in `orders.x / _.count()`.
pub(super) fn attribute_roots(code: &str) -> Vec<(usize, &str)> {
    let bytes = code.as_bytes();
    let mut roots = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if b == b'"' || b == b'\'' {
            quote = Some(b);
            i += 1;
            continue;
        }
        let starts_identifier =
            (b.is_ascii_alphabetic() || b == b'_') && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'.'));
        if starts_identifier {
            let end = (i..bytes.len()).find(|&j| !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')).unwrap_or(bytes.len());
            if matches!(bytes.get(end), Some(b'.') | Some(b'[')) {
                roots.push((i, &code[i..end]));
            }
            i = end;
            continue;
        }
        i += 1;
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::deferred_safe;

    #[test]
    fn deferred_operands_become_lambdas_and_plain_ones_stay() {
        assert_eq!(deferred_safe("_.count()"), "_.count()");
        assert_eq!(deferred_safe("_.total > 5"), "_.total > 5");
        assert_eq!(deferred_safe("orders.amount"), "orders.amount");
        assert_eq!(deferred_safe("100.0 * orders.x.count() / _.count()"), "lambda t: 100.0 * orders.x.count() / t.count()");
        assert_eq!(deferred_safe("ibis.desc(_.n)"), "ibis.desc(_.n)");
        assert_eq!(deferred_safe("(100.0 * _.revenue / _.revenue.sum().over()).round(2)"), "(100.0 * _.revenue / _.revenue.sum().over()).round(2)");
        assert_eq!(deferred_safe("ibis.desc(orders.x.sum() / _.count())"), "lambda t: ibis.desc(orders.x.sum() / t.count())");
        assert_eq!(deferred_safe("t.x.sum() / _.count()"), "lambda tbl: t.x.sum() / tbl.count()", "a table named t is not shadowed");
        assert_eq!(deferred_safe("_.x > ibis.literal(50) / 100.0 * _.y"), "lambda t: t.x > ibis.literal(50) / 100.0 * t.y");
        assert_eq!(deferred_safe("ibis.desc(_.x)"), "ibis.desc(_.x)");
        assert_eq!(deferred_safe("x.like(\"_._\")"), "x.like(\"_._\")");
    }
}
