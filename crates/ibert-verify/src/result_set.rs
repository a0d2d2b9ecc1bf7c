//! Running one query and normalizing its rows, so that results of two different SQL texts (and
//! the Arrow tables Ibis returns to a user) can be compared. Normalization (documented in
//! `docs/verification.md`): integers of every width -> `Int`; floats -> `Float`; decimals ->
//! `Decimal` (exact, with their scale); booleans -> `Bool`; everything else (strings, dates,
//! timestamps, times, intervals, lists, structs, maps) -> `Text`, in Arrow's display form,
//! identical for both sides because both run through this module. Each column also keeps its
//! [`ColumnKind`], so that a DOUBLE and a DECIMAL holding close numbers are told apart.

use duckdb::Connection;
use duckdb::arrow::array::{Array, AsArray, RecordBatch};
use duckdb::arrow::datatypes::{DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// An exact decimal: `raw / 10^scale`.
    Decimal(i128, u8),
    Text(String),
    /// A non-string value in display form, with its kind (`date`, `timestamp`, `list`, ...).
    Typed(&'static str, String),
}

/// The kind of a non-numeric, non-string type: widths and units do not count (a list of int32
/// and a list of int64 displaying alike are equal), the kind does.
fn type_kind(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, _) => "timestamp",
        DataType::Time32(_) | DataType::Time64(_) => "time",
        DataType::Interval(_) | DataType::Duration(_) => "interval",
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) | DataType::ListView(_) => "list",
        DataType::Struct(_) => "struct",
        DataType::Map(_, _) => "map",
        DataType::Binary | DataType::LargeBinary | DataType::FixedSizeBinary(_) | DataType::BinaryView => "binary",
        DataType::Dictionary(_, _) => "enum",
        _ => "other",
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Int(value) => write!(f, "{value}"),
            Value::Float(value) => write!(f, "{value}"),
            Value::Decimal(raw, scale) => f.write_str(&decimal_text(*raw, *scale)),
            Value::Text(value) => write!(f, "{value:?}"),
            Value::Typed(kind, value) => write!(f, "{kind} {value}"),
        }
    }
}

/// `raw / 10^scale` written out exactly (`-0.05`, `202.129`).
pub fn decimal_text(raw: i128, scale: u8) -> String {
    if scale == 0 {
        return raw.to_string();
    }
    let digits = raw.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{}{whole}.{fraction}", if raw < 0 { "-" } else { "" })
}

/// The type of a result column as far as a user sees it: widths and units do not count, the
/// kind does, and a decimal's scale does (it decides how the numbers are rounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// Only NULLs, of no type (`SELECT NULL`): fits any kind.
    Null,
    Bool,
    /// Integers of every width and sign; also DuckDB's HUGEINT, which Arrow carries as a
    /// scale-0 decimal.
    Integer,
    Float,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    Other(&'static str),
}

impl ColumnKind {
    fn of(data_type: &DataType) -> ColumnKind {
        match data_type {
            DataType::Null => ColumnKind::Null,
            DataType::Boolean => ColumnKind::Bool,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                ColumnKind::Integer
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnKind::Float,
            DataType::Decimal128(_, 0) => ColumnKind::Integer,
            DataType::Decimal128(precision, scale) => ColumnKind::Decimal { precision: *precision, scale: (*scale).max(0) as u8 },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnKind::String,
            // An ENUM reaches Arrow as a dictionary of strings; Ibis reads it as a string.
            DataType::Dictionary(_, value) if matches!(**value, DataType::Utf8 | DataType::LargeUtf8) => ColumnKind::String,
            other => ColumnKind::Other(type_kind(other)),
        }
    }

    /// Whether a column of kind `self` (the SQL's) and one of kind `other` (what Ibis returned)
    /// are the same to a user: decimals of the same scale are, whatever their precision.
    pub fn matches(&self, other: &ColumnKind) -> bool {
        match (self, other) {
            (ColumnKind::Null, _) | (_, ColumnKind::Null) => true,
            (ColumnKind::Decimal { scale, .. }, ColumnKind::Decimal { scale: other_scale, .. }) => scale == other_scale,
            _ => self == other,
        }
    }

