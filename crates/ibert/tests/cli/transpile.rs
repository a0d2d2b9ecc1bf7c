//! `ibert from-sql` and `ibert to-sql` end to end, with the real oracle.

use crate::common::{ibert_with_stdin, stderr, stdout};

const SCHEMA: &str = r#"{"customers": {"id": "int64", "name": "string", "country": "string"},
  "orders": {"id": "int64", "customer_id": "int64", "amount": "float64", "status": "string"}}"#;

#[test]
fn from_sql_prints_verified_ibis_for_a_join_with_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "SELECT c.country, SUM(o.amount) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id \
               WHERE o.status <> 'cancelled' GROUP BY c.country ORDER BY revenue DESC";
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--schema", SCHEMA], sql);
    assert!(output.status.success(), "{}", stderr(&output));
    let code = stdout(&output);
    assert!(code.contains(".join(orders, orders.customer_id == customers.id)"), "{code}");
    assert!(code.contains(".aggregate(revenue=orders.amount.sum())"), "{code}");
    assert!(code.contains("ibis.desc(_.revenue)"), "{code}");
    assert!(stderr(&output).contains("verified:"), "{}", stderr(&output));
}

#[test]
fn from_sql_reference_schema_and_standalone_program() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(
        dir.path(),
        &["from-sql", "--schema", "id: int, name: string", "--table-name", "people", "--standalone", "--no-verify"],
        "SELECT UPPER(name) AS shout FROM people WHERE id BETWEEN 2 AND 5",
    );
    assert_eq!(output.status.code(), Some(2), "printed but not checked: {}", stderr(&output));
    let code = stdout(&output);
    assert!(code.starts_with("import ibis\nfrom ibis import _\n"), "{code}");
    assert!(code.contains("people = ibis.table({\"id\": \"int64\", \"name\": \"string\"}, name=\"people\")"), "{code}");
    assert!(code.contains("people.id.between(2, 5)"), "{code}");
    assert!(stderr(&output).contains("not verified"), "{}", stderr(&output));
}

#[test]
fn from_sql_names_the_unsupported_construct_and_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(
        dir.path(),
        &["from-sql", "--schema", SCHEMA, "--no-model"],
        "SELECT country,\n  id\nFROM customers\nWHERE id > ALL (SELECT id FROM customers)",
    );
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("ANY/ALL comparisons"), "{message}");
    assert!(message.contains("line 4, column 7"), "{message}");
    assert!(stdout(&output).is_empty(), "nothing is printed as a translation");
}

#[test]
fn from_sql_without_schema_or_with_unknown_names_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["from-sql"], "SELECT 1 FROM t");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--schema"), "{}", stderr(&output));
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--schema", SCHEMA], "SELECT nope FROM orders");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unknown column `nope` (line 1, column 8)"), "{}", stderr(&output));
}

#[test]
fn to_sql_compiles_exactly_for_other_dialects_and_reports_real_ibis_errors() {
    let dir = tempfile::tempdir().unwrap();
    let program = "expr = orders.filter(orders.amount > 10).select(orders.id, label=orders.status.upper())";
    let output = ibert_with_stdin(dir.path(), &["to-sql", "--schema", SCHEMA, "--dialect", "postgres"], program);
    assert!(output.status.success(), "{}", stderr(&output));
    let sql = stdout(&output);
    assert!(sql.contains("UPPER(\"t0\".\"status\") AS \"label\""), "{sql}");
    assert!(sql.contains("\"t0\".\"amount\" > 10"), "{sql}");

    let output = ibert_with_stdin(dir.path(), &["to-sql", "--schema", SCHEMA, "--no-model"], "orders.filter(orders.nope > 1)");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("AttributeError"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("asking the local model"), "--no-model: {}", stderr(&output));
}

#[test]
fn to_sql_asks_the_model_to_repair_what_does_not_compile_and_says_whose_sql_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["to-sql", "--schema", SCHEMA, "--attempts", "1", "--max-tokens", "48"], "orders.filter(orders.amout > 1)");
    let err = stderr(&output);
    assert!(err.contains("AttributeError") && err.contains("asking the local model to repair it"), "{err}");
    match output.status.code() {
        Some(3) => assert!(err.contains("not of the input") && stdout(&output).contains("SELECT"), "{err}"),
        Some(1) => assert!(err.contains("did not compile either") && stdout(&output).is_empty(), "{err}"),
        other => panic!("exit {other:?}: {err}"),
    }
}

#[test]
fn from_sql_falls_back_to_the_model_for_what_the_transpiler_refuses_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(
        dir.path(),
        &["from-sql", "--schema", SCHEMA, "--attempts", "1", "--max-tokens", "64"],
        "SELECT id FROM orders WHERE amount > ALL (SELECT amount FROM orders WHERE status = 'x')",
    );
    let err = stderr(&output);
    assert!(err.contains("the transpiler refused") && err.contains("ANY/ALL comparisons"), "{err}");
    assert!(err.contains("asking the local model"), "{err}");
    match output.status.code() {
        Some(0) => assert!(err.contains("verified (translated by the model, not the transpiler"), "{err}"),
        Some(2 | 3) => assert!(err.contains("NOT verified (translated by the model, not the transpiler"), "{err}"),
        other => panic!("exit {other:?}: {err}"),
    }
    assert!(!stdout(&output).trim().is_empty(), "the model's program is printed");
}

