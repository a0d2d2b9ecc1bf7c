//! Generating the TPC reference databases with the real generators and the project's schemas.

use std::path::Path;

use duckdb::Connection;
use ibert_tpc::{Benchmark, ensure_database};
use ibert_transpile::corpus::Corpus;
use ibert_verify::TableSchemas;

fn schemas(file: &str) -> TableSchemas {
    let path = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../corpus/tpc").join(file);
    let catalog = Corpus::load(&path).expect("TPC schema file").catalog;
    catalog.schemas()
}

fn count(connection: &Connection, sql: &str) -> i64 {
    connection.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn tpch_data_loads_every_table_with_a_twin_and_is_reused() {
    let cache = tempfile::tempdir().unwrap();
    let schemas = schemas("tpch.yaml");
    let reference = ensure_database(Benchmark::H, 0.001, &schemas, cache.path()).unwrap();
    assert_eq!(reference.tables, schemas);
    let connection = Connection::open(&reference.path).unwrap();
    for table in schemas.keys() {
        let rows = count(&connection, &format!("SELECT count(*) FROM main.{table}"));
        assert!(rows > 0, "{table} is empty");
        let twin = count(&connection, &format!("SELECT count(*) FROM (SELECT * FROM main.{table} EXCEPT ALL SELECT * FROM twin.{table})"));
        assert_eq!(twin, 0, "{table}: the twin holds the same rows");
    }
    assert_eq!(count(&connection, "SELECT count(*) FROM nation"), 25);
    // Foreign keys match: every line item belongs to an order.
    assert_eq!(count(&connection, "SELECT count(*) FROM lineitem ANTI JOIN orders ON l_orderkey = o_orderkey"), 0);
    drop(connection);

    let modified = std::fs::metadata(&reference.path).unwrap().modified().unwrap();
    let again = ensure_database(Benchmark::H, 0.001, &schemas, cache.path()).unwrap();
    assert_eq!(std::fs::metadata(&again.path).unwrap().modified().unwrap(), modified, "the cached file is reused");
}

#[test]
fn tpcds_data_fills_the_sales_tables() {
    let cache = tempfile::tempdir().unwrap();
    let reference = ensure_database(Benchmark::Ds, 0.001, &schemas("tpcds.yaml"), cache.path()).unwrap();
    let connection = Connection::open(&reference.path).unwrap();
    assert!(count(&connection, "SELECT count(*) FROM store_sales JOIN item ON ss_item_sk = i_item_sk") > 0);
    assert!(count(&connection, "SELECT count(*) FROM date_dim WHERE d_year = 2000") == 366);
}

#[test]
fn a_schema_with_a_table_the_generator_lacks_is_refused_and_nothing_is_cached() {
    let cache = tempfile::tempdir().unwrap();
    let mut schemas = schemas("tpch.yaml");
    schemas.insert("extra".into(), serde_json::from_str(r#"{"x": "int64"}"#).unwrap());
    let error = ensure_database(Benchmark::H, 0.001, &schemas, cache.path()).unwrap_err().to_string();
    assert!(error.contains("`extra`"), "{error}");
    let left: Vec<_> = std::fs::read_dir(cache.path().join("tpc")).unwrap().collect();
    assert!(left.is_empty(), "no partial files: {left:?}");
}