    /// The Ibis type to cast an expression to so that it returns this kind, for the numeric and
    /// temporal kinds where Ibis's type rules and DuckDB's differ (a decimal average is a double
    /// in DuckDB; decimal products and sums have DuckDB's own precision and scale; `date_trunc`
    /// of a date is a timestamp; `round(x)` of a double stays a double).
    pub fn ibis_cast(&self) -> Option<String> {
        match self {
            ColumnKind::Integer => Some("int64".to_string()),
            ColumnKind::Float => Some("float64".to_string()),
            ColumnKind::Decimal { precision, scale } => Some(format!("decimal({precision}, {scale})")),
            ColumnKind::Other("date") => Some("date".to_string()),
            ColumnKind::Other("timestamp") => Some("timestamp".to_string()),
            _ => None,
        }
    }
}

impl std::fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnKind::Null => f.write_str("null"),
            ColumnKind::Bool => f.write_str("boolean"),
            ColumnKind::Integer => f.write_str("integer"),
            ColumnKind::Float => f.write_str("floating point"),
            ColumnKind::Decimal { precision, scale } => write!(f, "decimal({precision}, {scale})"),
            ColumnKind::String => f.write_str("string"),
            ColumnKind::Other(kind) => f.write_str(kind),
        }
    }
}

/// A query's normalized result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    /// The kind of each column, in column order.
    pub kinds: Vec<ColumnKind>,
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// Reads Arrow record batches (from DuckDB, or an IPC stream from Ibis) into normalized rows.
    pub fn from_batches(schema: &duckdb::arrow::datatypes::Schema, batches: impl IntoIterator<Item = RecordBatch>) -> ResultSet {
        let columns = schema.fields().iter().map(|field| field.name().clone()).collect();
        let kinds = schema.fields().iter().map(|field| ColumnKind::of(field.data_type())).collect();
        let mut rows = Vec::new();
        for batch in batches {
            let converters: Vec<Column> = batch.columns().iter().map(|array| Column::new(array.as_ref())).collect();
            for row in 0..batch.num_rows() {
                rows.push(converters.iter().map(|column| column.value(row)).collect());
            }
        }
        ResultSet { columns, kinds, rows }
    }

    /// Reads one Arrow IPC stream (what the oracle's `execute` returns for each dataset).
    pub fn from_ipc_stream(bytes: &[u8]) -> Result<ResultSet, String> {
        let reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|error| format!("reading the Arrow result: {error}"))?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|error| format!("reading the Arrow result: {error}"))?;
        Ok(ResultSet::from_batches(&schema, batches))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("the SQL holds several statements; give one query")]
    SeveralStatements,
    #[error("only a query can be verified (SELECT, WITH, FROM, VALUES, ...), found `{0}`")]
    NotAQuery(String),
}

/// Runs one SQL statement inside a transaction that is rolled back afterwards, so that a query
/// which writes (`DROP`, `INSERT`, `UPDATE`) cannot change the fixture for the next one.
pub fn run_query(connection: &Connection, sql: &str) -> Result<ResultSet, QueryError> {
    if crate::sql_text::has_several_statements(sql) {
        return Err(QueryError::SeveralStatements);
    }
    if let Some(keyword) = crate::sql_text::non_query_keyword(sql) {
        return Err(QueryError::NotAQuery(keyword.to_uppercase()));
    }
    connection.execute_batch("BEGIN TRANSACTION")?;
    let result = run_in_transaction(connection, sql);
    // A failed statement may already have aborted the transaction; the rollback still ends it.
    let _ = connection.execute_batch("ROLLBACK");
    Ok(result?)
}

fn run_in_transaction(connection: &Connection, sql: &str) -> Result<ResultSet, duckdb::Error> {
    let sql = sql.trim().trim_end_matches(';');
    let mut statement = connection.prepare(sql)?;
    let arrow = statement.query_arrow([])?;
    let schema = arrow.get_schema();
    Ok(ResultSet::from_batches(&schema, arrow))
}

/// One Arrow column and how to read its cells.
struct Column<'a> {
    array: &'a dyn Array,
    formatter: Option<ArrayFormatter<'a>>,
}

impl<'a> Column<'a> {
    fn new(array: &'a dyn Array) -> Self {
        let numeric = matches!(
            array.data_type(),
            DataType::Null
                | DataType::Boolean
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(_, _)
        );
        let options = FormatOptions::default().with_null("NULL");
        let formatter = if numeric { None } else { ArrayFormatter::try_new(array, &options).ok() };
        Column { array, formatter }
    }

