//! Deterministic fixture databases: for each configured seed, an in-memory DuckDB database with
//! every table of the example filled with generated rows, plus a twin holding the same rows in
//! another physical order (which tells an ORDER BY that orders totally from one that does not).
//!
//! The data is adversarial on purpose: NULLs in every nullable column, duplicate keys, keys
//! without a match, edge numbers, empty, padded, quoted, unicode and mixed-case strings, dates
//! across years including a leap day, empty and NULL arrays. Literals of the query are mixed in
//! so that its filters select rows. Every rule is listed in `docs/verification.md`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use duckdb::Connection;

use crate::column_type::{ColumnType, TypeError, quote_identifier};
use crate::literals::Literals;
use crate::result_set::{QueryError, ResultSet, run_query};
use crate::rng::Rng;

/// One fixture database: its seed and the number of rows in each table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixtureConfig {
    pub seed: u64,
    pub rows: usize,
}

/// Three databases of different sizes: a larger one where accidental agreement is unlikely, a
/// middle one, and a small one where edge rows dominate.
pub const DEFAULT_FIXTURES: &[FixtureConfig] = &[FixtureConfig { seed: 1, rows: 48 }, FixtureConfig { seed: 2, rows: 20 }, FixtureConfig { seed: 3, rows: 9 }];

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("table `{table}`, column `{column}`: {source}")]
    Type { table: String, column: String, source: TypeError },
    #[error("table `{table}`, column `{column}`: the type must be a string such as `int64`, found {found}")]
    NotAString { table: String, column: String, found: String },
    #[error("creating fixture table `{table}` in DuckDB failed: {source}")]
    DuckDb { table: String, source: duckdb::Error },
    #[error("opening the fixture database failed: {0}")]
    Open(duckdb::Error),
    #[error("attaching the reference database {path}: {source}")]
    Attach { path: std::path::PathBuf, source: duckdb::Error },
}

/// Table name -> ordered column name -> Ibis type string (as in `context.tables.<t>.schema`).
pub type TableSchemas = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// The tables of one fixture config, in a schema of the store's database, and the same rows in
/// another physical order in a twin schema. Schemas are qualified with their catalog
/// (`memory.fixture_1_1`, or `ref_tpch.main` for reference data).
#[derive(Debug, Clone)]
pub struct FixtureDatabase {
    pub config: FixtureConfig,
    pub schema: String,
    pub twin_schema: String,
    /// Reference data: the name of the [`ReferenceDatabase`]; `None` for generated fixtures.
    pub reference: Option<String>,
}

impl FixtureDatabase {
    /// How messages name this database.
    pub fn label(&self) -> String {
        match &self.reference {
            Some(name) => format!("reference data `{name}`"),
            None => format!("fixture seed {}", self.config.seed),
        }
    }
}

/// Real data for a fixed set of tables (the TPC benchmarks' own data), in a DuckDB file whose
/// `main` schema holds the tables and whose `twin` schema holds the same rows in another
/// physical order. A pair whose tables all belong to a reference database, with the same
/// columns and types, runs on that data instead of generated fixtures: generated rows rarely
/// satisfy the filters of a many-table benchmark query.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceDatabase {
    pub name: String,
    pub path: std::path::PathBuf,
    pub tables: TableSchemas,
}

impl ReferenceDatabase {
    fn catalog(&self) -> String {
        format!("ref_{}", self.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>())
    }

    /// Whether every table of `tables` is in this database with the same columns and types.
    fn serves(&self, tables: &TableSchemas) -> bool {
        !tables.is_empty() && tables.iter().all(|(name, columns)| self.tables.get(name) == Some(columns))
    }
}

/// The fixture databases one example runs on.
#[derive(Debug, Clone)]
pub struct FixtureSet {
    pub databases: Vec<FixtureDatabase>,
}

