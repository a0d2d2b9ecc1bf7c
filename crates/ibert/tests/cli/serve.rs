//! `ibert serve` as a client meets it: the real binary on a loopback port, with the real Ibis
//! workers (and SmolLM2 where a model is needed), its answers, its refusals of bad input and
//! unauthenticated requests, its metrics, the explorer's API and page (in a real headless
//! Chromium), and the official `openai` Python client, streaming included.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{ibert, run_with_stdin, stderr, stdout};

/// A running `ibert serve`, stopped (SIGKILL) when dropped unless [`Server::stop`] ran.
struct Server {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `ibert serve --port 0 ARGS` and waits until /health says it is ready.
    fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = ibert()
            .args(["serve", "--port", "0", "--jobs", "1"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ibert serve starts");
        let (lines, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut seen = Vec::new();
        let base = loop {
            let line = log.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("no `listening on` line; stderr so far: {seen:#?}"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            seen.push(line);
        };
        let server = Server { child, base, log };
        let started = Instant::now();
        while server.get("/health").0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(300), "not ready after 300 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get(&self, path: &str) -> (u16, String) {
        send(agent().get(&self.url(path)).call())
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = send(agent().post(&self.url(path)).header("content-type", "application/json").send(body.to_string()));
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
    }

    /// SIGTERM, then the exit status and everything it printed.
    fn stop(mut self) -> (bool, String) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exited = self.child.wait().unwrap();
        let log: Vec<String> = self.log.try_iter().collect();
        (exited.success(), log.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(300))).build().into()
}

fn send(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut response = response.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap_or_default())
}

/// A small dataset as `data all` lays it out: two tasks over two splits, and a reject.
fn write_dataset(dir: &Path) -> PathBuf {
    let root = dir.join("dataset");
    std::fs::create_dir_all(root.join("splits")).unwrap();
    std::fs::create_dir_all(root.join("sql2ibis")).unwrap();
    let record = |id: &str, task: &str, input: Value, target: Value, split: &str| {
        json!({"id": id, "task": task, "input": input, "target": target,
               "meta": {"source": "template", "features": ["filter"], "difficulty": "easy", "split": split},
               "verification": {"level": "executed", "ibis_version": "12.0.0", "duckdb_version": "1", "fixture_seeds": [1, 2, 3]}})
        .to_string()
    };
    let train = [
        record(
            "orders.big",
            "sql_to_ibis",
            json!({"sql": "SELECT * FROM orders WHERE amount > 100"}),
            json!({"ibis": "expr = orders.filter(_.amount > 100)"}),
            "train",
        ),
        record("orders.count.qa", "qa", json!({"question": "How do I count the orders?"}), json!({"answer": "orders.count()"}), "train"),
    ];
    let test =
        [record("customers.all", "sql_to_ibis", json!({"sql": "SELECT name FROM customers"}), json!({"ibis": "expr = customers.select('name')"}), "test")];
    std::fs::write(root.join("splits/train.jsonl"), train.join("\n") + "\n").unwrap();
    std::fs::write(root.join("splits/test.jsonl"), test.join("\n") + "\n").unwrap();
    let reject = json!({"id": "orders.broken", "reason": "ibis_error", "detail": "AttributeError: 'Table' object has no attribute 'fliter'"});
    std::fs::write(root.join("sql2ibis/rejects.jsonl"), format!("{reject}\n")).unwrap();
    root
}

#[test]
fn without_a_model_serve_answers_the_deterministic_tasks_refuses_bad_input_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_dataset(dir.path());
    std::fs::write(dir.path().join("key"), "s3cret-token\n").unwrap();
    let server = Server::start(dir.path(), &["--no-model", "--data", data.to_str().unwrap(), "--api-key-file", "key", "--max-body-bytes", "4096"]);
    let authorized = |path: &str, body: &Value, token: Option<&str>| {
        let mut request = agent().post(&server.url(path)).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let (status, text) = send(request.send(body.to_string()));
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
    };
    let tables = json!({"orders": {"id": "int64", "amount": "float64", "status": "string"}});
    let to_sql = json!({"code": "expr = orders.filter(orders.amount > 100).select('id')", "tables": tables});

