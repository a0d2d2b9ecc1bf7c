//! The verifier end to end: real Ibis through the oracle, real DuckDB fixtures.

use std::sync::OnceLock;

use ibert_oracle::{PoolOptions, PythonEnv, WorkerPool};
use ibert_verify::{DEFAULT_FIXTURES, RejectReason, TableSchemas, Verdict, Verifier};

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
    let verdict = verify("SELECT MAX(amount) AS m FROM orders WHERE amount > 5000000", "orders.filter(orders.amount > 6000000).amount.max()");
    assert_eq!(reason(&verdict), Some(RejectReason::Vacuous), "{verdict:?}");
}

#[test]
fn ties_under_limit_are_nondeterministic() {
    // Nine rows in ten share the sort key, so which three come first depends on storage order.
    let verdict = verify("SELECT id FROM orders ORDER BY customer_id IS NULL LIMIT 3", "orders.order_by(orders.customer_id.isnull()).limit(3).select('id')");
    assert_eq!(reason(&verdict), Some(RejectReason::Nondeterministic), "{verdict:?}");
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