/// One DuckDB database holding many fixture sets, each in schemas of its own, loaded on demand
/// and evicted oldest first. Opening a DuckDB database costs about 20 ms, loading a table a few;
/// one database per verification thread keeps both off the hot path.
pub struct FixtureStore {
    connection: Connection,
    references: Vec<(ReferenceDatabase, Rc<FixtureSet>)>,
    loaded: HashMap<(String, Literals), Rc<FixtureSet>>,
    order: VecDeque<(String, Literals)>,
    next_id: u64,
    capacity: usize,
}

impl FixtureStore {
    pub fn new() -> Result<Self, FixtureError> {
        Self::with_references(&[])
    }

    /// A store that also serves the given reference databases (attached read-only).
    pub fn with_references(references: &[ReferenceDatabase]) -> Result<Self, FixtureError> {
        let connection = Connection::open_in_memory().map_err(FixtureError::Open)?;
        let mut attached = Vec::new();
        for reference in references {
            let catalog = reference.catalog();
            let path = reference.path.to_string_lossy().replace('\'', "''");
            connection
                .execute_batch(&format!("ATTACH '{path}' AS {catalog} (READ_ONLY)"))
                .map_err(|source| FixtureError::Attach { path: reference.path.clone(), source })?;
            let database = FixtureDatabase {
                config: FixtureConfig { seed: 0, rows: 0 },
                schema: format!("{catalog}.main"),
                twin_schema: format!("{catalog}.twin"),
                reference: Some(reference.name.clone()),
            };
            attached.push((reference.clone(), Rc::new(FixtureSet { databases: vec![database] })));
        }
        // Examples run in parallel on separate stores: one thread each keeps results stable.
        // No file or network access and no extension installs for the queries that run here
        // (reference files are attached before the lock).
        // Benchmark queries over reference data (millions of rows) need more room than fixtures.
        let memory_limit = if references.is_empty() { "1GB" } else { "4GB" };
        connection
            .execute_batch(&format!(
                "SET threads = 1; SET memory_limit = '{memory_limit}'; SET autoinstall_known_extensions = false; \
                 SET autoload_known_extensions = false; SET enable_external_access = false; \
                 SET lock_configuration = true;"
            ))
            .map_err(FixtureError::Open)?;
        Ok(FixtureStore { connection, references: attached, loaded: HashMap::new(), order: VecDeque::new(), next_id: 0, capacity: 256 })
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The fixture set for these tables and literals, loading it if it is not loaded yet.
    pub(crate) fn get(&mut self, tables: &TableSchemas, literals: &Literals, configs: &[FixtureConfig]) -> Result<Rc<FixtureSet>, FixtureError> {
        if let Some((_, set)) = self.references.iter().find(|(reference, _)| reference.serves(tables)) {
            return Ok(Rc::clone(set));
        }
        let key = (serde_json::to_string(tables).unwrap_or_default(), literals.clone());
        if let Some(set) = self.loaded.get(&key) {
            return Ok(Rc::clone(set));
        }
        if self.order.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                if let Some(set) = self.loaded.remove(&oldest) {
                    self.drop_set(&set);
                }
            }
        }
        self.next_id += 1;
        let set = Rc::new(self.load(self.next_id, tables, literals, configs)?);
        self.loaded.insert(key.clone(), Rc::clone(&set));
        self.order.push_back(key);
        Ok(set)
    }

    fn load(&self, id: u64, tables: &TableSchemas, literals: &Literals, configs: &[FixtureConfig]) -> Result<FixtureSet, FixtureError> {
        let mut parsed = Vec::new();
        for (table, schema) in tables {
            parsed.push((table.clone(), parse_columns(table, schema)?));
        }
        let mut databases = Vec::new();
        for config in configs {
            let schema = format!("memory.fixture_{id}_{}", config.seed);
            let twin_schema = format!("{schema}_twin");
            let duckdb_error = |table: &str| {
                let table = table.to_string();
                move |source| FixtureError::DuckDb { table, source }
            };
            self.connection.execute_batch(&format!("CREATE SCHEMA {schema}; CREATE SCHEMA {twin_schema};")).map_err(duckdb_error(""))?;
            for (table, columns) in &parsed {
                let rows = generate_rows(table, columns, config, literals);
                load_table(&self.connection, &schema, table, columns, &rows).map_err(duckdb_error(table))?;
                // The twin: the same rows, stored in another order.
                let name = quote_identifier(table);
                let seed = config.seed;
                self.connection
                    .execute_batch(&format!("CREATE TABLE {twin_schema}.{name} AS SELECT * FROM {schema}.{name} ORDER BY hash(rowid + {seed}), rowid"))
                    .map_err(duckdb_error(table))?;
            }
            databases.push(FixtureDatabase { config: *config, schema, twin_schema, reference: None });
        }
        Ok(FixtureSet { databases })
    }

    fn drop_set(&self, set: &FixtureSet) {
        for database in &set.databases {
            let _ = self
                .connection
                .execute_batch(&format!("DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE;", database.schema, database.twin_schema));
        }
    }

    /// Runs one query with the unqualified table names resolving to `schema`.
    pub fn query(&self, schema: &str, sql: &str) -> Result<ResultSet, QueryError> {
        self.connection.execute_batch(&format!("USE {schema}"))?;
        run_query(&self.connection, sql)
    }
}

