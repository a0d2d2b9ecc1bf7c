//! SQL function names and the Ibis spelling of each.

/// Aggregate functions (when used without `OVER`).
pub fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "sum"
            | "avg"
            | "mean"
            | "min"
            | "max"
            | "count"
            | "count_if"
            | "countif"
            | "stddev"
            | "stddev_samp"
            | "stddev_pop"
            | "variance"
            | "var_samp"
            | "var_pop"
            | "median"
            | "string_agg"
            | "listagg"
            | "group_concat"
            | "any_value"
            | "arbitrary"
            | "bool_and"
            | "bool_or"
            | "every"
            | "approx_count_distinct"
            | "quantile_cont"
            | "quantile"
            | "mode"
            | "corr"
            | "covar_samp"
            | "covar_pop"
            | "arg_max"
            | "arg_min"
            | "argmax"
            | "argmin"
            | "max_by"
            | "min_by"
            | "array_agg"
            | "list"
            | "percentile_cont"
            | "first"
            | "last"
            | "kurtosis"
            | "kurtosis_pop"
    )
}

/// Functions that only exist as window functions.
pub fn is_window_only(name: &str) -> bool {
    matches!(name, "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist" | "ntile" | "lag" | "lead" | "first_value" | "last_value" | "nth_value")
}

/// Window functions whose result does not depend on the frame.
pub fn ignores_frame(name: &str) -> bool {
    matches!(name, "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist" | "ntile" | "lag" | "lead")
}

/// `(method, extra arguments)` of a one-argument aggregate: `x.method(extra)`.
pub fn aggregate_method(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "sum" => ("sum", ""),
        "avg" | "mean" => ("mean", ""),
        "min" => ("min", ""),
        "max" => ("max", ""),
        "count" => ("count", ""),
        "stddev" | "stddev_samp" => ("std", ""),
        "stddev_pop" => ("std", "how=\"pop\""),
        "variance" | "var_samp" => ("var", ""),
        "var_pop" => ("var", "how=\"pop\""),
        "median" => ("median", ""),
        "any_value" | "arbitrary" => ("arbitrary", ""),
        "bool_and" | "every" => ("all", ""),
        "bool_or" => ("any", ""),
        "approx_count_distinct" => ("approx_nunique", ""),
        "mode" => ("mode", ""),
        "kurtosis" => ("kurtosis", ""),
        "kurtosis_pop" => ("kurtosis", "how=\"pop\""),
        _ => return None,
    })
}

/// `(method, arity)` of a scalar function that is one Ibis method of its first argument, the
/// other arguments passed on: `lower(x)` is `x.lower()`, `left(s, n)` is `s.left(n)`.
pub fn scalar_method(name: &str) -> Option<(&'static str, usize)> {
    Some(match name {
        "lower" | "lcase" => ("lower", 1),
        "upper" | "ucase" => ("upper", 1),
        "length" | "char_length" | "character_length" | "len" | "strlen" => ("length", 1),
        "reverse" => ("reverse", 1),
        "abs" => ("abs", 1),
        "ceil" | "ceiling" => ("ceil", 1),
        "floor" => ("floor", 1),
        "sqrt" => ("sqrt", 1),
        "exp" => ("exp", 1),
        "ln" => ("ln", 1),
        "log2" => ("log2", 1),
        "sign" => ("sign", 1),
        "year" => ("year", 1),
        "month" => ("month", 1),
        "day" | "dayofmonth" => ("day", 1),
        "hour" => ("hour", 1),
        "minute" => ("minute", 1),
        "second" => ("second", 1),
        "quarter" => ("quarter", 1),
        "dayofyear" => ("day_of_year", 1),
        "week" | "weekofyear" => ("week_of_year", 1),
        "epoch" => ("epoch_seconds", 1),
        "nullif" => ("nullif", 2),
        "left" => ("left", 2),
        "right" => ("right", 2),
        "starts_with" | "prefix" => ("startswith", 2),
        "ends_with" | "suffix" => ("endswith", 2),
        "contains" => ("contains", 2),
        "repeat" => ("repeat", 2),
        "regexp_matches" | "regexp_like" => ("re_search", 2),
        "strftime" => ("strftime", 2),
        "sin" => ("sin", 1),
        "cos" => ("cos", 1),
        "tan" => ("tan", 1),
        "asin" => ("asin", 1),
        "acos" => ("acos", 1),
        "atan" => ("atan", 1),
        "cot" => ("cot", 1),
        "degrees" => ("degrees", 1),
        "radians" => ("radians", 1),
        "atan2" => ("atan2", 2),
        "ascii" => ("ascii_str", 1),
        "isoyear" => ("iso_year", 1),
        "levenshtein" | "editdist3" => ("levenshtein", 2),
        "string_split" | "str_split" | "string_to_array" | "split" => ("split", 2),
        "regexp_split_to_array" | "string_split_regex" | "str_split_regex" => ("re_split", 2),
        "strptime" => ("as_timestamp", 2),
        "list_contains" | "array_contains" | "list_has" | "array_has" => ("contains", 2),
        "list_sort" | "array_sort" => ("sort", 1),
        "list_distinct" | "array_distinct" => ("unique", 1),
        "array_to_string" => ("join", 2),
        "list_concat" | "array_concat" | "list_cat" | "array_cat" => ("concat", 2),
        "array_length" => ("length", 1),
        "list_sum" => ("sums", 1),
        "list_max" => ("maxs", 1),
        "list_min" => ("mins", 1),
        "list_avg" => ("means", 1),
        "flatten" => ("flatten", 1),
        "unnest" => ("unnest", 1),
        "replace" => ("replace", 3),
        "translate" => ("translate", 3),
        "lpad" => ("lpad", 3),
        "rpad" => ("rpad", 3),
        _ => return None,
    })
}

