//! The code of prose answers through real Ibis, with the tables inferred from its errors.

use ibert_oracle::protocol::TableSchemas;
use ibert_tasks::snippet::run_snippet;

mod common;

use common::pool;

#[test]
fn snippets_compile_against_the_tables_their_errors_reveal_and_real_mistakes_stay_errors() {
    let pool = pool();
    let none = TableSchemas::new();

    let run = run_snippet(&pool, "expr = orders.filter(orders.status == 'paid').order_by(ibis.desc('amount'))\n", &none).unwrap();
    let sql = run.compiled.as_ref().unwrap_or_else(|error| panic!("{error} with {}", run.describe_tables()));
    assert!(sql.contains("ORDER BY") && sql.contains("'paid'"), "{sql}");
    assert_eq!(run.describe_tables(), "orders(status string, amount int64)");

    let run = run_snippet(&pool, "users.mutate(initial=users.name.upper(), joined=users.signup.year())\n", &none).unwrap();
    assert!(run.compiled.is_ok(), "{:?} with {}", run.compiled, run.describe_tables());
    assert_eq!(run.describe_tables(), "users(name string, signup timestamp)");

    // The default model's old answer to "sort descending": Ibis rejects it, and no schema helps.
    let run = run_snippet(&pool, "expr = t.order_by('column_name').desc()\n", &none).unwrap();
    let error = run.compiled.unwrap_err();
    assert!(error.contains("desc"), "{error}");

    // Known tables are kept as given: a column they lack is a real error.
    let known: TableSchemas = serde_json::from_value(serde_json::json!({"orders": {"id": "int64"}})).unwrap();
    let run = run_snippet(&pool, "expr = orders.select('id')\n", &known).unwrap();
    assert!(run.compiled.is_ok() && run.describe_tables() == "orders(id int64)");
    let run = run_snippet(&pool, "expr = orders.select('amount')\n", &known).unwrap();
    assert!(run.compiled.as_ref().is_err_and(|error| error.contains("amount")), "{:?}", run.compiled);
    assert_eq!(run.tables, known);
}