struct Column {
    name: String,
    column_type: ColumnType,
    role: Role,
    nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `id`, or `<singular table name>_id` in its own table: unique but for one duplicate.
    Key,
    /// Any other `*_id`, and `*key` / `*_sk` (the TPC naming): a small domain so joins match,
    /// some values without a match.
    ForeignKey,
    Plain,
}

fn parse_columns(table: &str, schema: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<Column>, FixtureError> {
    let singular_key = format!("{}_id", table.strip_suffix('s').unwrap_or(table));
    schema
        .iter()
        .map(|(name, type_value)| {
            let Some(text) = type_value.as_str() else {
                return Err(FixtureError::NotAString { table: table.into(), column: name.clone(), found: type_value.to_string() });
            };
            let column_type = ColumnType::parse(text).map_err(|source| FixtureError::Type { table: table.into(), column: name.clone(), source })?;
            let is_int = matches!(column_type, ColumnType::Int { .. });
            let lower = name.to_ascii_lowercase();
            let role = if is_int && (lower == "id" || lower == singular_key) {
                Role::Key
            } else if is_int && (lower.ends_with("_id") || lower.ends_with("key") || lower.ends_with("_sk")) {
                Role::ForeignKey
            } else {
                Role::Plain
            };
            Ok(Column { name: name.clone(), column_type, role, nullable: !text.trim_start().starts_with('!') })
        })
        .collect()
}

fn load_table(connection: &Connection, schema: &str, table: &str, columns: &[Column], rows: &[Vec<String>]) -> Result<(), duckdb::Error> {
    let name = format!("{schema}.{}", quote_identifier(table));
    let definitions: Vec<String> = columns.iter().map(|c| format!("{} {}", quote_identifier(&c.name), c.column_type.duckdb_sql())).collect();
    connection.execute_batch(&format!("CREATE TABLE {name} ({})", definitions.join(", ")))?;
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = rows.iter().map(|row| format!("({})", row.join(", "))).collect();
    connection.execute_batch(&format!("INSERT INTO {name} VALUES {}", values.join(",\n")))
}

/// Rows of SQL literals for one table.
fn generate_rows(table: &str, columns: &[Column], config: &FixtureConfig, literals: &Literals) -> Vec<Vec<String>> {
    let mut cells: Vec<Vec<String>> = vec![Vec::with_capacity(columns.len()); config.rows];
    for column in columns {
        let mut rng = Rng::for_stream(config.seed, &format!("{table}.{}", column.name));
        let generator = ValueGenerator { literals, rows: config.rows };
        for (index, row) in cells.iter_mut().enumerate() {
            let value = match column.role {
                Role::Key => generator.key(index).to_string(),
                Role::ForeignKey => generator.foreign_key(&mut rng, column.nullable),
                Role::Plain => {
                    let compared = literals.by_column.get(&column.name.to_ascii_lowercase()).filter(|_| column.column_type == ColumnType::String);
                    match compared {
                        // A third of the values from what the SQL compares this column with
                        // (not more: `NOT EXISTS (... AND kind = 'x')` needs rows without them).
                        Some(compared) if rng.chance(35) => generator.compared_string(&mut rng, compared, column.nullable),
                        _ => generator.value(&mut rng, &column.column_type, column.nullable),
                    }
                }
            };
            row.push(value);
        }
    }
    // Rows equal in every column, so that counting rows and counting distinct rows differ (two
    // pairs in larger tables, so that a filter rarely removes every copy).
    if config.rows >= 8 {
        cells[config.rows - 2] = cells[3].clone();
    }
    if config.rows >= 12 {
        cells[config.rows - 3] = cells[6].clone();
    }
    cells
}

const BASE_STRINGS: &[&str] =
    &["alpha", "Alpha", "ALPHA", "beta", "Beta", "gamma delta", "", " padded ", "o'brien", "ünïcödé", "x_1", "zeta%", "MiXeD Case", "42", "null", "omega"];
const EDGE_INTEGERS: &[i64] = &[0, 1, -1, 2, 100];
const EDGE_FLOATS: &[f64] = &[0.0, -1.5, 0.5, 1000.25, 2.0];
const EDGE_DATES: &[&str] = &["2024-02-29", "1999-12-31", "2000-01-01", "2025-12-31", "2026-01-01"];
const COMMON_DATES: &[&str] = &["2023-03-14", "2023-03-15", "2024-07-01", "2024-07-02", "2025-01-10", "2025-11-30"];
const NULL_PERCENT: u64 = 10;

struct ValueGenerator<'a> {
    literals: &'a Literals,
    rows: usize,
}

