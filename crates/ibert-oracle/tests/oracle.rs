//! The oracle against real Ibis: compiling, failing with the real exception, dialects, and the
//! sandbox holding against hostile programs while the pool keeps serving.
//!
//! These tests create the pinned Python environment on first run (a minute or two, needs the
//! Python package index); later runs reuse it from the cache directory.

use std::path::Path;
use std::time::Duration;

use ibert_oracle::protocol::TableSchemas;
use ibert_oracle::{CompileRequest, FailureKind, PoolOptions, PythonEnv, WorkerOptions, WorkerPool};

fn env() -> PythonEnv {
    PythonEnv::ensure(&|_| {}).unwrap_or_else(|error| panic!("the Python environment for the oracle: {error}"))
}

fn pool(workers: usize, timeout_secs: u64) -> WorkerPool {
    let worker = WorkerOptions { timeout: Duration::from_secs(timeout_secs), cpu_seconds: timeout_secs + 2, ..WorkerOptions::default() };
    WorkerPool::start(env(), PoolOptions { workers, worker, recycle_after: None }).expect("pool starts")
}

fn events() -> TableSchemas {
    serde_json::from_value(serde_json::json!({"events": {"user_id": "int64", "amount": "float64", "name": "string"}})).unwrap()
}

fn request(code: &str) -> CompileRequest {
    CompileRequest { code: code.into(), tables: events(), dialect: "duckdb".into(), expr_name: None }
}

#[test]
fn compiles_with_real_ibis_and_reports_versions() {
    let pool = pool(1, 10);
    assert_eq!(pool.hello().ibis, "12.0.0");
    let compiled = pool.compile(&request("events.filter(events.amount > 10).select('user_id')")).unwrap().unwrap();
    assert!(compiled.sql.contains("\"t0\".\"amount\" > 10"), "{}", compiled.sql);
    assert_eq!(compiled.columns, Some(vec![("user_id".to_string(), "int64".to_string())]));
}

#[test]
fn a_worker_is_replaced_by_a_fresh_one_after_its_share_of_requests() {
    let options = PoolOptions { workers: 1, worker: WorkerOptions::default(), recycle_after: Some(2) };
    let pool = WorkerPool::start(env(), options).expect("pool starts");
    let first = pool.hello().pid;
    for n in 0..5 {
        let compiled = pool.compile(&request(&format!("events.filter(events.amount > {n})"))).unwrap().unwrap();
        assert!(compiled.sql.contains(&format!("> {n}")), "{}", compiled.sql);
    }
    assert_eq!(pool.stats().recycled, 2, "after requests 2 and 4");
    assert!(!Path::new(&format!("/proc/{first}")).exists(), "the first worker process is gone");
}

#[test]
fn result_is_expr_variable_or_last_expression() {
    let pool = pool(1, 10);
    let with_expr = pool.compile(&request("expr = events.select('name')\nother = events.select('amount')")).unwrap().unwrap();
    assert_eq!(with_expr.columns.unwrap()[0].0, "name");
    let last = pool.compile(&request("a = events.filter(_.amount > 1)\na.select('amount')")).unwrap().unwrap();
    assert_eq!(last.columns.unwrap()[0].0, "amount");
}

#[test]
fn unnamed_tables_compile_to_the_same_sql_whatever_the_worker_ran_before() {
    let pool = pool(1, 10);
    let program = request("t = ibis.table(dict(a='int64'))\nexpr = t.filter(t.a > 1)");
    let first = pool.compile(&program).unwrap().unwrap();
    pool.compile(&request("u = ibis.table(dict(b='string'))\nexpr = u")).unwrap().unwrap();
    let again = pool.compile(&program).unwrap().unwrap();
    assert_eq!(first.sql, again.sql);
    assert!(first.sql.contains("unbound_table_0"), "{}", first.sql);
}

#[test]
fn ibis_errors_carry_the_real_exception() {
    let pool = pool(1, 10);
    let failure = pool.compile(&request("events.filter(events.amout > 1)")).unwrap().unwrap_err();
    assert_eq!(failure.kind, FailureKind::Ibis);
    assert_eq!(failure.error_type, "AttributeError");
    assert!(failure.message.contains("amout"), "{}", failure.message);
    let failure = pool.compile(&request("events.name.sum()")).unwrap().unwrap_err();
    assert_eq!(failure.kind, FailureKind::Ibis);
    assert_eq!(failure.error_type, "AttributeError", "{failure}");
    let failure = pool.compile(&request("events.filter(")).unwrap().unwrap_err();
    assert_eq!(failure.kind, FailureKind::Syntax);
}

