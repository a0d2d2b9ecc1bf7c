//! The dataset commands after `generate`, end to end with real Ibis and DuckDB: multi-task
//! derivation (its errors re-checked independently with `ibert to-sql`), augmentation, mining
//! (bad files and hostile code included), concatenation, statistics, and `data all` (run twice,
//! once killed and resumed, with byte-identical outputs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use crate::common::{ibert_with_stdin, stderr, stdout};
use serde_json::Value;

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ibert(dir: &Path, args: &[&str]) -> String {
    let output = ibert_with_stdin(dir, args, "");
    assert!(output.status.success(), "ibert {args:?} failed:\n{}\n{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// A few templates verified into `dir/data/sql2ibis/train.jsonl`.
fn generated(dir: &Path) {
    ibert(dir, &["data", "generate", "--template", "boolean_complex_filter,join_inner_customer_orders,group_by_status_totals", "-j", "2"]);
}

#[test]
fn multitask_derives_every_task_and_its_errors_are_what_real_ibis_raises() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path());
    let out = ibert(dir.path(), &["data", "multitask", "--dialect", "duckdb,postgres", "-j", "2"]);
    assert!(out.contains("distinct real error types"), "{out}");
    let derived = records(&dir.path().join("data/multitask/train.jsonl"));
    let tasks: BTreeSet<&str> = derived.iter().map(|r| r["task"].as_str().unwrap()).collect();
    assert_eq!(tasks, BTreeSet::from(["code_completion", "documentation", "error_resolution", "ibis_to_sql", "qa"]));
    assert!(derived.iter().all(|r| r["meta"]["derived_from"].is_string() && r["verification"]["level"].is_string()));

    // Independently of the derivation: each broken program fails with the recorded error, and
    // its fix compiles.
    let errors: Vec<&Value> = derived.iter().filter(|r| r["task"] == "error_resolution").collect();
    assert!(errors.len() >= 10, "{} error examples", errors.len());
    for record in errors.iter().step_by(errors.len() / 6) {
        let schema = serde_json::to_string(
            &record["context"]["tables"].as_object().unwrap().iter().map(|(t, v)| (t.clone(), v["schema"].clone())).collect::<BTreeMap<_, _>>(),
        )
        .unwrap();
        let broken = ibert_with_stdin(dir.path(), &["to-sql", "--no-model", "--schema", &schema], record["input"]["broken_code"].as_str().unwrap());
        let recorded = record["input"]["error"].as_str().unwrap();
        let error_type = recorded.split(':').next().unwrap();
        assert!(!broken.status.success() && stderr(&broken).contains(error_type), "{} should fail with {recorded}: {}", record["id"], stderr(&broken));
        let fixed = ibert_with_stdin(dir.path(), &["to-sql", "--schema", &schema], record["target"]["fixed_code"].as_str().unwrap());
        assert!(fixed.status.success(), "{}: the fix compiles: {}", record["id"], stderr(&fixed));
    }
    // The ibis_to_sql targets are exactly what real Ibis prints for that dialect.
    let postgres = derived.iter().find(|r| r["task"] == "ibis_to_sql" && r["input"]["dialect"] == "postgres").unwrap();
    let schema = serde_json::to_string(
        &postgres["context"]["tables"].as_object().unwrap().iter().map(|(t, v)| (t.clone(), v["schema"].clone())).collect::<BTreeMap<_, _>>(),
    )
    .unwrap();
    let compiled = ibert_with_stdin(dir.path(), &["to-sql", "--dialect", "postgres", "--schema", &schema], postgres["input"]["ibis"].as_str().unwrap());
    assert_eq!(stdout(&compiled).trim(), postgres["target"]["sql"].as_str().unwrap().trim());
    // Documentation parameters are the function's parameters.
    let doc = derived.iter().find(|r| r["task"] == "documentation" && r["input"]["style"] == "numpy").unwrap();
    let code = doc["input"]["code"].as_str().unwrap();
    let params = code[code.find('(').unwrap() + 1..code.find(')').unwrap()].split(", ").collect::<Vec<_>>();
    for param in params {
        assert!(doc["target"]["docstring"].as_str().unwrap().contains(&format!("{param} : ibis.Table")), "{doc}");
    }
}

