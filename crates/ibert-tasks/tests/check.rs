//! The "it runs" check of answers with no goal, through real Ibis and DuckDB.

use ibert_oracle::protocol::TableSchemas;
use ibert_tasks::check::Checker;
use ibert_verify::{RejectReason, Verdict};

mod common;

use common::pool;

#[test]
fn a_program_runs_when_only_ibis_s_own_result_types_differ_from_its_sql_and_a_failing_one_does_not() {
    let pool = pool();
    let mut checker = Checker::on_default_fixtures(&pool);
    let tables: TableSchemas = serde_json::from_value(serde_json::json!({"trips": {"city": "string", "fare": "decimal(8,2)", "km": "float64"}})).unwrap();

    // The mean of a decimal column: DuckDB's SQL returns a double, Ibis casts it to the
    // expression's decimal. Its values are the SQL's, so the program runs.
    let mean = "expr = trips.filter(trips.km > 1).group_by('city').agg(avg_fare=trips.fare.mean())";
    let plain = checker.verifier.verify(&checker.compile(mean, &tables).unwrap().unwrap(), mean, &tables, None).unwrap();
    assert!(matches!(&plain, Verdict::Rejected(reject) if reject.reason == RejectReason::TypeMismatch), "the types do differ: {plain:?}");
    let checked = checker.program_runs(mean, &tables).unwrap();
    assert!(checked.passed(), "{:?}", checked.verdict);
    assert_eq!(checked.program, mean, "the answer stays as written: no goal asks for other types");

    // What does not run is still refused.
    let broken = "expr = trips.group_by('city').agg(n=trips.fare.upper())";
    let checked = checker.program_runs(broken, &tables).unwrap();
    assert!(!checked.passed(), "{:?}", checked.verdict);
}
