//! What a query asks of the data, read from its syntax tree, so that fixtures can hold rows the
//! query selects: the values each column is compared with (constant expressions evaluated by
//! DuckDB itself, so `date '1998-12-01' - interval '90' day` is a date), date parts
//! (`year(d) = 2022`), case folding and lengths of strings, `LIKE` patterns, columns equated
//! with each other (join keys, which must share values), grouping keys, `HAVING COUNT(*) > n`
//! thresholds, and whether the query orders and limits (ties then decide which rows come back).
//!
//! Nothing here decides what a query means; it only proposes values. Whether the fixtures made
//! from them select rows is decided by running the query (see `Verifier::reference_run`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, InTarget, Query, Select, UnaryOperator, Value, Visit,
    Visitor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

/// A constant of the query, evaluated: its kind and its text as DuckDB casts it to VARCHAR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wanted {
    pub kind: ValueKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueKind {
    Integer,
    Real,
    Date,
    Timestamp,
    Text,
    Bool,
}

impl ValueKind {
    /// The kind of a DuckDB type name as `typeof` reports it.
    fn of_duckdb(type_name: &str) -> Option<ValueKind> {
        let upper = type_name.to_ascii_uppercase();
        Some(match upper.as_str() {
            "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT" | "USMALLINT" | "UINTEGER" | "UBIGINT" | "UHUGEINT" => ValueKind::Integer,
            "FLOAT" | "DOUBLE" => ValueKind::Real,
            "DATE" => ValueKind::Date,
            "VARCHAR" => ValueKind::Text,
            "BOOLEAN" => ValueKind::Bool,
            _ if upper.starts_with("DECIMAL") => ValueKind::Real,
            _ if upper.starts_with("TIMESTAMP") => ValueKind::Timestamp,
            _ => return None,
        })
    }
}

/// What the query wants of one column (by lowercase name, whatever table it is in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ColumnWants {
    /// Values that satisfy, and values just outside, each comparison.
    pub values: BTreeSet<Wanted>,
    /// Date parts a date or timestamp should have (`year(d) = 2022`, `EXTRACT(MONTH FROM d)`).
    pub years: BTreeSet<i32>,
    pub months: BTreeSet<u32>,
    pub days: BTreeSet<u32>,
    /// Hours of a timestamp (`EXTRACT(HOUR FROM ts) >= 18`).
    pub hours: BTreeSet<u32>,
    /// Days of the week, Sunday 0 to Saturday 6 (`dayofweek(d) = 6`, `isodow(d) = 7`).
    pub weekdays: BTreeSet<u32>,
    /// String lengths the query compares with (`length(name) > 5`).
    pub lengths: BTreeSet<usize>,
    /// Cast to a number (`CAST(substr(code, 1, 4) AS INTEGER)`): a string column's values are
    /// then written in digits, since one value that is not fails the whole query.
    pub numeric_text: bool,
}

impl ColumnWants {
    fn absorb(&mut self, other: &ColumnWants) {
        self.values.extend(other.values.iter().cloned());
        self.years.extend(&other.years);
        self.months.extend(&other.months);
        self.days.extend(&other.days);
        self.hours.extend(&other.hours);
        self.weekdays.extend(&other.weekdays);
        self.lengths.extend(&other.lengths);
        self.numeric_text |= other.numeric_text;
    }
}

/// Everything [`QueryShape::analyze`] learned about one query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct QueryShape {
    pub columns: BTreeMap<String, ColumnWants>,
    /// Groups of columns the query equates (`o.customer_id = c.id`): each group should draw from
    /// one small domain so that joins match.
    pub linked: Vec<BTreeSet<String>>,
    /// Columns the query groups by.
    pub group_keys: BTreeSet<String>,
    /// The largest `COUNT(...) >= n` a `HAVING` asks for (as the group size needed).
    pub group_size: Option<u64>,
    /// The query (or a subquery) has a `LIMIT` under an `ORDER BY`.
    pub orders_and_limits: bool,
}

impl QueryShape {
    /// Nothing asked of the data.
    pub const EMPTY: QueryShape =
        QueryShape { columns: BTreeMap::new(), linked: Vec::new(), group_keys: BTreeSet::new(), group_size: None, orders_and_limits: false };