    fn value(&self, row: usize) -> Value {
        let array = self.array;
        if array.is_null(row) {
            return Value::Null;
        }
        match array.data_type() {
            DataType::Null => Value::Null,
            DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
            DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row).into()),
            DataType::UInt8 => Value::Int(array.as_primitive::<UInt8Type>().value(row).into()),
            DataType::UInt16 => Value::Int(array.as_primitive::<UInt16Type>().value(row).into()),
            DataType::UInt32 => Value::Int(array.as_primitive::<UInt32Type>().value(row).into()),
            DataType::UInt64 => Value::Int(array.as_primitive::<UInt64Type>().value(row).into()),
            DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row).into()),
            DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Decimal128(_, scale) => {
                let raw = array.as_primitive::<duckdb::arrow::datatypes::Decimal128Type>().value(row);
                // HUGEINT arrives as DECIMAL(38, 0): keep it an integer.
                if *scale <= 0 { Value::Int(raw * 10_i128.pow(u32::from(scale.unsigned_abs()))) } else { Value::Decimal(raw, *scale as u8) }
            }
            data_type => {
                let text = match &self.formatter {
                    Some(formatter) => formatter.value(row).to_string(),
                    None => format!("<unprintable {data_type}>"),
                };
                match data_type {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Value::Text(text),
                    // Other types keep their kind, so a DATE never equals the string of a date.
                    other => Value::Typed(type_kind(other), text),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_types() {
        let connection = Connection::open_in_memory().unwrap();
        let result = run_query(
            &connection,
            "SELECT 1::TINYINT AS a, 2::HUGEINT AS b, 1.25::DECIMAL(5, 2) AS c, 0.5::FLOAT AS d, true AS e, \
             DATE '2024-02-29' AS f, TIMESTAMP '2024-01-02 03:04:05' AS g, [1, 2] AS h, {'x': 1} AS i, NULL AS j, 'txt' AS k",
        )
        .unwrap();
        assert_eq!(result.columns, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]);
        let row = &result.rows[0];
        assert_eq!(row[0], Value::Int(1));
        assert_eq!(row[1], Value::Int(2));
        assert_eq!(row[2], Value::Decimal(125, 2));
        assert_eq!(result.kinds[2], ColumnKind::Decimal { precision: 5, scale: 2 });
        assert_eq!(result.kinds[1], ColumnKind::Integer, "HUGEINT is an integer");
        assert_eq!(result.kinds[3], ColumnKind::Float);
        assert_eq!(row[3], Value::Float(0.5));
        assert_eq!(row[4], Value::Bool(true));
        assert_eq!(row[5], Value::Typed("date", "2024-02-29".into()));
        assert_eq!(row[6], Value::Typed("timestamp", "2024-01-02T03:04:05".into()));
        assert_eq!(row[7], Value::Typed("list", "[1, 2]".into()));
        assert!(matches!(&row[8], Value::Typed("struct", text) if text.contains('x') && text.contains('1')), "{:?}", row[8]);
        assert_eq!(row[9], Value::Null);
        assert_eq!(row[10], Value::Text("txt".into()));
    }

    #[test]
    fn nulls_inside_lists_differ_from_empty_strings() {
        let connection = Connection::open_in_memory().unwrap();
        let with_null = run_query(&connection, "SELECT [NULL, 'x'] AS l").unwrap();
        let with_empty = run_query(&connection, "SELECT ['', 'x'] AS l").unwrap();
        assert_ne!(with_null.rows, with_empty.rows);
        let date = run_query(&connection, "SELECT DATE '2024-02-29' AS d").unwrap();
        let text = run_query(&connection, "SELECT '2024-02-29' AS d").unwrap();
        assert_ne!(date.rows, text.rows);
    }

    #[test]
    fn statements_other_than_queries_are_refused() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (a INT); INSERT INTO t VALUES (1)").unwrap();
        let error = run_query(&connection, "DELETE FROM t").unwrap_err();
        assert!(error.to_string().contains("found `DELETE`"), "{error}");
        assert!(run_query(&connection, "DROP TABLE t").is_err());
        assert_eq!(run_query(&connection, "SELECT a FROM t").unwrap().rows, vec![vec![Value::Int(1)]]);
    }

    #[test]
    fn several_statements_are_refused() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (a INT)").unwrap();
        assert!(run_query(&connection, "SELECT 1; DROP TABLE t").is_err());
        assert!(run_query(&connection, "SELECT a FROM t").is_ok());
    }
}