#[test]
fn augmentation_keeps_only_what_verifies_and_says_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path());
    let out = ibert(dir.path(), &["data", "augment", "-j", "2"]);
    assert!(out.contains("verified"), "{out}");
    let augmented = records(&dir.path().join("data/sql2ibis/train_augmented.jsonl"));
    let originals: BTreeSet<String> = records(&dir.path().join("data/sql2ibis/train.jsonl")).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert!(augmented.len() >= originals.len(), "{} augmented from {}", augmented.len(), originals.len());
    for record in &augmented {
        assert_eq!(record["meta"]["source"], "augmented");
        assert!(originals.contains(record["meta"]["derived_from"].as_str().unwrap()));
        assert_eq!(record["verification"]["level"], "executed");
    }
    let kinds: BTreeSet<&str> =
        augmented.iter().filter_map(|r| r["meta"]["features"].as_array().unwrap().iter().find_map(|f| f.as_str().unwrap().strip_prefix("augment:"))).collect();
    assert!(kinds.len() >= 5, "{kinds:?}");
}

#[test]
fn mining_skips_bad_files_with_reasons_and_never_runs_hostile_code() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("docs")).unwrap();
    let marker = dir.path().join("pwned");
    std::fs::write(
        repo.join("docs/guide.md"),
        "# Guide\n\n```sql\nSELECT a FROM t\n```\n\n```python\nimport ibis\nt = ibis.table({\"a\": \"int64\", \"b\": \"string\"}, name=\"t\")\nexpr = t.select(\"a\")\n```\n",
    )
    .unwrap();
    std::fs::write(repo.join("docs/broken.ipynb"), "{\"cells\": [").unwrap();
    std::fs::write(repo.join("docs/blob.py"), b"x = 1\0\x01").unwrap();
    std::fs::write(repo.join("docs/latin.md"), b"caf\xe9").unwrap();
    std::fs::write(repo.join("docs/bad.py"), "def broken(:\n").unwrap();
    std::fs::write(
        repo.join("tool.py"),
        format!(
            "def run(t):\n    \"\"\"Run it.\n\n    Args:\n        t: the table.\n\n    Examples:\n        >>> import os\n        >>> os.system(\"touch {}\")\n    \"\"\"\n    return t\n\nos.system(\"touch {}\")\n",
            marker.display(),
            marker.display()
        ),
    )
    .unwrap();
    let out = ibert(dir.path(), &["data", "mine", repo.to_str().unwrap(), "-o", "mined.jsonl", "-j", "1"]);
    for reason in ["notebook: broken", "python: binary", "markdown: not UTF-8", "python: SyntaxError"] {
        assert!(out.contains(reason), "{reason} is counted: {out}");
    }
    assert!(!marker.exists(), "mined code never runs outside the sandbox");
    let mined = records(&dir.path().join("mined.jsonl"));
    let by_task: BTreeMap<&str, &Value> = mined.iter().map(|r| (r["task"].as_str().unwrap(), r)).collect();
    assert_eq!(by_task["documentation"]["target"]["docstring"].as_str().unwrap().lines().next(), Some("Run it."));
    assert_eq!(by_task["documentation"]["meta"]["provenance"]["path"], "tool.py");
    let pair = by_task["sql_to_ibis"];
    assert_eq!((pair["input"]["sql"].as_str(), pair["verification"]["level"].as_str()), (Some("SELECT a FROM t"), Some("parsed")));
    assert_eq!(pair["meta"]["provenance"]["line"], 4);
    assert!(by_task["ibis_to_sql"]["target"]["sql"].as_str().unwrap().contains("\"a\""));

    let missing = ibert_with_stdin(dir.path(), &["data", "mine", "no/such/dir"], "");
    assert!(!missing.status.success() && stderr(&missing).contains("no/such/dir does not exist"), "{}", stderr(&missing));
}

/// A pinned package from the real package index (PyPI; fetched once into the cache).
#[test]
fn mine_pypi_fetches_a_pinned_package_and_its_examples_name_package_version_and_license() {
    let dir = tempfile::tempdir().unwrap();
    let out = ibert(dir.path(), &["data", "mine", "--pypi", "ibis_ml==0.1.4", "-o", "mined.jsonl", "-j", "1"]);
    assert!(out.contains("examples per source (level)") && out.contains("pypi:ibis-ml==0.1.4 (parsed)"), "{out}");
    let mined = records(&dir.path().join("mined.jsonl"));
    assert!(mined.len() >= 10, "{out}");
    for record in &mined {
        let provenance = &record["meta"]["provenance"];
        assert_eq!((provenance["source"].as_str(), provenance["license"].as_str()), (Some("pypi:ibis-ml==0.1.4"), Some("Apache-2.0")), "{record}");
        assert!(provenance["path"].as_str().unwrap().starts_with("ibis_ml-0.1.4/"), "{record}");
    }
    assert!(mined.iter().any(|record| record["target"]["docstring"].as_str().is_some_and(|doc| doc.contains("Parameters"))));

    for (spec, says) in [("pandas", "is not on iBERT's list of pinned packages"), ("ibis-ml==9", "pinned at version 0.1.4, not 9")] {
        let refused = ibert_with_stdin(dir.path(), &["data", "mine", "--pypi", spec], "");
        assert!(!refused.status.success() && stderr(&refused).contains(says), "{spec}: {}", stderr(&refused));
    }
}