impl ValueGenerator<'_> {
    fn key(&self, index: usize) -> usize {
        // One duplicated key (the last row repeats the second) once there are enough rows.
        if self.rows >= 4 && index == self.rows - 1 { 2 } else { index + 1 }
    }

    fn foreign_key(&self, rng: &mut Rng, nullable: bool) -> String {
        if nullable && rng.chance(NULL_PERCENT) {
            return "NULL".into();
        }
        if rng.chance(8) {
            return (self.rows as i64 + 7).to_string();
        }
        // About four rows per key, so that grouped aggregates see several rows per group.
        let domain = (self.rows as i64 / 4).max(3);
        rng.range(1, domain).to_string()
    }

    fn compared_string(&self, rng: &mut Rng, compared: &std::collections::BTreeSet<String>, nullable: bool) -> String {
        if nullable && rng.chance(NULL_PERCENT) {
            return "NULL".into();
        }
        let choices: Vec<&String> = compared.iter().collect();
        let choice: &&String = rng.pick(&choices);
        quote_string(choice)
    }

    fn value(&self, rng: &mut Rng, column_type: &ColumnType, nullable: bool) -> String {
        if nullable && rng.chance(NULL_PERCENT) {
            return "NULL".into();
        }
        match column_type {
            ColumnType::Int { bits, unsigned } => self.integer(rng, *bits, *unsigned).to_string(),
            ColumnType::Float { .. } => format_float(self.float(rng)),
            ColumnType::Decimal { precision, scale } => self.decimal(rng, *precision, *scale),
            ColumnType::String => quote_string(&self.string(rng)),
            ColumnType::Boolean => if rng.chance(50) { "true" } else { "false" }.into(),
            ColumnType::Date => format!("DATE '{}'", self.date(rng)),
            ColumnType::Timestamp => format!("TIMESTAMP '{} {}'", self.date(rng), time_of_day(rng, 20)),
            ColumnType::Time => format!("TIME '{}'", time_of_day(rng, 10)),
            ColumnType::Uuid => {
                let (high, low) = (rng.next_u64(), rng.next_u64());
                let hex = format!("{high:016x}{low:016x}");
                format!("'{}-{}-{}-{}-{}'::UUID", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
            }
            ColumnType::Binary => {
                let bytes: String = (0..rng.range(0, 4)).map(|_| format!("\\x{:02X}", rng.range(0, 255))).collect();
                format!("'{bytes}'::BLOB")
            }
            ColumnType::Array(element) => {
                let length = rng.range(0, 4);
                let items: Vec<String> = (0..length).map(|_| self.value(rng, element, true)).collect();
                format!("[{}]", items.join(", "))
            }
            ColumnType::Struct(fields) => {
                let items: Vec<String> = fields.iter().map(|(name, field)| format!("{}: {}", quote_string(name), self.value(rng, field, true))).collect();
                format!("{{{}}}", items.join(", "))
            }
            ColumnType::Map(key, value) => {
                let mut keys = Vec::new();
                for _ in 0..rng.range(0, 3) {
                    let candidate = self.value(rng, key, false);
                    if !keys.contains(&candidate) {
                        keys.push(candidate);
                    }
                }
                let items: Vec<String> = keys.iter().map(|k| format!("{k}: {}", self.value(rng, value, true))).collect();
                format!("MAP {{{}}}", items.join(", "))
            }
        }
    }

    fn integer(&self, rng: &mut Rng, bits: u8, unsigned: bool) -> i64 {
        let high = if bits == 8 { 100 } else { 1000 };
        let candidate = if rng.chance(15) {
            *rng.pick(EDGE_INTEGERS)
        } else if !self.literals.integers.is_empty() && rng.chance(20) {
            *rng.pick(&self.literals.integers.iter().copied().collect::<Vec<_>>())
        } else {
            rng.range(0, high)
        };
        let low = match (bits, unsigned) {
            (_, true) => 0,
            (8, false) => -128,
            (16, false) => -32768,
            (32, false) => -2_147_483_648,
            _ => i64::MIN,
        };
        let top = match (bits, unsigned) {
            (8, false) => 127,
            (8, true) => 255,
            (16, false) => 32767,
            (16, true) => 65535,
            (32, false) => 2_147_483_647,
            (32, true) => 4_294_967_295,
            _ => i64::MAX,
        };
        candidate.clamp(low, top)
    }

    fn float(&self, rng: &mut Rng) -> f64 {
        if rng.chance(10) {
            *rng.pick(EDGE_FLOATS)
        } else if !self.literals.integers.is_empty() && rng.chance(20) {
            *rng.pick(&self.literals.integers.iter().copied().collect::<Vec<_>>()) as f64
        } else {
            rng.range(-10_000, 100_000) as f64 / 100.0
        }
    }

    fn decimal(&self, rng: &mut Rng, precision: u8, scale: u8) -> String {
        let integer_digits = u32::from(precision - scale).min(6);
        let bound = 10_i64.pow(integer_digits) - 1;
        // Integer literals of the SQL (`price BETWEEN 20 AND 200`), where they fit.
        let fitting: Vec<i64> = self.literals.integers.iter().copied().filter(|v| v.abs() <= bound).collect();
        if !fitting.is_empty() && rng.chance(20) {
            let whole = *rng.pick(&fitting);
            return if scale == 0 { whole.to_string() } else { format!("{whole}.{}", "0".repeat(usize::from(scale.min(6)))) };
        }
        // Otherwise mostly small amounts, as prices and quantities are.
        let bound = if rng.chance(70) { bound.min(999) } else { bound };
        let whole = rng.range(-bound / 10, bound);
        if scale == 0 {
            return whole.to_string();
        }
        let fraction = rng.range(0, 10_i64.pow(u32::from(scale).min(6)) - 1);
        let sign = if whole == 0 && rng.chance(20) { "-" } else { "" };
        format!("{sign}{whole}.{fraction:0width$}", width = usize::from(scale.min(6)))
    }

    fn string(&self, rng: &mut Rng) -> String {
        if !self.literals.strings.is_empty() && rng.chance(45) {
            let harvested: Vec<&String> = self.literals.strings.iter().collect();
            return (*rng.pick(&harvested)).clone();
        }
        rng.pick(BASE_STRINGS).to_string()
    }

    fn date(&self, rng: &mut Rng) -> String {
        if !self.literals.dates.is_empty() && rng.chance(15) {
            let harvested: Vec<&String> = self.literals.dates.iter().collect();
            return (*rng.pick(&harvested)).clone();
        }
        if rng.chance(10) {
            return rng.pick(EDGE_DATES).to_string();
        }
        // A third of the days come from a few common ones, so that grouping by day or month
        // forms groups of several rows (a SUM and an AVG per day then differ).
        if rng.chance(33) {
            return rng.pick(COMMON_DATES).to_string();
        }
        format!("{:04}-{:02}-{:02}", rng.range(1999, 2026), rng.range(1, 12), rng.range(1, 28))
    }
}