#[test]
fn compiles_to_every_dialect_ibis_offers() {
    let pool = pool(1, 30);
    let (dialects, unavailable) = pool.dialects().unwrap();
    assert!(unavailable.values().all(|reason| !reason.is_empty()), "{unavailable:?}");
    for expected in ["duckdb", "postgres", "mysql", "sqlite", "snowflake", "bigquery", "trino", "mssql"] {
        assert!(dialects.iter().any(|d| d == expected), "{expected} missing from {dialects:?}");
    }
    for dialect in &dialects {
        let mut req = request("events.filter(events.amount > 10).select('user_id')");
        req.dialect = dialect.clone();
        let outcome = pool.compile(&req).unwrap();
        assert!(outcome.is_ok(), "{dialect}: {outcome:?}");
    }
    let mut req = request("events");
    req.dialect = "no_such_dialect".into();
    let failure = pool.compile(&req).unwrap().unwrap_err();
    assert!(failure.message.contains("no_such_dialect"), "{failure}");
}

const PWNED: &str = "/tmp/ibert-hostile-test-marker";

/// Each hostile program and the failure kind it must end in.
const HOSTILE: &[(&str, &str, FailureKind)] = &[
    ("os.system", "import os\nos.system('touch /tmp/ibert-hostile-test-marker')", FailureKind::Sandbox),
    ("open a file", "open('/tmp/ibert-hostile-test-marker', 'w').write('x')", FailureKind::Sandbox),
    ("__import__", "__import__('os').system('touch /tmp/ibert-hostile-test-marker')", FailureKind::Sandbox),
    ("subclasses walk", "().__class__.__bases__[0].__subclasses__()", FailureKind::Sandbox),
    ("while True", "while True:\n    pass", FailureKind::Sandbox),
    ("10**10**10", "10**10**10", FailureKind::Sandbox),
    ("fork", "import os\nos.fork()", FailureKind::Sandbox),
    ("fork through an ibis module", "ibis.util.os.fork()", FailureKind::Sandbox),
    ("getattr trick", "getattr(ibis, '__loader__')", FailureKind::Sandbox),
    ("format-string attribute walk", "'{0.__class__}'.format(1)", FailureKind::Sandbox),
    ("exec", "exec('import os')", FailureKind::Sandbox),
    ("function definition", "def f():\n    return 1\nf()", FailureKind::Sandbox),
    ("a real backend writing a file", "ibis.duckdb.connect('/tmp/ibert-hostile-test-marker')", FailureKind::Sandbox),
    ("reading a file through ibis", "ibis.read_csv('/etc/passwd')", FailureKind::Sandbox),
    ("import_object from ibis.util", "ibis.util.import_object('builtins.eval')('1')", FailureKind::Sandbox),
    ("importing os through ibis.util", "from ibis.util import os\nos.getcwd()", FailureKind::Sandbox),
    ("aliasing the ibis module", "m = ibis\nm.util", FailureKind::Sandbox),
    ("a backend entry point", "ibis.duckdb", FailureKind::Sandbox),
    ("huge list", "[0] * (10 ** 12)", FailureKind::Resource),
    ("endless arithmetic", "sum(range(10 ** 18))", FailureKind::Timeout),
    ("exponent hidden in a variable", "x = 10 ** 500\nx ** x", FailureKind::Timeout),
    ("infinite recursion", "(lambda f: f(f))(lambda f: f(f))", FailureKind::Ibis),
];

#[test]
fn hostile_programs_are_rejected_or_contained_and_the_pool_keeps_serving() {
    let _ = std::fs::remove_file(PWNED);
    let pool = pool(2, 3);
    for (name, code, expected) in HOSTILE {
        let failure = pool.compile(&request(code)).unwrap().expect_err(name);
        assert_eq!(failure.kind, *expected, "{name}: {failure}");
        let healthy = pool.compile(&request("events.count()")).unwrap();
        assert!(healthy.is_ok(), "after {name}: {healthy:?}");
    }
    assert!(!Path::new(PWNED).exists(), "a hostile program wrote {PWNED}");
    let stats = pool.stats();
    assert!(stats.timeouts >= 2, "{stats:?}");
}