    // The bearer token: none or a wrong one is refused; /health needs none.
    assert_eq!(authorized("/v1/tasks/to-sql", &to_sql, None).0, 401);
    assert_eq!(authorized("/v1/tasks/to-sql", &to_sql, Some("wrong")).0, 401);
    let (status, answer) = authorized("/v1/tasks/to-sql", &to_sql, Some("s3cret-token"));
    assert_eq!(status, 200, "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains("WHERE"), "{answer}");
    assert_eq!((answer["verified"].as_bool(), answer["origin"].as_str()), (Some(true), Some("ibis")), "{answer}");
    let health: Value = serde_json::from_str(&server.get("/health").1).unwrap();
    assert_eq!((health["status"].as_str(), health["ibis"].as_str()), (Some("ok"), Some("12.0.0")), "{health}");

    let call = |path: &str, body: Value| authorized(path, &body, Some("s3cret-token"));
    // SQL -> Ibis by the transpiler, verified by execution.
    let (status, answer) = call("/v1/tasks/from-sql", json!({"sql": "SELECT status, COUNT(*) AS n FROM orders GROUP BY status", "tables": tables}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["verified"].as_bool(), answer["origin"].as_str()), (Some(true), Some("transpiler")), "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains("group_by"), "{answer}");
    assert_eq!(answer["evidence"]["fixture_databases"], 3, "{answer}");

    // What cannot be worked on is a 4xx with the reason, and the server stays up.
    let (status, answer) = call("/v1/tasks/from-sql", json!({"sql": "SELEC nothing", "tables": tables}));
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = call("/v1/tasks/to-sql", json!({"code": "import os\nexpr = os.environ", "tables": tables}));
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("does not compile"), "{answer}");
    // Hostile SQL and programs: refused, and nothing reaches the file system.
    let marker = dir.path().join("pwned");
    let target = marker.display().to_string();
    let hostile_sql = [
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT id, (SELECT content FROM read_text('/etc/hostname')) AS c FROM orders".to_string(),
        format!("ATTACH '{target}' AS x"),
        format!("COPY orders TO '{target}'"),
        "SELECT id FROM orders; DROP TABLE orders".to_string(),
        "SELECT getenv('HOME') AS home FROM orders".to_string(),
        "INSTALL httpfs".to_string(),
    ];
    for sql in &hostile_sql {
        let (status, answer) = call("/v1/tasks/from-sql", json!({"sql": sql, "tables": tables}));
        assert_eq!(status, 422, "{sql}: {answer}");
    }
    let hostile_programs = [
        format!("expr = orders.sql(\"COPY orders TO '{target}'\")"),
        "import os\nexpr = os.environ".to_string(),
        format!("expr = open('{target}', 'w')"),
        format!("expr = orders.to_parquet('{target}')"),
        "expr = ().__class__.__bases__[0].__subclasses__()".to_string(),
    ];
    for code in &hostile_programs {
        let (status, answer) = call("/v1/tasks/to-sql", json!({"code": code, "tables": tables}));
        assert_eq!(status, 422, "{code}: {answer}");
    }
    assert!(!marker.exists(), "a hostile input wrote {}", marker.display());
    // Ibis's own `rename`, which the allow-list once refused as the file operation, compiles.
    let (status, answer) = call("/v1/tasks/to-sql", json!({"code": "expr = orders.rename(total='amount')", "tables": tables}));
    assert_eq!(status, 200, "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains(r#"AS "total""#), "{answer}");
    let (status, answer) = call("/v1/tasks/to-sql", json!({"code": 5}));
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("expected a string"), "{answer}");
    let (status, answer) = call("/v1/tasks/to-sql", json!({"code": "expr = orders", "tabels": {}}));
    assert_eq!(status, 422, "a misspelt field is named: {answer}");
    let raw = |body: Vec<u8>, content_type: &str| {
        let request = agent().post(&server.url("/v1/tasks/to-sql")).header("authorization", "Bearer s3cret-token").header("content-type", content_type);
        send(request.send(&body[..]))
    };
    assert_eq!(raw(b"{\"code\": ".to_vec(), "application/json").0, 400);
    assert_eq!(raw((0..=255u8).cycle().take(2000).collect(), "application/json").0, 400);
    assert_eq!(raw(b"code=1".to_vec(), "application/x-www-form-urlencoded").0, 415);
    let huge = json!({"code": "x".repeat(10_000)}).to_string().into_bytes();
    let (status, body) = raw(huge, "application/json");
    assert_eq!(status, 413, "{body}");
    // The model's endpoints say there is none.
    let (status, answer) = call("/v1/chat/completions", json!({"messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(status, 501, "{answer}");
    assert_eq!(server.get("/no/such/page").0, 404);

    // The explorer is behind the token too: its page offers the sign-in form, its API says
    // where to sign in, and signing in sets a cookie (not the token itself) that opens both.
    let (status, page) = server.get("/");
    assert_eq!(status, 401);
    assert!(page.contains(r#"<form method="post" action="/login">"#), "{page}");
    assert_eq!(server.get("/api/summary").0, 401);
    let sign_in = |key: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let response = agent.post(&server.url("/login")).header("content-type", "application/x-www-form-urlencoded").send(format!("key={key}")).unwrap();
        let cookie = response.headers().get("set-cookie").map(|value| value.to_str().unwrap().to_string());
        (response.status().as_u16(), cookie)
    };
    assert_eq!(sign_in("wrong"), (401, None));
    let (status, cookie) = sign_in("s3cret-token");
    assert_eq!(status, 303);
    let cookie = cookie.expect("signing in sets a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("s3cret-token"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let explorer_get = |path: &str| send(agent().get(&server.url(path)).header("cookie", &session).call());
    let (status, page) = explorer_get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<html") && !page.contains("action=\"/login\""), "the explorer itself, not the form");
    assert_eq!(send(agent().get(&server.url("/api/summary")).header("authorization", "Bearer s3cret-token").call()).0, 200);

    // The explorer's API pages and filters on the server.
    let (status, page) = explorer_get("/api/records?task=sql_to_ibis&limit=1");
    assert_eq!(status, 200);
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!((page["total"].as_u64(), page["items"].as_array().unwrap().len()), (Some(2), 1), "{page}");
    let page: Value = serde_json::from_str(&explorer_get("/api/records?q=COUNT%20the").1).unwrap();
    assert_eq!(page["items"][0]["id"], "orders.count.qa", "{page}");
    let record: Value = serde_json::from_str(&explorer_get("/api/records/2").1).unwrap();
    assert_eq!((record["id"].as_str(), record["split"].as_str()), (Some("customers.all"), Some("test")), "{record}");
    assert_eq!(explorer_get("/api/records/3").0, 404);
    assert_eq!(explorer_get("/api/records?limit=many").0, 400);
    let rejects: Value = serde_json::from_str(&explorer_get("/api/rejects?reason=ibis_error").1).unwrap();
    assert_eq!(rejects["items"][0]["file"], "sql2ibis/rejects.jsonl", "{rejects}");

    // Metrics need the token too, and count what was answered.
    assert_eq!(server.get("/metrics").0, 401);
    let (_, metrics) = send(agent().get(&server.url("/metrics")).header("authorization", "Bearer s3cret-token").call());
    assert!(metrics.contains(r#"ibert_http_requests_total{route="/v1/tasks/from-sql",status="200"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"ibert_http_requests_total{route="/v1/tasks/from-sql",status="422"} 8"#), "{metrics}");
    assert!(metrics.contains(r#"ibert_http_requests_total{route="/v1/tasks/to-sql",status="401"} 2"#), "{metrics}");

    let (stopped, log) = server.stop();
    assert!(stopped, "{log}");
    assert!(log.contains("ibert serve: stopped"), "{log}");
}

/// A venv with the `openai` package pinned in python/tests/requirements-openai.txt, created on
/// first use.
fn openai_python() -> PathBuf {
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/tests/requirements-openai.txt");
    ibert_oracle::ensure_requirements_venv("test-openai", &requirements).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn the_openai_python_client_gets_the_same_greedy_answer_streamed_and_whole_and_a_full_queue_answers_503() {
    let python = openai_python();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--queue", "1", "--no-examples"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/tests/openai_client.py");
    let output = Command::new(&python).arg(&script).arg(format!("{}/v1", server.base)).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)));
    assert!(report["models"][0].as_str().unwrap().starts_with("smollm2-135m"), "{report}");
    let whole = report["chat"].as_str().unwrap();
    assert!(!whole.trim().is_empty(), "{report}");
    assert_eq!(report["streamed"].as_str().unwrap(), whole, "greedy decoding streams the same text: {report}");
    assert!(report["chunks"].as_u64().unwrap() > 1, "{report}");
    assert_eq!(report["finish_reason"], "length", "{report}");
    assert_eq!(report["completion_tokens"], 12, "{report}");
    assert!(!report["completion"].as_str().unwrap().is_empty(), "{report}");
    assert_eq!(report["bad_request_status"], 400, "{report}");

    // One running, one waiting: of several at once, some are refused with Retry-After.
    let body = json!({"messages": [{"role": "user", "content": "Write a long story about tables."}], "max_tokens": 200});
    let url = server.url("/v1/chat/completions");
    let replies: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                scope.spawn(|| {
                    let mut response = agent().post(&url).header("content-type", "application/json").send(body.to_string()).unwrap();
                    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let status = response.status().as_u16();
                    let answer: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
                    if status == 200 {
                        // The engine's own times come with the answer, as llama.cpp's server gives them.
                        assert!(answer["timings"]["prompt_n"].as_u64().unwrap() > 0 && answer["timings"]["prompt_ms"].as_f64().unwrap() > 0.0, "{answer}");
                    }
                    (status, retry)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    assert!(replies.iter().any(|(status, _)| *status == 200), "{replies:?}");
    assert!(replies.iter().any(|(status, retry)| *status == 503 && retry.is_some()), "{replies:?}");
    assert!(replies.iter().all(|(status, _)| matches!(status, 200 | 503)), "{replies:?}");

    // `model.provider: openai` points the task commands at this server: the same greedy answer
    // as the local model gives.
    let question = "How do I keep the rows of table t where a is positive?";
    let local = run_with_stdin(ibert(), dir.path(), &["qa", "--attempts", "1", "--max-tokens", "40"], question);
    let remote_dir = dir.path().join("remote");
    std::fs::create_dir_all(&remote_dir).unwrap();
    std::fs::write(remote_dir.join("config.yaml"), format!("model:\n  provider: openai\n  base_url: {}/v1\n", server.base)).unwrap();
    let remote = run_with_stdin(ibert(), &remote_dir, &["qa", "--attempts", "1", "--max-tokens", "40"], question);
    assert!(local.status.success() && remote.status.success(), "{}\n{}", stderr(&local), stderr(&remote));
    assert!(stderr(&remote).contains("(OpenAI-compatible API)"), "{}", stderr(&remote));
    assert!(!stdout(&local).trim().is_empty());
    assert_eq!(stdout(&remote), stdout(&local), "{}", stderr(&remote));
    std::fs::write(remote_dir.join("config.yaml"), "model:\n  provider: openai\n").unwrap();
    let unset = run_with_stdin(ibert(), &remote_dir, &["qa"], question);
    assert_eq!(unset.status.code(), Some(1));
    assert!(stderr(&unset).contains("needs model.base_url"), "{}", stderr(&unset));

    // A checked task through the model: an answer and what its check found.
    let (status, answer) = server.post("/v1/tasks/qa", &json!({"question": "How do I count the rows of a table t?", "attempts": 1, "max_tokens": 60}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["origin"], "model", "{answer}");
    assert!(answer["timings"]["predicted_n"].as_u64().unwrap() > 0, "{answer}");
    assert!(!answer["verification"].as_str().unwrap().is_empty(), "{answer}");
}

/// The value of one sample in a Prometheus text exposition, if it is there.
fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_passed_deadline_and_a_client_that_leaves_stop_their_generation_and_are_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--deadline", "2", "--no-examples"]);
    // SmolLM2 counts on from here for far more than the deadline's 2 s of tokens.
    let counting = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,";
    let (status, answer) = server.post("/v1/completions", &json!({"prompt": counting, "max_tokens": 2000}));
    assert_eq!(status, 504, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("deadline of 2 s"), "{answer}");

    // A stream whose client reads one chunk and hangs up.
    let body = json!({"prompt": counting, "max_tokens": 2000, "stream": true}).to_string();
    let mut response = agent().post(&server.url("/v1/completions")).header("content-type", "application/json").send(&body).unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut reader = BufReader::new(response.body_mut().as_reader());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("data: {"), "{first}");
    drop(reader);
    drop(response);

    // The one model thread runs requests in order, so once this short one is answered both
    // earlier ones have ended, and the metrics say why each was cut short.
    let (status, answer) = server.post("/v1/completions", &json!({"prompt": "1, 2,", "max_tokens": 1}));
    assert_eq!(status, 200, "{answer}");
    let (_, metrics) = server.get("/metrics");
    assert_eq!(metric(&metrics, r#"ibert_generations_cancelled_total{reason="deadline"}"#), Some(1.0), "{metrics}");
    assert_eq!(
        metric(&metrics, r#"ibert_generations_cancelled_total{reason="client_gone"}"#),
        Some(1.0),
        "the stream stopped when its client left, before its deadline: {metrics}"
    );
    // The tokens of both cut-short answers are counted, and neither ran to its 2000.
    let generated = metric(&metrics, "ibert_generated_tokens_total").unwrap();
    assert!(generated > 2.0 && generated < 4000.0, "{metrics}");
}

/// `chromium` from Debian's packages (`.ci/run` installs it).
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(output) = Command::new("which").arg(name).output()
            && output.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        }
    }
    panic!("the explorer test runs in headless Chromium: install Debian's `chromium` (apt-get install chromium), as scripts/test does");
}

/// The page at `url` after its script ran, and a screenshot of it.
fn render(browser: &Path, profile: &Path, url: &str, screenshot: &Path) -> String {
    let common = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--window-size=1280,900"];
    let profile = format!("--user-data-dir={}", profile.display());
    let dom = Command::new(browser).args(common).arg(&profile).arg("--dump-dom").arg(url).output().unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let shot = Command::new(browser).args(common).arg(&profile).arg(format!("--screenshot={}", screenshot.display())).arg(url).output().unwrap();
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn the_explorer_renders_records_in_headless_chromium_and_a_filter_changes_them() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let data = write_dataset(dir.path());
    let server = Server::start(dir.path(), &["--no-model", "--data", data.to_str().unwrap()]);
    let (all_png, qa_png) = (dir.path().join("all.png"), dir.path().join("qa.png"));
    let all = render(&browser, &dir.path().join("profile"), &server.url("/"), &all_png);
    assert!(all.contains(r#"data-ready="true""#), "the page's script finished: {all}");
    for id in ["orders.big", "orders.count.qa", "customers.all"] {
        assert!(all.contains(&format!("<td>{id}</td>")), "{id} is listed: {all}");
    }
    assert!(all.contains("1-3 of 3 records"), "{all}");
    let qa = render(&browser, &dir.path().join("profile"), &server.url("/?task=qa"), &qa_png);
    assert!(qa.contains("<td>orders.count.qa</td>") && !qa.contains("<td>orders.big</td>"), "{qa}");
    assert!(qa.contains("1-1 of 1 records"), "{qa}");
    let (all_png, qa_png) = (std::fs::read(&all_png).unwrap(), std::fs::read(&qa_png).unwrap());
    assert!(all_png.starts_with(b"\x89PNG") && all_png.len() > 10_000, "a real screenshot ({} bytes)", all_png.len());
    assert_ne!(all_png, qa_png, "the filter changes what is drawn");
}
