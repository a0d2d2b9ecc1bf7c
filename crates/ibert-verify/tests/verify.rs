//! The verifier end to end: real Ibis through the oracle, real DuckDB fixtures.

use std::sync::OnceLock;

use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool};
use ibert_verify::{DEFAULT_FIXTURES, RejectReason, SharedFixtures, TableSchemas, Verdict, Verifier};

fn pool() -> &'static WorkerPool {
    static POOL: OnceLock<WorkerPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let env = PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment for the oracle: {error}"));
        WorkerPool::start(env, PoolOptions { workers: 2, ..PoolOptions::default() }).expect("pool starts")
    })
}

fn orders() -> TableSchemas {
    serde_json::from_value(serde_json::json!({
        "orders": {"id": "int64", "customer_id": "int64", "status": "string", "amount": "float64", "order_date": "date"},
        "customers": {"id": "int64", "name": "string", "country": "string"}
    }))
    .unwrap()
}

fn verify(sql: &str, ibis: &str) -> Verdict {
    Verifier::new(pool(), DEFAULT_FIXTURES).verify(sql, ibis, &orders(), None).expect("oracle works")
}

fn reason(verdict: &Verdict) -> Option<RejectReason> {
    match verdict {
        Verdict::Verified(_) => None,
        Verdict::Rejected(reject) => Some(reject.reason),
    }
}

#[test]
fn equivalent_pair_is_verified_with_evidence() {
    let verdict = verify(
        "SELECT status, SUM(amount) AS total FROM orders WHERE amount > 10 GROUP BY status",
        "expr = orders.filter(_.amount > 10).group_by('status').agg(total=_.amount.sum())",
    );
    let Verdict::Verified(evidence) = verdict else { panic!("{verdict:?}") };
    assert!(!evidence.ordered);
    assert_eq!(evidence.fixture_seeds, [1, 2, 3]);
    assert!(evidence.fixture_rows.iter().any(|&rows| rows > 1), "{evidence:?}");
    assert!(evidence.compiled_sql.contains("SUM("), "{}", evidence.compiled_sql);
    assert_eq!(evidence.fingerprint.len(), 16);
}

#[test]
fn boundary_error_is_caught_because_fixtures_hold_the_literals() {
    let verdict = verify("SELECT id FROM orders WHERE amount > 10", "orders.filter(orders.amount >= 10).select('id')");
    assert_eq!(reason(&verdict), Some(RejectReason::Mismatch), "{verdict:?}");
}

#[test]
fn null_semantics_are_caught() {
    // COUNT(col) skips NULLs; counting rows does not.
    let verdict = verify("SELECT status, COUNT(amount) AS n FROM orders GROUP BY status", "orders.group_by('status').agg(n=_.count())");
    assert_eq!(reason(&verdict), Some(RejectReason::Mismatch), "{verdict:?}");
}

#[test]
fn aggregates_that_agree_on_single_row_groups_are_told_apart() {
    let verdict =
        verify("SELECT customer_id, SUM(amount) AS total FROM orders GROUP BY customer_id", "orders.group_by('customer_id').agg(total=_.amount.max())");
    assert_eq!(reason(&verdict), Some(RejectReason::Mismatch), "{verdict:?}");
}

#[test]
fn total_order_is_compared_in_order() {
    let sql = "SELECT id, amount FROM orders WHERE amount IS NOT NULL ORDER BY amount DESC, id, customer_id, status, order_date";
    let good =
        verify(sql, "orders.filter(_.amount.notnull()).order_by([ibis.desc('amount'), 'id', 'customer_id', 'status', 'order_date']).select('id', 'amount')");
    let Verdict::Verified(evidence) = &good else { panic!("{good:?}") };
    assert!(evidence.ordered);
    let reversed = verify(sql, "orders.filter(_.amount.notnull()).order_by(['amount', 'id']).select('id', 'amount')");
    assert_eq!(reason(&reversed), Some(RejectReason::Mismatch), "{reversed:?}");
}