#[test]
fn concat_removes_duplicates_and_stats_counts_by_task_and_level() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path());
    let train = dir.path().join("data/sql2ibis/train.jsonl");
    let count = records(&train).len();
    let out = ibert(dir.path(), &["data", "concat", "data/sql2ibis/train.jsonl", "data/sql2ibis/train.jsonl", "-o", "all.jsonl"]);
    assert!(out.contains(&format!("removed {count} exact and 0 near duplicates")), "{out}");
    assert_eq!(records(&dir.path().join("all.jsonl")).len(), count);
    let out = ibert(dir.path(), &["data", "stats", "all.jsonl", "--json", "stats.json"]);
    assert!(out.contains(&format!("{count} records")), "{out}");
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["by_task_and_level"]["sql_to_ibis"]["executed"], count);

    std::fs::write(dir.path().join("bad.jsonl"), "{\"id\": 1}\n").unwrap();
    let bad = ibert_with_stdin(dir.path(), &["data", "concat", "bad.jsonl", "-o", "out.jsonl"], "");
    assert!(!bad.status.success() && stderr(&bad).contains("bad.jsonl:1"), "{}", stderr(&bad));
    assert!(!dir.path().join("out.jsonl").exists(), "nothing half-written");
}

#[test]
fn data_all_runs_the_whole_pipeline_and_summarizes_it() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../corpus/sql");
    let args = ["data", "all", "--corpus", corpus.to_str().unwrap(), "--dialect", "duckdb,postgres", "--synth-count", "60", "-j", "2"];
    let out = ibert(dir.path(), &args);
    for stage in ["templates", "transpiled corpus", "augmentation", "mining", "multi-task", "synthesis", "concatenation", "total time"] {
        assert!(out.contains(stage), "{stage}: {out}");
    }
    // Every query of the SQL corpus translates and verifies by execution.
    let corpus_line = out.lines().find(|l| l.trim_start().starts_with("transpiled corpus")).unwrap();
    assert!(corpus_line.contains(" verified, 0 rejected, 0 refused"), "{corpus_line}");
    let templates_line = out.lines().find(|l| l.trim_start().starts_with("templates ")).unwrap();
    assert!(templates_line.contains(" verified, 0 rejected"), "{templates_line}");
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/stats.json")).unwrap()).unwrap();
    for task in ["sql_to_ibis", "ibis_to_sql", "code_completion", "error_resolution", "qa", "documentation"] {
        assert!(stats["by_task"][task].as_u64().unwrap_or(0) > 0, "{task}: {stats}");
    }
    for source in ["template", "transpiler", "synth", "augmented", "mined"] {
        assert!(stats["by_source"][source].as_u64().unwrap_or(0) > 0, "{source}: {stats}");
    }
    assert_eq!(records(&dir.path().join("data/train_complete.jsonl")).len() as u64, stats["total"].as_u64().unwrap());

    // Every record carries its prompt and a split; no structure of the test split is in train.
    let read = |split: &str| -> Vec<ibert_records::Example> { ibert_records::read_jsonl(&dir.path().join(format!("data/splits/{split}.jsonl"))).unwrap() };
    let (train, validation, test) = (read("train"), read("validation"), read("test"));
    assert_eq!((train.len() + validation.len() + test.len()) as u64, stats["total"].as_u64().unwrap());
    assert!(!test.is_empty() && !validation.is_empty() && train.len() > test.len(), "{} / {} / {}", train.len(), validation.len(), test.len());
    let train_keys: std::collections::HashSet<String> = train.iter().flat_map(ibert_datagen::dataset::split::structure_keys).collect();
    for record in &test {
        for key in ibert_datagen::dataset::split::structure_keys(record) {
            assert!(!train_keys.contains(&key), "test record {} shares `{key}` with the train split", record.id);
        }
        let messages = record.messages.as_ref().expect("the prompt is stored");
        assert_eq!(messages[0].role, "system");
        assert_eq!(record.system_prompt.as_deref(), Some(messages[0].content.as_str()));
    }

    // The same inputs and seed give byte-identical outputs, also when a run is killed (SIGKILL,
    // in the middle of augmentation) and run again.
    let again = dir.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    let mut killed = crate::common::ibert().args(args).current_dir(&again).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut augmenting = false;
    for line in BufReader::new(killed.stderr.take().unwrap()).lines().map_while(Result::ok) {
        augmenting |= line.contains("augmentation");
        if augmenting && line.starts_with("verifying:") {
            break;
        }
    }
    assert!(augmenting, "the run reached augmentation");
    killed.kill().unwrap();
    assert!(!killed.wait().unwrap().success());
    ibert(&again, &args);
    let (first, second) = (files_under(&dir.path().join("data")), files_under(&again.join("data")));
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>(), "the same files");
    for (path, bytes) in &first {
        assert!(*bytes == second[path], "{} differs between the two runs", path.display());
    }
}