/// The Ibis array method of a list function that takes a lambda: `list_transform(l, x -> ...)`
/// is `l.map(lambda x: ...)`.
pub fn lambda_method(name: &str) -> Option<&'static str> {
    Some(match name {
        "list_transform" | "array_transform" | "list_apply" | "array_apply" | "apply" => "map",
        "list_filter" | "array_filter" | "filter" => "filter",
        _ => return None,
    })
}

/// The Ibis array method of `list_aggregate(l, 'name')`.
pub fn list_aggregate_method(aggregate: &str) -> Option<&'static str> {
    Some(match aggregate {
        "sum" => "sums",
        "max" => "maxs",
        "min" => "mins",
        "avg" | "mean" => "means",
        _ => return None,
    })
}

/// Methods for functions that take other arguments too, which are only translated with one:
/// `trim(s)` is `s.strip()`, `trim(s, chars)` is not translated.
pub fn one_argument_method(name: &str) -> Option<&'static str> {
    Some(match name {
        "trim" | "btrim" => "strip",
        "ltrim" => "lstrip",
        "rtrim" => "rstrip",
        "log10" | "log" => "log10",
        _ => return None,
    })
}

/// Units of `date_trunc` as `truncate` spells them.
pub fn truncate_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "year" | "years" | "y" | "yr" => "Y",
        "quarter" | "quarters" => "Q",
        "month" | "months" | "mon" => "M",
        "week" | "weeks" => "W",
        "day" | "days" | "d" => "D",
        "hour" | "hours" | "h" => "h",
        "minute" | "minutes" | "m" | "min" => "m",
        "second" | "seconds" | "s" | "sec" => "s",
        _ => return None,
    })
}

/// Units of `date_diff` / `delta`.
pub fn delta_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "year" | "years" => "year",
        "quarter" | "quarters" => "quarter",
        "month" | "months" => "month",
        "week" | "weeks" => "week",
        "day" | "days" => "day",
        "hour" | "hours" => "hour",
        "minute" | "minutes" => "minute",
        "second" | "seconds" => "second",
        _ => return None,
    })
}

/// The unit code of `x.as_interval(unit)` for an interval unit (`INTERVAL (n) DAY`, `to_days(n)`).
pub fn interval_unit_code(unit: &str) -> Option<&'static str> {
    Some(match unit.trim_end_matches('s') {
        "year" => "Y",
        "quarter" => "Q",
        "month" | "mon" => "M",
        "week" => "W",
        "day" => "D",
        "hour" => "h",
        "minute" | "min" => "m",
        "second" | "sec" => "s",
        _ => return None,
    })
}

/// `ibis.interval` keyword for an interval unit.
pub fn interval_keyword(unit: &str) -> Option<&'static str> {
    Some(match unit.trim_end_matches('s') {
        "year" => "years",
        "quarter" => "quarters",
        "month" | "mon" => "months",
        "week" => "weeks",
        "day" => "days",
        "hour" => "hours",
        "minute" | "min" => "minutes",
        "second" | "sec" => "seconds",
        _ => return None,
    })
}

/// An SQL type name (as `sqlparser` prints it) spelled as an Ibis type.
pub fn ibis_type(sql_type: &str) -> Option<String> {
    let upper = sql_type.trim().to_ascii_uppercase();
    let (base, params) = match upper.split_once('(') {
        Some((base, rest)) => (base.trim().to_string(), Some(rest.trim_end_matches(')').replace(' ', ""))),
        None => (upper.clone(), None),
    };
    Some(match base.as_str() {
        "INT" | "INTEGER" | "INT4" | "SIGNED" => "int32".into(),
        "BIGINT" | "INT8" | "LONG" | "INT64" => "int64".into(),
        "SMALLINT" | "INT2" | "SHORT" => "int16".into(),
        "TINYINT" | "INT1" => "int8".into(),
        "UBIGINT" => "uint64".into(),
        "UINTEGER" => "uint32".into(),
        "DOUBLE" | "FLOAT8" | "DOUBLE PRECISION" | "FLOAT64" => "float64".into(),
        "FLOAT" | "REAL" | "FLOAT4" => "float32".into(),
        "DECIMAL" | "NUMERIC" | "DEC" => match params {
            Some(params) if params.contains(',') => format!("decimal({params})"),
            Some(precision) => format!("decimal({precision},0)"),
            None => "decimal(18,3)".into(),
        },
        "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER" | "CHARACTER VARYING" | "BPCHAR" => "string".into(),
        "BOOLEAN" | "BOOL" => "boolean".into(),
        "DATE" => "date".into(),
        "TIMESTAMP" | "DATETIME" | "TIMESTAMP WITHOUT TIME ZONE" => "timestamp".into(),
        "TIME" => "time".into(),
        "UUID" => "uuid".into(),
        "BLOB" | "BYTEA" => "binary".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_types_map_to_ibis_types() {
        assert_eq!(ibis_type("INTEGER").as_deref(), Some("int32"));
        assert_eq!(ibis_type("DECIMAL(15, 2)").as_deref(), Some("decimal(15,2)"));
        assert_eq!(ibis_type("NUMERIC(10)").as_deref(), Some("decimal(10,0)"));
        assert_eq!(ibis_type("VARCHAR(25)").as_deref(), Some("string"));
        assert_eq!(ibis_type("GEOMETRY"), None);
    }
}