#[test]
fn ibis_relying_on_storage_order_is_caught_on_the_twin() {
    let unordered =
        verify("SELECT id, amount FROM orders WHERE id > 2 ORDER BY id, amount, customer_id, status", "orders.filter(orders.id > 2).select('id', 'amount')");
    assert_eq!(reason(&unordered), Some(RejectReason::Mismatch), "{unordered:?}");
    let limit_without_order = verify("SELECT id FROM orders WHERE id BETWEEN 1 AND 3", "orders.limit(3).select('id')");
    assert_eq!(reason(&limit_without_order), Some(RejectReason::Mismatch), "{limit_without_order:?}");
}

#[test]
fn results_of_only_nulls_are_vacuous() {
    let verdict = verify("SELECT MAX(amount) AS m FROM orders WHERE amount > 5000000 AND amount < 0", "orders.filter(orders.amount > 6000000).amount.max()");
    assert_eq!(reason(&verdict), Some(RejectReason::Vacuous), "{verdict:?}");
}

#[test]
fn fixtures_aimed_at_the_query_serve_filters_the_default_ones_miss() {
    // No default fixture holds an amount above five million; data aimed at the filter does, and
    // then a translation with another threshold is caught instead of passing as vacuous.
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    let sql = "SELECT MAX(amount) AS m FROM orders WHERE amount > 5000000";
    let wrong = verifier.verify(sql, "orders.filter(orders.amount > 6000000).amount.max()", &orders(), None).unwrap();
    assert_eq!(reason(&wrong), Some(RejectReason::Mismatch), "{wrong:?}");
    let right = verifier.verify(sql, "orders.filter(orders.amount > 5000000).amount.max()", &orders(), None).unwrap();
    let Verdict::Verified(evidence) = &right else { panic!("{right:?}") };
    assert_ne!(evidence.fixture_profile, ibert_verify::Profile::Default);
    verifier.aimed_fixtures = false;
    assert_eq!(reason(&verifier.verify(sql, "orders.filter(orders.amount > 5000000).amount.max()", &orders(), None).unwrap()), Some(RejectReason::Vacuous));
}

#[test]
fn dates_shifted_by_intervals_and_joined_chains_get_rows() {
    let tables: TableSchemas = serde_json::from_value(serde_json::json!({
        "orders": {"id": "int64", "customer_id": "int64", "shipped": "date", "placed": "date"},
        "customers": {"id": "int64", "region_id": "int64", "name": "string"},
        "regions": {"id": "int64", "name": "string"}
    }))
    .unwrap();
    let sql = "SELECT o.id, r.name FROM orders o JOIN customers c ON o.customer_id = c.id JOIN regions r ON c.region_id = r.id \
               WHERE o.shipped <= DATE '1998-12-01' - INTERVAL '90' DAY AND year(o.placed) = 1997 AND r.name = 'ASIA' AND o.placed < o.shipped";
    let run = Verifier::new(pool(), DEFAULT_FIXTURES).reference_run(sql, &tables).expect("some fixture selects rows");
    assert!(run.results.iter().any(|(result, _)| !result.rows.is_empty()));
}

#[test]
fn ties_under_limit_are_nondeterministic() {
    // Nine rows in ten share the sort key, so which three come first depends on storage order.
    let verdict = verify("SELECT id FROM orders ORDER BY customer_id IS NULL LIMIT 3", "orders.order_by(orders.customer_id.isnull()).limit(3).select('id')");
    assert_eq!(reason(&verdict), Some(RejectReason::Nondeterministic), "{verdict:?}");
}

#[test]
fn a_window_ordered_by_a_column_with_nulls_is_verified_on_fixtures_without_ties() {
    // The default fixtures hold several NULL (and repeated) dates, so LAG's previous row is
    // arbitrary there; the distinct fixtures keep at most one NULL a column and so a total order.
    let sql = "SELECT id, amount - LAG(amount) OVER (ORDER BY order_date) AS delta FROM orders";
    let ibis = "expr = orders.select('id', delta=orders.amount - orders.amount.lag().over(order_by=orders.order_date))";
    let verdict = verify(sql, ibis);
    assert_eq!(reason(&verdict), None, "{verdict:?}");
    // A wrong window (the next row instead of the previous) is still caught there.
    let wrong = verify(sql, "expr = orders.select('id', delta=orders.amount - orders.amount.lead().over(order_by=orders.order_date))");
    assert_eq!(reason(&wrong), Some(RejectReason::Mismatch), "{wrong:?}");
}