fn time_of_day(rng: &mut Rng, midnight_percent: u64) -> String {
    if rng.chance(midnight_percent) {
        return "00:00:00".into();
    }
    format!("{:02}:{:02}:{:02}", rng.range(0, 23), rng.range(0, 59), rng.range(0, 59))
}

fn format_float(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('.') || text.contains('e') { text } else { format!("{text}.0") }
}

fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result_set::Value;

    fn schemas(json: serde_json::Value) -> TableSchemas {
        serde_json::from_value(json).unwrap()
    }

    fn dump(store: &FixtureStore, schema: &str, sql: &str) -> Vec<String> {
        let result = store.query(schema, sql).unwrap();
        result
            .rows
            .into_iter()
            .map(|row| match &row[0] {
                Value::Text(text) => text.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn same_inputs_give_the_same_data_and_the_twin_holds_the_same_rows() {
        let tables = schemas(serde_json::json!({"orders": {"id": "int64", "customer_id": "int64", "status": "string", "amount": "float64", "placed": "date"}}));
        let literals = Literals::harvest("SELECT * FROM orders WHERE status = 'shipped'");
        let (mut store_a, mut store_b) = (FixtureStore::new().unwrap(), FixtureStore::new().unwrap());
        // A set loaded before shifts the schema names in one store only.
        store_b.get(&schemas(serde_json::json!({"other": {"a": "int64"}})), &literals, DEFAULT_FIXTURES).unwrap();
        let a = store_a.get(&tables, &literals, DEFAULT_FIXTURES).unwrap();
        let b = store_b.get(&tables, &literals, DEFAULT_FIXTURES).unwrap();
        let query = "SELECT CAST(orders AS VARCHAR) FROM orders";
        for (x, y) in a.databases.iter().zip(&b.databases) {
            let mut original = dump(&store_a, &x.schema, query);
            assert_eq!(original, dump(&store_b, &y.schema, query));
            let mut shuffled = dump(&store_a, &x.twin_schema, query);
            assert_eq!(original.len(), x.config.rows);
            assert_ne!(original, shuffled, "the twin has another physical order");
            original.sort();
            shuffled.sort();
            assert_eq!(original, shuffled, "the twin has the same rows");
        }
        assert!(Rc::ptr_eq(&a, &store_a.get(&tables, &literals, DEFAULT_FIXTURES).unwrap()), "loaded once");
    }

    #[test]
    fn data_has_nulls_duplicate_keys_literals_and_edge_values() {
        let tables = schemas(serde_json::json!({"orders": {"id": "int64", "customer_id": "int64", "status": "string", "placed": "date"}}));
        let literals = Literals::harvest("SELECT * FROM orders WHERE status = 'shipped'");
        let mut store = FixtureStore::new().unwrap();
        let set = store.get(&tables, &literals, &[FixtureConfig { seed: 5, rows: 60 }]).unwrap();
        let schema = &set.databases[0].schema;
        let one = |sql: &str| dump(&store, schema, sql).remove(0);
        assert_eq!(one("SELECT CAST(COUNT(*) - COUNT(DISTINCT id) AS VARCHAR) FROM orders"), "3", "duplicate keys");
        assert_eq!(one("SELECT CAST(COUNT(*) - COUNT(DISTINCT orders) AS VARCHAR) FROM orders"), "2", "two rows repeated whole");
        assert_eq!(one("SELECT CAST(COUNT(*) FILTER (WHERE id IS NULL) AS VARCHAR) FROM orders"), "0", "keys are never NULL");
        assert_ne!(one("SELECT CAST(COUNT(*) FILTER (WHERE status IS NULL) AS VARCHAR) FROM orders"), "0");
        assert_ne!(one("SELECT CAST(COUNT(*) FILTER (WHERE status = 'shipped') AS VARCHAR) FROM orders"), "0");
        assert_ne!(one("SELECT CAST(COUNT(DISTINCT year(placed)) AS VARCHAR) FROM orders"), "1", "dates across years");
        let outside = one("SELECT CAST(COUNT(*) FILTER (WHERE customer_id > 15 AND customer_id <> 67) AS VARCHAR) FROM orders");
        assert_eq!(outside, "0", "foreign keys are 1..rows/4 or the unmatched rows+7");
        assert_ne!(one("SELECT CAST(COUNT(*) FILTER (WHERE customer_id = 67) AS VARCHAR) FROM orders"), "0", "some keys match nothing");
        let biggest_group: i64 =
            one("SELECT CAST(MAX(n) AS VARCHAR) FROM (SELECT COUNT(*) AS n FROM orders WHERE customer_id <= 15 GROUP BY customer_id)").parse().unwrap();
        assert!(biggest_group >= 4, "groups hold several rows, largest {biggest_group}");
    }

    #[test]
    fn filters_on_several_columns_and_decimal_ranges_select_rows() {
        let tables =
            schemas(serde_json::json!({"orders": {"id": "int64", "status": "string", "channel": "string", "code": "string", "price": "decimal(10, 2)"}}));
        let mut store = FixtureStore::new().unwrap();
        for sql in [
            "SELECT id FROM orders WHERE status IN ('shipped', 'delivered') AND channel IN ('web', 'mobile') AND regexp_matches(code, '^[A-Z]+[0-9]+$')",
            "SELECT id FROM orders WHERE price BETWEEN 20 AND 200 AND status = 'open'",
        ] {
            let set = store.get(&tables, &Literals::harvest(sql), &[FixtureConfig { seed: 1, rows: 48 }]).unwrap();
            let selected = dump(&store, &set.databases[0].schema, &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM ({sql})"));
            assert_ne!(selected, ["0"], "the filters of {sql} select some rows");
        }
    }

    #[test]
    fn nested_types_load() {
        let tables = schemas(
            serde_json::json!({"readings": {"samples": "array<float64>", "location": "struct<lat: float64, site: string>", "tags": "map<string, int64>", "cost": "decimal(10, 2)", "u": "uuid", "small": "int8"}}),
        );
        let mut store = FixtureStore::new().unwrap();
        let set = store.get(&tables, &Literals::default(), DEFAULT_FIXTURES).unwrap();
        assert_eq!(dump(&store, &set.databases[0].schema, "SELECT CAST(COUNT(*) AS VARCHAR) FROM readings"), ["48"]);
    }

    #[test]
    fn queries_cannot_reach_files() {
        let tables = schemas(serde_json::json!({"t": {"a": "int64"}}));
        let mut store = FixtureStore::new().unwrap();
        let set = store.get(&tables, &Literals::default(), DEFAULT_FIXTURES).unwrap();
        let schema = &set.databases[0].schema;
        let error = store.query(schema, "SELECT * FROM read_csv('/etc/hostname')").unwrap_err();
        assert!(error.to_string().to_lowercase().contains("disabled"), "{error}");
        assert!(store.query(schema, "SELECT * FROM t UNION ALL SELECT * FROM '/etc/hostname'").is_err());
        assert!(store.query(schema, "COPY t TO '/tmp/ibert-should-not-exist.csv'").is_err());
        assert!(!std::path::Path::new("/tmp/ibert-should-not-exist.csv").exists());
    }

    #[test]
    fn evicted_sets_are_dropped_and_reloaded_identically() {
        let tables = schemas(serde_json::json!({"t": {"a": "int64", "s": "string"}}));
        let mut store = FixtureStore::new().unwrap();
        store.capacity = 2;
        let first = store.get(&tables, &Literals::harvest("SELECT 'x'"), DEFAULT_FIXTURES).unwrap();
        let before = dump(&store, &first.databases[0].schema, "SELECT CAST(t AS VARCHAR) FROM t");
        store.get(&tables, &Literals::harvest("SELECT 'y'"), DEFAULT_FIXTURES).unwrap();
        store.get(&tables, &Literals::harvest("SELECT 'z'"), DEFAULT_FIXTURES).unwrap();
        assert!(store.query(&first.databases[0].schema, "SELECT * FROM t").is_err(), "evicted schema is gone");
        let again = store.get(&tables, &Literals::harvest("SELECT 'x'"), DEFAULT_FIXTURES).unwrap();
        assert_eq!(dump(&store, &again.databases[0].schema, "SELECT CAST(t AS VARCHAR) FROM t"), before);
    }

    #[test]
    fn pairs_over_reference_tables_run_on_the_reference_data_and_others_on_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.duckdb");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE main.nation (n_key INTEGER, n_name VARCHAR); INSERT INTO main.nation VALUES (1, 'FRANCE'), (2, 'PERU');
                 CREATE SCHEMA twin; CREATE TABLE twin.nation AS SELECT * FROM main.nation ORDER BY n_key DESC;",
            )
            .unwrap();
        drop(writer);
        let nation = schemas(serde_json::json!({"nation": {"n_key": "int32", "n_name": "string"}}));
        let reference = ReferenceDatabase { name: "tiny".into(), path, tables: nation.clone() };
        let mut store = FixtureStore::with_references(&[reference]).unwrap();

        let set = store.get(&nation, &Literals::default(), DEFAULT_FIXTURES).unwrap();
        assert_eq!(set.databases.len(), 1);
        assert_eq!(set.databases[0].label(), "reference data `tiny`");
        assert_eq!(dump(&store, &set.databases[0].schema, "SELECT n_name FROM nation ORDER BY n_key"), ["FRANCE", "PERU"]);
        assert_eq!(dump(&store, &set.databases[0].twin_schema, "SELECT n_name FROM nation"), ["PERU", "FRANCE"]);
        assert!(store.query(&set.databases[0].schema, "CREATE TABLE nation2 AS SELECT 1").is_err(), "attached read-only");

        // Another type for a column: not the reference's table, so generated fixtures.
        let other = schemas(serde_json::json!({"nation": {"n_key": "int64", "n_name": "string"}}));
        let set = store.get(&other, &Literals::default(), DEFAULT_FIXTURES).unwrap();
        assert_eq!(set.databases.len(), DEFAULT_FIXTURES.len());
        assert!(set.databases.iter().all(|d| d.reference.is_none()));
    }

    #[test]
    fn a_missing_reference_file_is_an_error_naming_it() {
        let reference = ReferenceDatabase { name: "gone".into(), path: "/nonexistent/ref.duckdb".into(), tables: TableSchemas::new() };
        let error = FixtureStore::with_references(&[reference]).err().expect("refused").to_string();
        assert!(error.contains("/nonexistent/ref.duckdb"), "{error}");
    }

    #[test]
    fn unsupported_type_names_table_and_column() {
        let tables = schemas(serde_json::json!({"t": {"shape": "geometry"}}));
        let error = FixtureStore::new().unwrap().get(&tables, &Literals::default(), DEFAULT_FIXTURES).err().unwrap().to_string();
        assert!(error.starts_with("table `t`, column `shape`"), "{error}");
    }
}
