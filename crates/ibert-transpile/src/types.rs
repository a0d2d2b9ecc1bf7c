//! Ibis type strings (`int64`, `decimal(18, 2)`, `array<string>`, `struct<city: string>`) as the
//! translator reads them: the parts of decimals, lists and structs, and the common type of two
//! operands where Ibis computes none.

/// Ibis's type of a timestamp difference (`ts2 - ts1`).
pub const TIMESTAMP_DIFFERENCE: &str = "interval('s')";

/// The largest precision DuckDB's (and Ibis's) decimals have.
const MAX_PRECISION: u32 = 38;

/// The type without its non-null marker (`!int64` is `int64`) and without spaces.
fn bare(ty: &str) -> String {
    ty.trim().trim_start_matches('!').replace(' ', "")
}

/// `(precision, scale)` of a decimal type.
pub fn decimal_parts(ty: &str) -> Option<(u32, u32)> {
    let bare = bare(ty);
    let (precision, scale) = bare.strip_prefix("decimal(")?.strip_suffix(')')?.split_once(',')?;
    Some((precision.parse().ok()?, scale.parse().ok()?))
}

pub fn is_integer(ty: &str) -> bool {
    let bare = bare(ty);
    let bits = bare.strip_prefix("int").or_else(|| bare.strip_prefix("uint"));
    bits.is_some_and(|bits| !bits.is_empty() && bits.chars().all(|c| c.is_ascii_digit()))
}

pub fn is_float(ty: &str) -> bool {
    bare(ty).starts_with("float")
}

pub fn is_interval(ty: &str) -> bool {
    bare(ty).starts_with("interval")
}

/// Two types that are the same once markers and spaces are set aside.
pub fn same(a: &str, b: &str) -> bool {
    bare(a) == bare(b)
}

/// The decimal that holds every value of two different decimal types exactly: the larger
/// number of integer digits and the larger scale (as DuckDB unites them). `None` unless both
/// are decimals and they differ: Ibis refuses to add, compare, coalesce or unite two decimals
/// of another precision or scale, so both sides are cast to this one.
pub fn common_decimal(a: &str, b: &str) -> Option<String> {
    let ((pa, sa), (pb, sb)) = (decimal_parts(a)?, decimal_parts(b)?);
    if (pa, sa) == (pb, sb) {
        return None;
    }
    let scale = sa.max(sb);
    let precision = (pa.saturating_sub(sa).max(pb.saturating_sub(sb)) + scale).min(MAX_PRECISION);
    Some(format!("decimal({precision}, {scale})"))
}

/// The type both operands of a product are cast to where they are decimals of other types
/// (Ibis multiplies only equal ones): the larger scale at the largest precision, so that
/// DuckDB's product (the sum of the scales) has room for as many integer digits as it can.
pub fn product_operands(a: &str, b: &str) -> Option<String> {
    let ((pa, sa), (pb, sb)) = (decimal_parts(a)?, decimal_parts(b)?);
    ((pa, sa) != (pb, sb)).then(|| format!("decimal({MAX_PRECISION}, {})", sa.max(sb)))
}

/// The type both columns of a set operation are cast to where their Ibis types differ: two
/// decimals their common decimal, a float with any number a float, two integers the wider
/// (int64), an integer with a decimal a decimal with room for the integer's digits, a date with
/// a timestamp a timestamp; otherwise the left's type (Ibis unites equal schemas only).
pub fn set_operation_type(left: &str, right: &str) -> String {
    if same(left, right) {
        return left.to_string();
    }
    if let Some(common) = common_decimal(left, right) {
        return common;
    }
    // A date with a timestamp: DuckDB unites them as timestamps (midnight for the dates).
    let temporal = |t: &str| matches!(bare(t).as_str(), "date" | "timestamp");
    if temporal(left) && temporal(right) {
        return "timestamp".into();
    }
    let numeric = |t: &str| is_integer(t) || is_float(t) || decimal_parts(t).is_some();
    if numeric(left) && numeric(right) {
        if is_float(left) || is_float(right) {
            return "float64".into();
        }
        if is_integer(left) && is_integer(right) {
            return "int64".into();
        }
        // One integer and one decimal: the integer as decimal(19, 0), which holds any int64.
        let (decimal, _) = if decimal_parts(left).is_some() { (left, right) } else { (right, left) };
        return common_decimal(decimal, "decimal(19, 0)").unwrap_or_else(|| decimal.to_string());
    }
    left.to_string()
}

/// The type of one field of a struct type (field names compared as SQL compares names).
pub fn struct_field(ty: &str, field: &str) -> Option<String> {
    let trimmed = ty.trim().trim_start_matches('!');
    let inner = trimmed.strip_prefix("struct<")?.strip_suffix('>')?;
    split_top_level(inner).into_iter().find_map(|entry| {
        let (name, field_type) = entry.split_once(':')?;
        let name = name.trim().trim_matches('"');
        name.eq_ignore_ascii_case(field).then(|| field_type.trim().to_string())
    })
}

/// Splits at the commas that are not inside brackets of any kind (`<...>`, `(...)`, `[...]`,
/// `{...}`), trimmed, empty parts dropped.
pub(crate) fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (index, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' | '{' => depth += 1,
            '>' | ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..index].trim());
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.into_iter().filter(|part| !part.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_decimal_keeps_every_digit_of_both() {
        assert_eq!(common_decimal("decimal(18, 2)", "decimal(12,6)").as_deref(), Some("decimal(22, 6)"));
        assert_eq!(common_decimal("!decimal(38,2)", "decimal(12,6)").as_deref(), Some("decimal(38, 6)"));
        assert_eq!(common_decimal("decimal(18,2)", "decimal(18, 2)"), None);
        assert_eq!(common_decimal("decimal(18,2)", "float64"), None);
    }

    #[test]
    fn set_operations_widen_rather_than_truncate() {
        assert_eq!(set_operation_type("int64", "float64"), "float64");
        assert_eq!(set_operation_type("int32", "int64"), "int64");
        assert_eq!(set_operation_type("decimal(10,2)", "int64"), "decimal(21, 2)");
        assert_eq!(set_operation_type("string", "int64"), "string");
        assert_eq!(set_operation_type("date", "!timestamp"), "timestamp");
        assert!(is_integer("!int32") && is_integer("uint8") && !is_integer("interval('s')"));
    }

    #[test]
    fn nested_types_give_their_parts() {
        let ty = "struct<city: string, geo: struct<lat: float64, lon: float64>, tags: array<string>>";
        assert_eq!(struct_field(ty, "CITY").as_deref(), Some("string"));
        assert_eq!(struct_field(ty, "geo").as_deref(), Some("struct<lat: float64, lon: float64>"));
        assert_eq!(struct_field(ty, "zip"), None);
        assert_eq!(struct_field("string", "a"), None);
    }
}