#[test]
fn a_string_cast_to_a_number_is_verified_on_fixtures_written_in_digits() {
    // Fixture strings are words, so the cast fails on the default fixtures; fixtures aimed at
    // the query write the column in digits. A wrong substring is still caught there.
    let sql = "SELECT id, CAST(SUBSTRING(status, 1, 3) AS INTEGER) AS code FROM orders";
    let right = verify(sql, "expr = orders.select('id', code=orders.status.substr(0, 3).cast('int32'))");
    assert_eq!(reason(&right), None, "{right:?}");
    let wrong = verify(sql, "expr = orders.select('id', code=orders.status.substr(1, 3).cast('int32'))");
    assert_eq!(reason(&wrong), Some(RejectReason::Mismatch), "{wrong:?}");
}

#[test]
fn empty_everywhere_is_vacuous() {
    let verdict = verify("SELECT id FROM orders WHERE 1 = 0", "orders.filter(ibis.literal(False)).select('id')");
    assert_eq!(reason(&verdict), Some(RejectReason::Vacuous));
}

#[test]
fn each_failure_has_its_reason() {
    let ibis_error = verify("SELECT id FROM orders", "orders.select('idd')");
    let Verdict::Rejected(reject) = &ibis_error else { panic!() };
    assert_eq!(reject.reason, RejectReason::IbisError);
    assert!(reject.detail.contains("idd"), "{}", reject.detail);
    assert!(reject.failure.is_some());

    assert_eq!(reason(&verify("SELEC id FROM orders", "orders.select('id')")), Some(RejectReason::SqlError));
    assert_eq!(reason(&verify("SELECT id FROM orders", "import os\norders")), Some(RejectReason::Sandbox));
    let columns = verify("SELECT id, status FROM orders", "orders.select('id')");
    let Verdict::Rejected(reject) = &columns else { panic!() };
    assert!(reject.detail.contains("2 columns"), "{}", reject.detail);
}

#[test]
fn join_of_two_tables_verifies() {
    let verdict = verify(
        "SELECT c.name, COUNT(*) AS n FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY c.name",
        "expr = orders.join(customers, orders.customer_id == customers.id).group_by('name').agg(n=_.count())",
    );
    assert!(matches!(verdict, Verdict::Verified(_)), "{verdict:?}");
}

#[test]
fn unsupported_column_type_is_a_schema_reject() {
    let tables: TableSchemas = serde_json::from_value(serde_json::json!({"t": {"g": "geometry"}})).unwrap();
    let verdict = Verifier::new(pool(), DEFAULT_FIXTURES).verify("SELECT * FROM t", "t", &tables, None).unwrap();
    assert_eq!(reason(&verdict), Some(RejectReason::Schema));
}

fn priced() -> TableSchemas {
    serde_json::from_value(serde_json::json!({"items": {"id": "int64", "kind": "string", "price": "decimal(10, 3)", "qty": "decimal(12, 2)"}})).unwrap()
}

#[test]
fn a_decimal_average_that_ibis_rounds_is_caught_when_executed_as_a_user_does() {
    // DuckDB's AVG of a DECIMAL is a DOUBLE; Ibis keeps decimal(10, 3) and rounds the result to it.
    // The SQL Ibis compiles agrees inside DuckDB: only executing the expression shows it.
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    let sql = "SELECT kind, AVG(price) AS mean_price FROM items GROUP BY kind";
    let verdict = verifier.verify(sql, "expr = items.group_by('kind').agg(mean_price=_.price.mean())", &priced(), None).unwrap();
    let Verdict::Rejected(reject) = &verdict else { panic!("verified: {verdict:?}") };
    assert_eq!(reject.reason, RejectReason::TypeMismatch, "{}", reject.detail);
    assert!(reject.detail.contains("floating point") && reject.detail.contains("decimal(10, 3)"), "{}", reject.detail);
}