/// Every file under `root` by its path relative to it, with its bytes.
fn files_under(root: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A verified ibis_to_sql record as `data all` writes it, under `id`.
fn ibis_to_sql_record(id: &str, with_messages: bool) -> String {
    let system = "You write Python code with the Ibis dataframe library. Translate Ibis programs into the SQL they compile to.";
    let program = "import ibis\nt = ibis.table(dict(a=\"int\", b=\"string\"), name=\"t\")";
    let mut record = serde_json::json!({
        "id": id, "task": "ibis_to_sql", "input": {"ibis": program, "dialect": "duckdb"}, "target": {"sql": "SELECT\n  *\nFROM \"t\""},
        "dialect": "duckdb", "backend": "duckdb", "ibis_version": "12.0.0", "system_prompt": system,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": format!("Write the duckdb SQL of this Ibis program.\n```python\n{program}\n```")}],
        "context": {"tables": {}}, "meta": {"source": "mined", "features": ["mined"]},
        "verification": {"level": "compiled", "ibis_version": "12.0.0", "duckdb_version": "", "fixture_seeds": [], "fixture_rows": []}
    });
    if !with_messages {
        record.as_object_mut().unwrap().remove("messages");
    }
    record.to_string()
}

#[test]
fn export_writes_parquet_that_pyarrow_reads_and_the_chat_formats_trainers_take() {
    let dir = tempfile::tempdir().unwrap();
    let splits = dir.path().join("data/splits");
    std::fs::create_dir_all(&splits).unwrap();
    std::fs::write(splits.join("train.jsonl"), format!("{}\n{}\n", ibis_to_sql_record("a", true), ibis_to_sql_record("b", true))).unwrap();
    std::fs::write(splits.join("test.jsonl"), format!("{}\n", ibis_to_sql_record("c", true))).unwrap();

    let out = ibert_with_stdin(dir.path(), &["data", "export"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("train 2, test 1"), "{}", stdout(&out));
    let parquet = dir.path().join("data/export/parquet");
    let card = std::fs::read_to_string(parquet.join("README.md")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(parquet.join("README.md")).unwrap().permissions().mode();
        assert_eq!(mode & 0o044, 0o044, "the dataset card is readable by others ({mode:o})");
    }
    assert!(card.contains("- split: train\n    path: data/train-*.parquet") && card.contains("| test | 1 |"), "{card}");
    // Read back by pyarrow, as the `datasets` library reads it.
    let env = ibert_oracle::PythonEnv::ensure(&|_| {}).expect("the Python environment");
    let script = "import sys, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\nrow = t.to_pylist()[0]\n\
                  print(t.num_rows, ','.join(t.column_names), row['messages'][0]['role'], row['task'], repr(row['completion']))";
    let read =
        std::process::Command::new(env.python()).args(["-c", script, parquet.join("data/train-00000-of-00001.parquet").to_str().unwrap()]).output().unwrap();
    let printed = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    assert!(printed.starts_with("2 id,task,messages,completion,source,features,difficulty,dialect,verification_level,record system ibis_to_sql"), "{printed}");
    assert!(printed.contains("FROM \"t\""), "the answer is the assistant's message: {printed}");

    let out = ibert_with_stdin(dir.path(), &["data", "export", "--format", "prompt-completion"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = records(&dir.path().join("data/export/prompt-completion/train.jsonl"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["prompt"].as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["completion"][0]["role"], "assistant");
    let out = ibert_with_stdin(dir.path(), &["data", "export", "--format", "messages"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = records(&dir.path().join("data/export/messages/test.jsonl"));
    let roles: Vec<&str> = rows[0]["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant"]);

    // A record without its prompt: a clear error, and no file where the export goes.
    std::fs::write(splits.join("validation.jsonl"), format!("{}\n", ibis_to_sql_record("d", false))).unwrap();
    let out = ibert_with_stdin(dir.path(), &["data", "export", "-o", "fresh"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("validation.jsonl: record d has no stored prompt"), "{}", stderr(&out));
    assert!(!dir.path().join("fresh").exists(), "nothing of a failed export is written");
}