#[test]
fn exit_statuses_tell_verified_unverified_and_errors_apart_and_strict_prints_only_verified() {
    let dir = tempfile::tempdir().unwrap();
    let schema = ["--schema", "id: int, amount: float64", "--table-name", "t"];
    let run = |extra: &[&str], sql: &str| {
        let args: Vec<&str> = ["from-sql"].iter().chain(schema.iter()).chain(extra.iter()).copied().collect();
        ibert_with_stdin(dir.path(), &args, sql)
    };
    // No data can satisfy this filter: printed, but could not be checked (2).
    let unsatisfiable = "SELECT id FROM t WHERE amount > 10 AND amount < 5";
    let output = run(&[], unsatisfiable);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("could not be checked (vacuous)"), "{}", stderr(&output));
    assert!(stdout(&output).contains("expr = "), "the best answer is printed");
    // --strict prints nothing that is not verified.
    let output = run(&["--strict"], unsatisfiable);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert!(stderr(&output).contains("nothing printed (--strict)"), "{}", stderr(&output));
    // Verified (0), printed with --strict too.
    let output = run(&["--strict"], "SELECT id FROM t WHERE amount > 10");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("expr = "));
    // SQL that does not parse is an error (1), and so is a bad argument.
    assert_eq!(run(&["--no-model"], "SELEC id FROM t").status.code(), Some(1));
    assert_eq!(run(&["--no-such-flag"], "SELECT 1").status.code(), Some(1));
}

#[test]
fn db_verifies_on_the_users_own_data_and_gives_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let rows: String = (1..=30).map(|i| format!("{i},{},{}.5\n", ["north", "south"][i % 2], i * 3)).collect();
    std::fs::write(data.join("sales.csv"), format!("id,region,amount\n{rows}")).unwrap();
    // No --schema: the data's own tables, as Ibis reads them, are the schema.
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--db", "data"], "SELECT region, SUM(amount) AS total FROM sales GROUP BY region");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("on the data of --db (2 rows)"), "{}", stderr(&output));
    assert!(stdout(&output).contains("sales"), "{}", stdout(&output));
    // to-sql checks that the SQL it prints returns what Ibis returns on that data.
    let output = ibert_with_stdin(dir.path(), &["to-sql", "--db", "data"], "expr = sales.group_by('region').agg(total=sales.amount.sum())");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("checked: on the data of --db"), "{}", stderr(&output));
    // A path that is not there is an error that names it.
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--db", "absent.duckdb"], "SELECT 1");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("absent.duckdb: no such file or folder"), "{}", stderr(&output));
}

#[test]
fn from_sql_reads_postgres_spellings_over_lists_structs_and_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let schema = r#"{"shipments": {"id": "int64", "tags": "array<string>", "dest": "struct<city: string, country: string>", "fee": "decimal(18, 2)", "rate": "decimal(12, 6)", "shipped_at": "timestamp", "delivered_at": "timestamp"}}"#;
    let sql = "SELECT (dest).city AS city,\n  COUNT(*) FILTER (WHERE 'fragile' = ANY(tags)) AS fragile,\n  SUM(fee * rate)::numeric(18,2) AS charged,\n  \
               AVG(EXTRACT(EPOCH FROM delivered_at - shipped_at)) AS seconds\nFROM shipments\nGROUP BY ROLLUP ((dest).city)";
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--schema", schema, "--dialect", "postgres", "--no-model"], sql);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let program = stdout(&output);
    for piece in ["shipments.dest[\"city\"]", "shipments.tags.contains(\"fragile\")", "unit=\"microsecond\"", "decimal(38, 6)", ".union("] {
        assert!(program.contains(piece), "{piece}: {program}");
    }
    assert!(stderr(&output).contains("verified"), "{}", stderr(&output));
}

#[test]
fn from_sql_suggests_the_rewrite_of_another_dialects_construct() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--schema", SCHEMA, "--dialect", "postgres", "--no-model"], "SELECT TOP 5 id FROM orders");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("TOP (SQL Server's; end the query with LIMIT n) is not supported"), "{}", stderr(&output));
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--schema", SCHEMA, "--no-model"], "SELECT `status` FROM orders");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("a backtick-quoted name (MySQL's and BigQuery's quoting; quote names with double quotes: \"order\") is not supported by the transpiler (line 1, column 8)"), "{}", stderr(&output));
    let output = ibert_with_stdin(dir.path(), &["from-sql", "--schema", SCHEMA, "--no-model"], "SELECT NVL(status, 'none') AS s FROM orders");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the function nvl() (write COALESCE(x, y))"), "{}", stderr(&output));
}