#[test]
fn decimal_products_whose_scale_ibis_gets_wrong_fail_in_to_pyarrow() {
    // DuckDB types decimal(10, 3) * decimal(10, 3) as decimal(18, 6); Ibis says decimal(10, 3)
    // and then cannot cast the result without losing digits.
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    let sql = "SELECT id, price * price AS total FROM items";
    let program = "expr = items.select('id', total=_.price * _.price)";
    let verdict = verifier.verify(sql, program, &priced(), None).unwrap();
    assert!(matches!(reason(&verdict), Some(RejectReason::IbisExecution | RejectReason::TypeMismatch)), "{verdict:?}");
    // A machine translation gets the SQL's types by one cast, and then verifies.
    let aligned = verifier.verify_aligned(sql, program, &priced(), None).unwrap();
    assert!(matches!(aligned.verdict, Verdict::Verified(_)), "{:?}", aligned.verdict);
    let program = aligned.program.expect("the program was adjusted");
    assert!(program.ends_with("expr = expr.cast({\"total\": \"decimal(18, 6)\"})\n"), "{program}");
}

#[test]
fn the_average_of_a_decimal_is_aligned_to_a_double_and_then_verified_with_its_evidence() {
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    let sql = "SELECT kind, AVG(price) AS mean_price FROM items GROUP BY kind";
    let aligned = verifier.verify_aligned(sql, "expr = items.group_by('kind').agg(mean_price=_.price.mean())", &priced(), None).unwrap();
    let Verdict::Verified(evidence) = &aligned.verdict else { panic!("{:?}", aligned.verdict) };
    assert_eq!(evidence.executed_with_ibis, [1, 2, 3], "executed through Ibis on every fixture that returns rows");
    assert!(aligned.program.unwrap().contains("\"mean_price\": \"float64\""));
}

#[test]
fn a_program_that_matches_is_not_adjusted() {
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    let aligned = verifier
        .verify_aligned("SELECT id, price FROM items WHERE price > 10", "expr = items.filter(_.price > 10).select('id', 'price')", &priced(), None)
        .unwrap();
    assert!(matches!(aligned.verdict, Verdict::Verified(_)), "{:?}", aligned.verdict);
    assert_eq!(aligned.program, None);
}

#[test]
fn a_logic_error_is_not_hidden_by_alignment() {
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    let aligned = verifier
        .verify_aligned("SELECT kind, SUM(price) AS s FROM items GROUP BY kind", "expr = items.group_by('kind').agg(s=_.price.max())", &priced(), None)
        .unwrap();
    assert!(matches!(&aligned.verdict, Verdict::Rejected(reject) if reject.reason == RejectReason::Mismatch), "{:?}", aligned.verdict);
    assert_eq!(aligned.program, None);
}

#[test]
fn shared_fixtures_are_made_once_for_a_family_and_hold_each_querys_literals() {
    let family = ["SELECT id FROM orders WHERE status = 'shipped-late'", "SELECT c.name FROM customers AS c WHERE c.country = 'Narnia'"];
    let own_tables: TableSchemas = serde_json::from_value(serde_json::json!({"customers": orders()["customers"].clone()})).unwrap();
    let mut verifier = Verifier::new(pool(), DEFAULT_FIXTURES);
    verifier.shared = Some(std::sync::Arc::new(SharedFixtures::new(orders(), family)));
    let first = verifier.reference_run(family[0], &orders()).expect("the first query selects rows");
    // `reference_run` is an error (vacuous) unless the query selects rows on some fixture.
    let second = verifier.reference_run(family[1], &own_tables).expect("the second query selects rows");
    assert!(std::rc::Rc::ptr_eq(&first.fixtures, &second.fixtures), "one data set for the family");
    let ibis = "expr = customers.filter(customers.country == 'Narnia').select('name')";
    assert!(matches!(verifier.verify(family[1], ibis, &own_tables, None).unwrap(), Verdict::Verified(_)));

    verifier.shared = None;
    let own = verifier.reference_run(family[1], &own_tables).expect("rows");
    assert!(!std::rc::Rc::ptr_eq(&own.fixtures, &second.fixtures), "without sharing, data of the query's own");
}