#[test]
fn a_worker_waiting_for_a_core_is_not_timed_out() {
    let pool = pool(1, 1);
    let pid = pool.hello().pid.to_string();
    let signal = move |name: &str| assert!(std::process::Command::new("kill").args([name, pid.as_str()]).status().unwrap().success());
    // Stopped for twice its time limit, as a worker starved by a busy machine: it uses no CPU
    // time meanwhile, so the request is answered once it runs again.
    signal("-STOP");
    let resume = std::thread::spawn({
        let signal = signal.clone();
        move || {
            std::thread::sleep(Duration::from_secs(2));
            signal("-CONT");
        }
    });
    let started = std::time::Instant::now();
    let answer = pool.compile(&request("events.count()")).unwrap();
    resume.join().unwrap();
    assert!(answer.is_ok(), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(pool.stats().timeouts, 0);
}

#[test]
fn a_killed_worker_is_replaced() {
    let pool = pool(1, 10);
    let pid = pool.hello().pid;
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let failure = pool.compile(&request("events.count()")).unwrap().unwrap_err();
    assert_eq!(failure.kind, FailureKind::Crashed, "{failure}");
    assert!(pool.compile(&request("events.count()")).unwrap().is_ok());
    assert_eq!(pool.stats().crashes, 1);
}

/// What slips past the allow-list meets the OS limits: run Python code directly under the
/// worker's seccomp filter and check that writes, process creation and sockets fail.
#[test]
fn seccomp_filter_blocks_writes_processes_sockets_and_the_ways_around_them_on_every_thread() {
    let env = env();
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/tests/seccomp_probe.py");
    let output = std::process::Command::new(env.python()).arg(&probe).arg(PWNED).env("PYTHONPATH", env.worker_dir()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let expected = "thread-write:blocked write:blocked fork:blocked socket:blocked mkdir:blocked io_uring_setup:blocked openat2:blocked mknodat:blocked x32-openat:blocked\nread ok";
    assert_eq!(stdout.trim(), expected);
    assert!(!Path::new(PWNED).exists());
}

#[test]
fn column_and_struct_field_names_may_shadow_denied_attribute_names() {
    let pool = pool(1, 10);
    let tables: TableSchemas = serde_json::from_value(serde_json::json!({
        "events": {"system": "string", "properties": "struct<os: string, browser: string>"}
    }))
    .unwrap();
    let request = CompileRequest {
        code: "events.select(os=events.properties.os, system=events.system)".into(),
        tables: tables.clone(),
        dialect: "duckdb".into(),
        expr_name: None,
    };
    assert!(pool.compile(&request).unwrap().is_ok());
    let hostile = CompileRequest { code: "ibis.util.sys".into(), ..request };
    assert_eq!(pool.compile(&hostile).unwrap().unwrap_err().kind, FailureKind::Sandbox);
}

#[test]
fn ibis_methods_named_like_denied_file_operations_are_allowed_and_backend_methods_are_not() {
    let pool = pool(1, 10);
    let tables: TableSchemas = serde_json::from_value(serde_json::json!({"events": {"user_id": "int64", "tags": "array<string>"}})).unwrap();
    let compile = |code: &str| pool.compile(&CompileRequest { code: code.into(), tables: tables.clone(), dialect: "duckdb".into(), expr_name: None }).unwrap();
    let renamed = compile("expr = events.rename(uid='user_id').select('uid', t=_.tags.remove('x'))").unwrap();
    assert!(renamed.sql.contains("\"uid\""), "{}", renamed.sql);
    for backend in ["events.execute()", "events.to_parquet('/tmp/ibert-hostile-test-marker')", "events.to_pyarrow()", "events.compile()"] {
        assert_eq!(compile(backend).unwrap_err().kind, FailureKind::Sandbox, "{backend}");
    }
    // Still refused where no Ibis expression has the word.
    assert_eq!(compile("'{0}'.format(events)").unwrap_err().kind, FailureKind::Sandbox);
}

#[test]
fn builtin_udf_definitions_are_the_one_def_allowed() {
    let pool = pool(1, 10);
    let udf = "@ibis.udf.scalar.builtin\ndef levenshtein(a: str, b: str) -> int:\n    ...\n\nexpr = events.select(d=levenshtein(events.name, 'x'))";
    let compiled = pool.compile(&request(udf)).unwrap().unwrap();
    assert!(compiled.sql.contains("LEVENSHTEIN("), "{}", compiled.sql);
    let with_body = "@ibis.udf.scalar.builtin\ndef f(a: str) -> int:\n    return len(a)\n\nevents";
    assert_eq!(pool.compile(&request(with_body)).unwrap().unwrap_err().kind, FailureKind::Sandbox);
    let python_udf = "@ibis.udf.scalar.python\ndef f(a: str) -> int:\n    ...\n\nevents";
    assert_eq!(pool.compile(&request(python_udf)).unwrap().unwrap_err().kind, FailureKind::Sandbox);
}

#[test]
fn check_runs_only_the_allow_list() {
    let pool = pool(1, 10);
    // Accepted without running: the missing column would fail only when executed.
    assert_eq!(pool.check("events.filter(events.no_such_column > 1)", &events()).unwrap(), Ok(()));
    let failure = pool.check("import subprocess", &events()).unwrap().unwrap_err();
    assert_eq!(failure.kind, FailureKind::Sandbox);
    assert!(failure.message.contains("subprocess"), "{failure}");
}

#[test]
fn execute_runs_the_expression_through_ibis_on_each_dataset_and_reports_its_failures() {
    use base64::Engine as _;
    use ibert_oracle::protocol::{Dataset, ExecuteRequest};
    let pool = pool(1, 10);
    let setup = |rows: &str| Some(format!("CREATE TABLE events (user_id BIGINT, amount DOUBLE, name VARCHAR); INSERT INTO events VALUES {rows};"));
    let first = Dataset { key: "one".into(), setup_sql: setup("(1, 2.5, 'a'), (2, 4.0, 'b')"), schema: None };
    let second = Dataset { key: "two".into(), setup_sql: setup("(7, 1.0, 'c')"), schema: None };
    let request = ExecuteRequest { code: "expr = events.amount.sum()".into(), tables: events(), expr_name: None, datasets: vec![first.clone(), second] };
    let executed = pool.execute(&request).unwrap().expect("executes");
    assert_eq!(executed.results.len(), 2);
    assert_eq!(executed.columns.len(), 1);
    assert_eq!(executed.columns[0].1, "float64");
    let sizes: Vec<usize> = executed.results.iter().map(|r| base64::engine::general_purpose::STANDARD.decode(r).unwrap().len()).collect();
    assert!(sizes.iter().all(|&n| n > 100), "Arrow IPC streams: {sizes:?}");

    // A dataset the worker has loaded is named by its key alone.
    let again = ExecuteRequest { datasets: vec![Dataset { key: "one".into(), setup_sql: None, schema: None }], ..request.clone() };
    assert!(pool.execute(&again).unwrap().is_ok());

    // A cast Ibis cannot make on the real result fails as it would for a user.
    let tables: TableSchemas = serde_json::from_value(serde_json::json!({"items": {"price": "decimal(10, 3)"}})).unwrap();
    let items =
        Dataset { key: "items".into(), setup_sql: Some("CREATE TABLE items (price DECIMAL(10, 3)); INSERT INTO items VALUES (1.235);".into()), schema: None };
    let failing = ExecuteRequest { code: "expr = items.select(x=items.price * 1.5)".into(), tables, expr_name: None, datasets: vec![items] };
    let failure = pool.execute(&failing).unwrap().expect_err("to_pyarrow fails");
    assert_eq!(failure.kind, FailureKind::Execute);
    assert_eq!(failure.error_type, "ArrowInvalid");

    // The program's SQL cannot read files: external access is off in the worker's database.
    let reader = ExecuteRequest {
        code: "@ibis.udf.scalar.builtin\ndef read_text(x: str) -> str: ...\nexpr = events.select(x=read_text('/etc/hostname'))".into(),
        datasets: vec![first],
        ..request
    };
    assert!(pool.execute(&reader).unwrap().is_err());
}