    /// Reads `sql`; `evaluate` runs a constant SQL expression and returns its `typeof` and value
    /// as text (`None` if it fails). SQL that does not parse gives an empty shape.
    pub fn analyze(sql: &str, evaluate: &mut dyn FnMut(&str) -> Option<(String, String)>) -> QueryShape {
        let Ok(statements) = Parser::parse_sql(&DuckDbDialect {}, sql) else { return QueryShape::default() };
        let mut collector = Collector::default();
        let _ = statements.visit(&mut collector);
        collector.finish(evaluate)
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.linked.is_empty() && self.group_keys.is_empty() && self.group_size.is_none() && !self.orders_and_limits
    }

    /// The link group `column` belongs to, if the query equates it with another column.
    pub fn link_of(&self, column: &str) -> Option<&BTreeSet<String>> {
        self.linked.iter().find(|group| group.contains(column))
    }
}

/// How a comparison relates a value to the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Relation {
    fn of(op: &BinaryOperator) -> Option<Relation> {
        Some(match op {
            BinaryOperator::Eq => Relation::Equal,
            BinaryOperator::NotEq => Relation::NotEqual,
            BinaryOperator::Lt => Relation::Less,
            BinaryOperator::LtEq => Relation::LessOrEqual,
            BinaryOperator::Gt => Relation::Greater,
            BinaryOperator::GtEq => Relation::GreaterOrEqual,
            _ => return None,
        })
    }

    /// `value op column` read as `column op' value`.
    fn flipped(self) -> Relation {
        match self {
            Relation::Less => Relation::Greater,
            Relation::LessOrEqual => Relation::GreaterOrEqual,
            Relation::Greater => Relation::Less,
            Relation::GreaterOrEqual => Relation::LessOrEqual,
            other => other,
        }
    }
}

