//! Relations that read no table: `VALUES` lists, SELECT without FROM, and the table functions
//! `generate_series`, `range` and `unnest`. Ibis builds them from values: an array unnested into
//! rows (`ibis.array([...]).unnest().name("x").as_table()`), or a scalar made a one-row table.

use super::select::{Output, named_arguments, select_arguments};
use super::set_operation::null_type;
use super::{Rel, Translator};
use crate::ast::{contains_aggregate, contains_window, function_name, positional, visit};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Cx, Phase};
use crate::python;
use crate::scope::{Column, Scope};
use sqlparser::ast::{Expr, LimitClause, OrderBy, Select, Spanned, UnaryOperator, Value, Values};

/// The variable name the unnested array of a `VALUES` list takes before its fields are columns.
const ROW_FIELD: &str = "row";

impl Translator<'_> {
    /// A `VALUES` list: an array of structs, one per row, unnested and unpacked into columns
    /// (`col0`, `col1`, ... as DuckDB names them, unless `names` are given). A single column
    /// needs no struct.
    pub(super) fn values(&mut self, values: &Values, names: Option<&[String]>, at: &impl Spanned) -> Result<Rel, TranspileError> {
        let rows: Vec<&Vec<Expr>> = values.rows.iter().map(|row| &row.content).collect();
        let Some(width) = rows.first().map(|row| row.len()) else {
            return Err(TranspileError::resolve_at("a VALUES list without rows".into(), at));
        };
        if let Some(row) = rows.iter().find(|row| row.len() != width) {
            return Err(TranspileError::resolve_at(format!("VALUES rows of {width} and {} values", row.len()), &row[0]));
        }
        let names: Vec<String> = match names {
            Some(names) if names.len() != width => {
                return Err(TranspileError::resolve_at(format!("{} column names given for {width} VALUES columns", names.len()), at));
            }
            Some(names) => names.to_vec(),
            None => (0..width).map(|i| format!("col{i}")).collect(),
        };
        // A NULL takes its column's type, from the other rows' literals.
        let types: Vec<&str> = (0..width).map(|i| rows.iter().find_map(|row| literal_type(&row[i])).unwrap_or("int32")).collect();
        let empty = Scope::default();
        let cx = Cx { scope: &empty, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut elements = Vec::new();
        for row in &rows {
            let mut cells = Vec::new();
            for (i, cell) in row.iter().enumerate() {
                let code = match null_type(cell) {
                    Some(_) => format!("ibis.null({})", python::string(types[i])),
                    None => self.expr(cell, &cx)?.code,
                };
                cells.push(code);
            }
            elements.push(if width == 1 {
                cells.remove(0)
            } else {
                let fields: Vec<String> = names.iter().zip(cells).map(|(name, code)| format!("{}: {code}", python::string(name))).collect();
                format!("ibis.struct({{{}}})", fields.join(", "))
            });
        }
        let array = format!("ibis.array([{}]).unnest()", elements.join(", "));
        let chain = if width == 1 {
            Chain::new(format!("{array}.name({}).as_table()", python::string(&names[0])))
        } else {
            let mut chain = Chain::new(format!("{array}.name({}).as_table()", python::string(ROW_FIELD)));
            chain.call("unpack", &[python::string(ROW_FIELD)]);
            chain
        };
        Ok(Rel { chain, columns: names.into_iter().map(|name| Column::typed(name, None)).collect() })
    }

    /// `SELECT 42`, `SELECT (SELECT count(*) FROM a) AS n, (SELECT count(*) FROM b) AS m`: one
    /// row, the first value made a table (`value.name("n").as_table()`) and the others added with
    /// `mutate`. An UNNEST makes the rows, so it comes first and the others repeat over it.
    pub(super) fn select_without_from(
        &mut self,
        select: &Select,
        order_by: Option<&OrderBy>,
        limit: Option<&LimitClause>,
        outer: &Scope,
    ) -> Result<Rel, TranspileError> {
        let grouped = !matches!(&select.group_by, sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
        if select.selection.is_some() || grouped || select.having.is_some() || select.qualify.is_some() || select.distinct.is_some() {
            return Err(TranspileError::unsupported_at("WHERE, GROUP BY, HAVING, QUALIFY or DISTINCT without FROM", select));
        }
        let scope = Scope::child(outer);
        let items = self.select_items(&select.projection, &scope)?;
        if items.is_empty() {
            return Err(TranspileError::resolve_at("SELECT * without FROM selects no column".into(), select));
        }
        if let Some(item) = items.iter().find(|i| contains_aggregate(&i.expr) || contains_window(&i.expr)) {
            return Err(TranspileError::unsupported_at("aggregates or window functions without FROM", &item.expr));
        }
        let cx = Cx { scope: &scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut values = Vec::new();
        let mut columns = Vec::new();
        for item in &items {
            values.push(self.expr(&item.expr, &cx)?);
            columns.push(Column::typed(item.name.clone(), null_type(&item.expr)));
        }
        let first = items.iter().position(|i| contains_unnest(&i.expr)).unwrap_or(0);
        let mut chain = Chain::new(format!("{}.name({}).as_table()", values[first].receiver(), python::string(&items[first].name)));
        let rest: Vec<Output> =
            items.iter().zip(&values).enumerate().filter(|(i, _)| *i != first).map(|(_, (item, py))| Output::computed(item.name.clone(), py.value())).collect();
        if !rest.is_empty() {
            chain.call("mutate", &named_arguments(&rest));
        }
        if first != 0 {
            let order: Vec<Output> = items
                .iter()
                .map(|item| Output { name: item.name.clone(), code: python::attribute("_", &item.name), source_column: Some(item.name.clone()) })
                .collect();
            chain.call("select", &select_arguments(&order));
        }
        self.order_and_limit_outputs(Rel { chain, columns }, order_by, limit)
    }

    /// `generate_series(...)`, `range(...)` and `unnest([...])` in FROM: an Ibis array
    /// (`ibis.range`, or the array itself) unnested into a one-column table. DuckDB's
    /// `generate_series` includes its end, `range` does not.
    pub(super) fn table_function(&mut self, name: &str, exprs: &[&Expr], column: Option<&str>, at: &impl Spanned) -> Result<Rel, TranspileError> {
        let empty = Scope::default();
        let cx = Cx { scope: &empty, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut codes = Vec::new();
        for expr in exprs {
            codes.push(self.expr(expr, &cx)?.code);
        }
        let array = match (name, codes.as_slice()) {
            ("unnest", [array]) => array.clone(),
            ("range" | "generate_series", [stop]) => self.series_call(name, "0", stop, exprs[0], None)?,
            ("range" | "generate_series", [start, stop]) => self.series_call(name, start, stop, exprs[1], None)?,
            ("range" | "generate_series", [start, stop, step]) => self.series_call(name, start, stop, exprs[1], Some((step, exprs[2])))?,
            _ => return Err(TranspileError::unsupported_at(&format!("the table function {name}() with {} arguments", codes.len()), at)),
        };
        let column = column.unwrap_or(name).to_string();
        let chain = Chain::new(format!("{array}.unnest().name({}).as_table()", python::string(&column)));
        let temporal = name != "unnest" && exprs.get(2).is_some_and(|step| interval_step(step).is_some());
        Ok(Rel { chain, columns: vec![Column::typed(column, temporal.then(|| "timestamp".to_string()))] })
    }

    /// `ibis.range(start, stop[, step])`, the stop moved one step on for `generate_series`,
    /// which includes it: by one, up or down by the sign of the step.
    fn series_call(&mut self, name: &str, start: &str, stop: &str, stop_expr: &Expr, step: Option<(&String, &Expr)>) -> Result<String, TranspileError> {
        if let Some((step, step_expr)) = step
            && let Some(descending) = interval_step(step_expr)
        {
            // Over dates or timestamps DuckDB makes timestamps; the stop is included one
            // microsecond (the timestamps' resolution) on.
            let (start, mut stop) = (as_timestamp(start), as_timestamp(stop));
            if name == "generate_series" {
                stop = format!("{stop} {} ibis.interval(microseconds=1)", if descending { "-" } else { "+" });
            }
            return Ok(format!("ibis.range({start}, {stop}, {step})"));
        }
        let descending = match step {
            None => false,
            Some((_, step)) => match signed_integer(step) {
                Some(n) if n != 0 => n < 0,
                _ => return Err(TranspileError::unsupported_at(&format!("{name}() with a step that is not a whole number other than 0"), step)),
            },
        };
        let stop = if name == "generate_series" {
            match signed_integer(stop_expr) {
                Some(n) => (if descending { n - 1 } else { n + 1 }).to_string(),
                None => format!("{stop} {} 1", if descending { "-" } else { "+" }),
            }
        } else {
            stop.to_string()
        };
        let mut args = vec![start.to_string(), stop];
        if let Some((step, _)) = step {
            args.push(step.clone());
        }
        Ok(format!("ibis.range({})", args.join(", ")))
    }
}

/// For an interval step of a series (`INTERVAL '1 day'`), whether it goes down; `None` for any
/// other step.
fn interval_step(step: &Expr) -> Option<bool> {
    match step {
        Expr::Nested(inner) => interval_step(inner),
        Expr::Interval(interval) => Some(interval.value.to_string().trim_matches('\'').trim_start().starts_with('-')),
        _ => None,
    }
}

/// A date or timestamp value's code as a timestamp.
fn as_timestamp(code: &str) -> String {
    if let Some(rest) = code.strip_prefix("ibis.date(").filter(|rest| rest.starts_with('"')) {
        return format!("ibis.timestamp({rest}");
    }
    if code.starts_with("ibis.timestamp(") { code.to_string() } else { format!("({code}).cast(\"timestamp\")") }
}

/// Whether `expr` calls `unnest`, which makes rows.
fn contains_unnest(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        found |= matches!(e, Expr::Function(f) if function_name(f) == "unnest");
        !found
    });
    found
}

/// An integer literal, negative ones too.
fn signed_integer(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => signed_integer(expr).map(|n| -n),
        Expr::Nested(inner) => signed_integer(inner),
        _ => positional(expr).and_then(|n| i64::try_from(n).ok()),
    }
}

/// The Ibis type of a literal, for a NULL in the same column of a `VALUES` list.
fn literal_type(expr: &Expr) -> Option<&'static str> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) if n.contains(['.', 'e', 'E']) => Some("float64"),
            Value::Number(..) => Some("int32"),
            Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) => Some("string"),
            Value::Boolean(_) => Some("boolean"),
            _ => None,
        },
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => literal_type(expr),
        Expr::TypedString(typed) => match crate::functions::ibis_type(&typed.data_type.to_string())?.as_str() {
            "date" => Some("date"),
            "timestamp" => Some("timestamp"),
            _ => None,
        },
        _ => None,
    }
}