/// The column side of a comparison: the column itself or something computed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Column(String),
    Part(DatePart, String),
    /// `lower(c)`, `upper(c)`, `trim(c)`: compared values are wanted in several spellings.
    Folded(String),
    Length(String),
    /// `c + k`, `c - k`, `c * k`, `c / k` with a constant `k` (its SQL).
    Shifted(String, BinaryOperator, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DatePart {
    Year,
    Quarter,
    Month,
    Day,
    Hour,
    /// Sunday 0 to Saturday 6.
    DayOfWeek,
    /// Monday 1 to Sunday 7.
    IsoDayOfWeek,
}

/// A comparison found in the tree, with its constants still as SQL text.
#[derive(Debug, Clone)]
enum Found {
    Compare(Target, Relation, String),
    Between(Target, String, String),
    Like { column: String, pattern: String, escape: Option<char> },
}

#[derive(Default)]
struct Collector {
    found: Vec<Found>,
    links: Vec<(String, String)>,
    /// Columns compared with each other by `<`, `>` and the like (`l_shipdate < l_commitdate`).
    related: Vec<(String, String)>,
    group_keys: BTreeSet<String>,
    group_size: Option<u64>,
    orders_and_limits: bool,
    /// Columns inside a cast to a number.
    cast_to_number: BTreeSet<String>,
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if query.order_by.is_some() && query.limit_clause.is_some() {
            self.orders_and_limits = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if let GroupByExpr::Expressions(keys, _) = &select.group_by {
            for key in keys {
                if let Some(column) = column_name(key) {
                    self.group_keys.insert(column);
                }
            }
        }
        if let Some(having) = &select.having {
            self.having(having);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::BinaryOp { left, op, right } => {
                if let Some(relation) = Relation::of(op) {
                    if let (Some(a), Some(b)) = (column_name(left), column_name(right)) {
                        if relation == Relation::Equal {
                            self.links.push((a, b));
                        } else {
                            self.related.push((a, b));
                        }
                    } else if let (Some(target), true) = (target(left), is_constant(right)) {
                        self.found.push(Found::Compare(target, relation, right.to_string()));
                    } else if let (Some(target), true) = (target(right), is_constant(left)) {
                        self.found.push(Found::Compare(target, relation.flipped(), left.to_string()));
                    }
                }
            }
            Expr::Between { expr, low, high, .. } => {
                if let (Some(target), true, true) = (target(expr), is_constant(low), is_constant(high)) {
                    self.found.push(Found::Between(target, low.to_string(), high.to_string()));
                }
            }
            Expr::In { expr, target: InTarget::List(list), .. } => {
                if let Some(target) = target(expr) {
                    for item in list.iter().filter(|item| is_constant(item)) {
                        self.found.push(Found::Compare(target.clone(), Relation::Equal, item.to_string()));
                    }
                }
            }
            Expr::Cast { expr, data_type, .. } if is_numeric_type(data_type) => {
                let _ = sqlparser::ast::visit_expressions(expr.as_ref(), |inner| {
                    if let Some(column) = column_name(inner) {
                        self.cast_to_number.insert(column);
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            Expr::Like { expr, pattern, escape_char, .. } | Expr::ILike { expr, pattern, escape_char, .. } => {
                if let (Some(column), Some(pattern)) = (column_name(expr), string_value(pattern)) {
                    let escape = escape_char.as_deref().and_then(string_value).and_then(|text| text.chars().next());
                    self.found.push(Found::Like { column, pattern, escape });
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl Collector {
    /// `COUNT(...) > n` (or `n < COUNT(...)`, `>=`) anywhere in a HAVING condition.
    fn having(&mut self, having: &Expr) {
        let _ = sqlparser::ast::visit_expressions(having, |expr| {
            if let Expr::BinaryOp { left, op, right } = expr {
                let count_and_number = |count: &Expr, number: &Expr, relation: Relation| -> Option<u64> {
                    let is_count = matches!(count, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("count"));
                    let value: u64 = integer_value(number)?;
                    match relation {
                        Relation::Greater if is_count => Some(value + 1),
                        Relation::GreaterOrEqual | Relation::Equal if is_count => Some(value),
                        _ => None,
                    }
                };
                if let Some(relation) = Relation::of(op) {
                    let needed = count_and_number(left, right, relation).or_else(|| count_and_number(right, left, relation.flipped()));
                    if let Some(needed) = needed {
                        self.group_size = Some(self.group_size.map_or(needed, |size| size.max(needed)));
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }

    fn finish(self, evaluate: &mut dyn FnMut(&str) -> Option<(String, String)>) -> QueryShape {
        let mut shape = QueryShape {
            group_keys: self.group_keys,
            group_size: self.group_size,
            orders_and_limits: self.orders_and_limits,
            linked: link_groups(&self.links),
            ..QueryShape::default()
        };
        for column in self.cast_to_number {
            shape.columns.entry(column).or_default().numeric_text = true;
        }
        let mut evaluated: BTreeMap<String, Option<Evaluated>> = BTreeMap::new();
        let mut value_of = |sql: &str| evaluated.entry(sql.to_string()).or_insert_with(|| Evaluated::of(sql, evaluate)).clone();
        for found in self.found {
            match found {
                Found::Compare(target, relation, sql) => {
                    if let Some(value) = value_of(&sql) {
                        add_comparison(&mut shape, target, relation, &value);
                    }
                }
                Found::Between(target, low, high) => {
                    if let (Some(low), Some(high)) = (value_of(&low), value_of(&high)) {
                        add_comparison(&mut shape, target.clone(), Relation::GreaterOrEqual, &low);
                        add_comparison(&mut shape, target, Relation::LessOrEqual, &high);
                    }
                }
                Found::Like { column, pattern, escape } => {
                    let wants = shape.columns.entry(column).or_default();
                    wants.values.insert(Wanted { kind: ValueKind::Text, text: crate::literals::like_example(&pattern, escape) });
                    wants.values.insert(Wanted { kind: ValueKind::Text, text: format!("{}~", crate::literals::like_example(&pattern, escape)) });
                }
            }
        }
        // Columns compared with each other take each other's values too: `l_shipdate <
        // l_commitdate` with `l_commitdate` in 1994 needs ship dates near 1994, and the
        // neighbours one step either side let either order hold.
        for (a, b) in self.related.iter().chain(&self.links) {
            let (from_a, from_b) = (shape.columns.get(a).cloned(), shape.columns.get(b).cloned());
            if let Some(wants) = from_b {
                shape.columns.entry(a.clone()).or_default().absorb(&wants);
            }
            if let Some(wants) = from_a {
                shape.columns.entry(b.clone()).or_default().absorb(&wants);
            }
        }
        shape
    }
}

/// A constant evaluated by DuckDB, with its neighbours one step below and above (one unit for
/// numbers, one day for dates and timestamps), so that `<`, `>` and `BETWEEN` get values on
/// both sides of their bounds.
#[derive(Debug, Clone)]
struct Evaluated {
    value: Wanted,
    below: Option<Wanted>,
    above: Option<Wanted>,
}

impl Evaluated {
    fn of(sql: &str, evaluate: &mut dyn FnMut(&str) -> Option<(String, String)>) -> Option<Evaluated> {
        let (type_name, text) = evaluate(&format!("({sql})"))?;
        let kind = ValueKind::of_duckdb(&type_name)?;
        let step = match kind {
            ValueKind::Integer | ValueKind::Real => "1",
            ValueKind::Date => "1",
            ValueKind::Timestamp => "INTERVAL 1 DAY",
            ValueKind::Text | ValueKind::Bool => return Some(Evaluated { value: Wanted { kind, text }, below: None, above: None }),
        };
        let mut neighbour =
            |op: &str| evaluate(&format!("(({sql}) {op} {step})")).and_then(|(t, text)| ValueKind::of_duckdb(&t).map(|kind| Wanted { kind, text }));
        let (below, above) = (neighbour("-"), neighbour("+"));
        Some(Evaluated { value: Wanted { kind, text }, below, above })
    }
}

fn add_comparison(shape: &mut QueryShape, target: Target, relation: Relation, value: &Evaluated) {
    // The value itself, and one just outside the comparison: both sides of a bound are wanted.
    let mut values = vec![value.value.clone()];
    match relation {
        Relation::Less | Relation::LessOrEqual => values.extend(value.below.clone()),
        Relation::Greater | Relation::GreaterOrEqual => values.extend(value.above.clone()),
        Relation::NotEqual => values.extend(value.above.clone()),
        Relation::Equal => {}
    }
    match target {
        Target::Column(column) => shape.columns.entry(column).or_default().values.extend(values),
        Target::Folded(column) => {
            let wants = shape.columns.entry(column).or_default();
            for value in values.into_iter().filter(|v| v.kind == ValueKind::Text) {
                wants.values.insert(Wanted { kind: ValueKind::Text, text: value.text.to_uppercase() });
                wants.values.insert(Wanted { kind: ValueKind::Text, text: format!(" {} ", value.text.to_lowercase()) });
                wants.values.insert(value);
            }
        }
        Target::Length(column) => {
            let wants = shape.columns.entry(column).or_default();
            for value in values {
                if let Ok(length) = value.text.parse::<usize>() {
                    wants.lengths.insert(length.min(64));
                }
            }
        }
        Target::Part(part, column) => {
            let wants = shape.columns.entry(column).or_default();
            for value in values {
                let Ok(number) = value.text.parse::<i64>() else { continue };
                match part {
                    DatePart::Year if (1..=9999).contains(&number) => {
                        wants.years.insert(number as i32);
                    }
                    DatePart::Quarter if (1..=4).contains(&number) => wants.months.extend([3 * number as u32 - 2, 3 * number as u32]),
                    DatePart::Month if (1..=12).contains(&number) => {
                        wants.months.insert(number as u32);
                    }
                    DatePart::Day if (1..=28).contains(&number) => {
                        wants.days.insert(number as u32);
                    }
                    DatePart::Hour if (0..=23).contains(&number) => {
                        wants.hours.insert(number as u32);
                    }
                    DatePart::DayOfWeek if (0..=6).contains(&number) => {
                        wants.weekdays.insert(number as u32);
                    }
                    DatePart::IsoDayOfWeek if (1..=7).contains(&number) => {
                        wants.weekdays.insert(number as u32 % 7);
                    }
                    _ => {}
                }
            }
        }
        Target::Shifted(column, op, constant) => {
            // `c + k > v` wants `c > v - k`: undo the arithmetic on the values.
            let inverse = match op {
                BinaryOperator::Plus => "-",
                BinaryOperator::Minus => "+",
                BinaryOperator::Multiply => "/",
                BinaryOperator::Divide => "*",
                _ => return,
            };
            let wants = shape.columns.entry(column).or_default();
            for value in values.into_iter().filter(|v| matches!(v.kind, ValueKind::Integer | ValueKind::Real)) {
                let (Ok(v), Ok(k)) = (value.text.parse::<f64>(), constant.trim_matches(|c| c == '(' || c == ')').parse::<f64>()) else { continue };
                let undone = match inverse {
                    "-" => v - k,
                    "+" => v + k,
                    "/" if k != 0.0 => v / k,
                    "*" => v * k,
                    _ => continue,
                };
                if undone.is_finite() {
                    wants.values.insert(Wanted { kind: ValueKind::Real, text: format!("{undone}") });
                }
            }
        }
    }
}

/// Connected groups of the equated column pairs.
fn link_groups(links: &[(String, String)]) -> Vec<BTreeSet<String>> {
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    for (a, b) in links {
        let found: Vec<usize> = groups.iter().enumerate().filter(|(_, g)| g.contains(a) || g.contains(b)).map(|(i, _)| i).collect();
        let mut merged: BTreeSet<String> = [a.clone(), b.clone()].into();
        for index in found.iter().rev() {
            merged.extend(groups.remove(*index));
        }
        groups.push(merged);
    }
    groups.sort();
    groups
}

/// The lowercase name of a plain column reference (`c`, `t.c`), through parentheses and casts.
/// Whether a cast to `data_type` reads its operand as a number.
fn is_numeric_type(data_type: &sqlparser::ast::DataType) -> bool {
    let name = data_type.to_string().to_ascii_uppercase();
    let name = name.split('(').next().unwrap_or_default().trim();
    ["TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "HUGEINT", "INT2", "INT4", "INT8", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"]
        .iter()
        .chain(&["FLOAT", "REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT4", "FLOAT8", "DECIMAL", "NUMERIC"])
        .any(|numeric| name == *numeric)
}

fn column_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|ident| ident.value.to_ascii_lowercase()),
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => column_name(inner),
        _ => None,
    }
}

/// The column side of a comparison, if it is one we know how to feed.
fn target(expr: &Expr) -> Option<Target> {
    if let Some(column) = column_name(expr) {
        return Some(Target::Column(column));
    }
    match expr {
        Expr::Extract { field, expr, .. } => Some(Target::Part(date_part_of_field(field)?, column_name(expr)?)),
        Expr::BinaryOp { left, op, right }
            if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Divide) =>
        {
            let column = column_name(left)?;
            is_constant(right).then(|| Target::Shifted(column, op.clone(), right.to_string()))
        }
        Expr::Function(function) => {
            let name = function.name.to_string().to_ascii_lowercase();
            let args = function_args(&function.args);
            match (name.as_str(), args.as_slice()) {
                ("year", [arg]) => Some(Target::Part(DatePart::Year, column_name(arg)?)),
                ("quarter", [arg]) => Some(Target::Part(DatePart::Quarter, column_name(arg)?)),
                ("month", [arg]) => Some(Target::Part(DatePart::Month, column_name(arg)?)),
                ("day" | "dayofmonth", [arg]) => Some(Target::Part(DatePart::Day, column_name(arg)?)),
                ("hour", [arg]) => Some(Target::Part(DatePart::Hour, column_name(arg)?)),
                ("dayofweek" | "weekday" | "dow", [arg]) => Some(Target::Part(DatePart::DayOfWeek, column_name(arg)?)),
                ("isodow", [arg]) => Some(Target::Part(DatePart::IsoDayOfWeek, column_name(arg)?)),
                // An aggregate compared with a value in HAVING: rows near the value make it hold
                // (an average, a minimum or a maximum of such rows is near it too).
                ("avg" | "mean" | "min" | "max" | "sum" | "any_value" | "first" | "last", [arg]) => Some(Target::Column(column_name(arg)?)),
                ("date_part" | "datepart" | "extract", [part, arg]) => Some(Target::Part(date_part_named(&string_value(part)?)?, column_name(arg)?)),
                ("lower" | "upper" | "lcase" | "ucase" | "trim" | "ltrim" | "rtrim", [arg, ..]) => Some(Target::Folded(column_name(arg)?)),
                ("length" | "len" | "char_length" | "character_length" | "strlen" | "array_length" | "cardinality", [arg]) => {
                    Some(Target::Length(column_name(arg)?))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn function_args(args: &FunctionArguments) -> Vec<&Expr> {
    match args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .filter_map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn date_part_of_field(field: &DateTimeField) -> Option<DatePart> {
    date_part_named(&field.to_string())
}

fn date_part_named(name: &str) -> Option<DatePart> {
    Some(match name.to_ascii_lowercase().as_str() {
        "year" | "years" | "yyyy" | "y" => DatePart::Year,
        "quarter" | "quarters" => DatePart::Quarter,
        "month" | "months" | "mon" => DatePart::Month,
        "day" | "days" | "dayofmonth" => DatePart::Day,
        "hour" | "hours" => DatePart::Hour,
        "dow" | "dayofweek" => DatePart::DayOfWeek,
        "isodow" => DatePart::IsoDayOfWeek,
        _ => return None,
    })
}

/// An expression that reads no column and no subquery: DuckDB can evaluate it alone.
fn is_constant(expr: &Expr) -> bool {
    let mut constant = true;
    let _ = sqlparser::ast::visit_expressions(expr, |inner| {
        let reads_data = match inner {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_) | Expr::Exists { .. } | Expr::Wildcard(_) => true,
            Expr::Function(function) => {
                let name = function.name.to_string().to_ascii_lowercase();
                // Aggregates and anything random or reading outside state need rows or change.
                matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max" | "random" | "uuid" | "gen_random_uuid" | "setseed") || function.over.is_some()
            }
            _ => false,
        };
        if reads_data {
            constant = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    constant
}

fn string_value(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) | Value::DoubleQuotedString(text) => Some(text.clone()),
            _ => None,
        },
        Expr::Nested(inner) => string_value(inner),
        _ => None,
    }
}

fn integer_value(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(text, _) => text.parse().ok(),
            _ => None,
        },
        Expr::Nested(inner) => integer_value(inner),
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } => integer_value(expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates constants with a real DuckDB, as the fixture store does.
    fn analyze(sql: &str) -> QueryShape {
        let connection = duckdb::Connection::open_in_memory().unwrap();
        QueryShape::analyze(sql, &mut |expr| {
            connection.query_row(&format!("SELECT typeof({expr})::VARCHAR, ({expr})::VARCHAR"), [], |row| Ok((row.get(0)?, row.get(1)?))).ok()
        })
    }

    fn texts(shape: &QueryShape, column: &str) -> Vec<String> {
        shape.columns[column].values.iter().map(|v| v.text.clone()).collect()
    }

    #[test]
    fn columns_cast_to_a_number_want_digits_and_other_casts_do_not() {
        let shape = analyze("SELECT CAST(SUBSTRING(code, 1, 4) AS INTEGER) AS n, zip::BIGINT, name::VARCHAR, CAST(d AS DATE) FROM t");
        assert!(shape.columns["code"].numeric_text && shape.columns["zip"].numeric_text);
        assert!(!shape.columns.contains_key("name") && !shape.columns.contains_key("d"), "{shape:?}");
    }

    #[test]
    fn date_arithmetic_is_evaluated_and_both_sides_of_the_bound_are_wanted() {
        let shape = analyze("SELECT * FROM lineitem WHERE l_shipdate <= date '1998-12-01' - interval '90' day");
        let values = texts(&shape, "l_shipdate");
        assert!(values.iter().any(|v| v.starts_with("1998-09-02")), "{values:?}");
        assert!(values.iter().any(|v| v.starts_with("1998-09-01")), "{values:?}");
    }

    #[test]
    fn date_parts_between_in_lists_and_likes_are_collected() {
        let shape = analyze(
            "SELECT * FROM o JOIN c ON o.customer_id = c.id WHERE year(o.placed) = 2022 AND EXTRACT(MONTH FROM o.placed) = 11 \
             AND o.amount BETWEEN 20 AND 30 AND c.country IN ('PE', 'FR') AND c.name LIKE 'Jo%' AND lower(c.city) = 'lima'",
        );
        assert_eq!(shape.columns["placed"].years, [2022].into());
        assert_eq!(shape.columns["placed"].months, [11].into());
        let amounts = texts(&shape, "amount");
        assert!(amounts.contains(&"20".to_string()) && amounts.contains(&"30".to_string()) && amounts.contains(&"21".to_string()), "{amounts:?}");
        assert_eq!(texts(&shape, "country"), ["FR", "PE"]);
        assert!(texts(&shape, "name").iter().any(|n| n.starts_with("Jo")));
        assert!(texts(&shape, "city").contains(&"LIMA".to_string()));
        assert_eq!(shape.linked, vec![BTreeSet::from(["customer_id".to_string(), "id".to_string()])]);
    }

    #[test]
    fn having_counts_group_keys_and_ordered_limits_are_noticed() {
        let shape = analyze("SELECT status, COUNT(*) AS n FROM orders GROUP BY status HAVING COUNT(*) > 100 ORDER BY n DESC LIMIT 3");
        assert_eq!(shape.group_size, Some(101));
        assert_eq!(shape.group_keys, ["status".to_string()].into());
        assert!(shape.orders_and_limits);
        assert!(!analyze("SELECT * FROM orders ORDER BY id").orders_and_limits);
    }

    #[test]
    fn arithmetic_on_a_column_is_undone() {
        let shape = analyze("SELECT * FROM t WHERE price * 2 > 100");
        assert!(texts(&shape, "price").iter().any(|v| v == "50" || v == "50.5"), "{:?}", texts(&shape, "price"));
    }

    #[test]
    fn unparsable_sql_gives_an_empty_shape() {
        assert!(analyze("SELEC nothing").is_empty());
    }
}
