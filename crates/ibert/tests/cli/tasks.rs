//! The model-backed task commands, end to end with the real default model (few tokens each).

use crate::common::{ibert, ibert_with_stdin, run_with_stdin, stderr, stdout};

const SCHEMA: &str = r#"{"orders": {"id": "int64", "status": "string", "amount": "float64"}}"#;

#[test]
fn qa_and_doc_print_an_answer_and_say_which_check_its_code_passed() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["qa", "--max-tokens", "16", "--attempts", "2"], "How do I sort an Ibis table by a column?");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).trim().is_empty());
    let says_its_check = |err: &str| {
        ["verified: its code (", "not checked: the answer holds no code", "NOT verified: no answer of 2 has code that runs"]
            .iter()
            .any(|said| err.contains(said))
    };
    assert!(says_its_check(&stderr(&output)), "{}", stderr(&output));
    assert!(stderr(&output).contains("tok/s"), "{}", stderr(&output));
    // The small model's built-in adapter applies unless --no-adapter.
    assert!(stderr(&output).contains("adapter: ") && stderr(&output).contains("smollm2-135m-ibert"), "{}", stderr(&output));
    let base = ibert_with_stdin(dir.path(), &["qa", "--max-tokens", "4", "--no-adapter"], "How do I sort an Ibis table by a column?");
    assert!(base.status.success() && !stderr(&base).contains("adapter: "), "{}", stderr(&base));

    let output =
        ibert_with_stdin(dir.path(), &["doc", "--style", "numpy", "--max-tokens", "16", "--attempts", "2"], "def total(t):\n    return t.amount.sum()\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).trim().is_empty());
    assert!(says_its_check(&stderr(&output)), "{}", stderr(&output));
}

#[test]
fn complete_compiles_its_answer_with_real_ibis_and_says_whether_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        ibert_with_stdin(dir.path(), &["complete", "--schema", SCHEMA, "--max-tokens", "48", "--attempts", "2"], "expr = orders.filter(orders.amount > 10)\n");
    let err = stderr(&output);
    assert!(err.contains("(at most 2)"), "{err}");
    match output.status.code() {
        Some(0) => assert!(err.contains("verified: compiles with real Ibis 12.0.0 and runs through Ibis"), "{err}"),
        Some(2 | 3) => assert!(err.contains("NOT verified") && err.contains("no answer of 2 passed"), "{err}"),
        other => panic!("exit {other:?}: {err}"),
    }
    assert!(stdout(&output).contains("orders"), "the program is printed: {}", stdout(&output));
}

#[test]
fn fix_leaves_a_program_that_compiles_alone() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["fix", "--schema", SCHEMA], "expr = orders.filter(orders.amount > 10)\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("nothing to fix"), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "expr = orders.filter(orders.amount > 10)");
}

#[test]
fn fix_makes_the_repairs_the_errors_propose_before_asking_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["fix", "--schema", SCHEMA], "expr = order.sort_values(\"amout\")\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "expr = orders.order_by(\"amount\")");
    let err = stderr(&output);
    assert!(err.contains("`order` -> `orders`, `sort_values` -> `order_by`, `amout` -> `amount`; no model answer needed"), "{err}");
    assert!(!err.contains("answers of"), "no model ran: {err}");
}

#[test]
fn a_goal_in_a_leading_comment_checks_fix_against_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let right = "# SELECT * FROM orders WHERE amount > 10\nexpr = orders.filter(orders.amount > 10)\n";
    let output = ibert_with_stdin(dir.path(), &["fix", "--schema", SCHEMA], right);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("already returns the goal SQL's result"), "{}", stderr(&output));
    // It compiles, but returns other rows than the goal's: it is broken, and answers are checked
    // against the goal.
    let wrong = "expr = orders.filter(orders.amount < 10)\n";
    let output = ibert_with_stdin(
        dir.path(),
        &["fix", "--schema", SCHEMA, "--goal-sql", "SELECT * FROM orders WHERE amount > 10", "--max-tokens", "48", "--attempts", "1"],
        wrong,
    );
    let err = stderr(&output);
    assert!(err.contains("goal: the answer must return the result of SELECT * FROM orders WHERE amount > 10"), "{err}");
    // The model's answer, or else the goal as the transpiler translates it: verified either way.
    assert!(output.status.success(), "{err}");
    assert!(err.contains("returns the goal SQL's result"), "{err}");
}

#[test]
fn a_goal_the_model_does_not_reach_is_answered_by_the_transpiler_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Four tokens cannot finish the statement: no model answer passes.
    let prefix = "# Goal: SELECT status, COUNT(*) AS n FROM orders WHERE amount > 5 GROUP BY status\nexpr = orders.filter(\n";
    let output = ibert_with_stdin(dir.path(), &["complete", "--schema", SCHEMA, "--max-tokens", "4", "--attempts", "1"], prefix);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("the goal SQL translated by the transpiler, since no answer of the model's 1 did; it does not continue the given lines"), "{err}");
    let program = stdout(&output);
    assert!(program.contains("group_by") && program.contains("amount > 5"), "{program}");
    // Without a goal there is nothing to translate: the model's answer stands, verified or not.
    let output = ibert_with_stdin(dir.path(), &["complete", "--schema", SCHEMA, "--max-tokens", "4", "--attempts", "1"], "expr = orders.filter(\n");
    assert!(!stderr(&output).contains("transpiler"), "{}", stderr(&output));
}

#[test]
fn bad_models_and_configs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.gguf"), "GGUF").unwrap();
    let output = ibert_with_stdin(dir.path(), &["qa", "--model-path", "bad.gguf"], "hi");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("bad.gguf is truncated or corrupt"), "{}", stderr(&output));

    // A hub model that is not built in, named by the config alone (no IBERT_MODEL_NAME over it).
    std::fs::write(dir.path().join("hub.yaml"), "model:\n  model_name: Qwen/Qwen2.5-Coder-7B-Instruct\n").unwrap();
    let mut from_config = ibert();
    from_config.env_remove("IBERT_MODEL_NAME");
    let output = run_with_stdin(from_config, dir.path(), &["qa", "--config", "hub.yaml"], "hi");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot download") && stderr(&output).contains("--model-path"), "{}", stderr(&output));

    let output = ibert_with_stdin(dir.path(), &["qa", "--model-name", "qwen-9000"], "hi");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no built-in model is called `qwen-9000`") && stderr(&output).contains("qwen2.5-coder-0.5b"), "{}", stderr(&output));

    let output = ibert_with_stdin(dir.path(), &["qa", "--device", "cuda"], "hi");
    assert!(
        !output.status.success() && stderr(&output).contains("built without CUDA support") && stderr(&output).contains("--features cuda"),
        "{}",
        stderr(&output)
    );
    let output = ibert_with_stdin(dir.path(), &["qa", "--device", "tpu"], "hi");
    assert!(!output.status.success() && stderr(&output).contains("use cpu, cuda or cuda:N"), "{}", stderr(&output));

    // Speculative decoding with a draft model needs one; a draft model that is not there is named.
    let output = ibert_with_stdin(dir.path(), &["qa", "--decoding", "draft"], "hi");
    assert!(!output.status.success() && stderr(&output).contains("needs a draft model: pass --draft-model"), "{}", stderr(&output));
    std::fs::write(dir.path().join("draft.yaml"), "model:\n  decoding: fastest\n").unwrap();
    let output = ibert_with_stdin(dir.path(), &["qa", "--config", "draft.yaml"], "hi");
    assert!(!output.status.success() && stderr(&output).contains("decoding `fastest`: use one of plain, lookup"), "{}", stderr(&output));
    let output = ibert_with_stdin(dir.path(), &["qa", "--draft-model", "bad.gguf"], "hi");
    assert!(!output.status.success() && stderr(&output).contains("loading the draft model bad.gguf"), "{}", stderr(&output));
    let output = ibert_with_stdin(dir.path(), &["qa", "--draft-model", "missing.gguf"], "hi");
    assert!(!output.status.success() && stderr(&output).contains("the draft model missing.gguf: no such file"), "{}", stderr(&output));

    std::fs::write(dir.path().join("typo.yaml"), "model:\n  temprature: 0.5\n").unwrap();
    let output = ibert_with_stdin(dir.path(), &["doc", "--config", "typo.yaml"], "x = 1");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("typo.yaml:2") && stderr(&output).contains("temprature"), "{}", stderr(&output));
}

#[test]
fn model_info_names_the_backend_that_will_run_the_default_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["model", "info"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("architecture      llama") && out.contains("backend           native ("), "{out}");
}

#[test]
fn a_converted_model_folder_answers_in_full_precision_and_in_8_bits() {
    let dir = tempfile::tempdir().unwrap();
    let output = ibert_with_stdin(dir.path(), &["model", "convert", "--to", "smollm2"], "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("smollm2/model.safetensors").exists() && dir.path().join("smollm2/tokenizer.json").exists());
    for extra in [&[][..], &["--load-in-8bit"][..]] {
        let mut args = vec!["qa", "--model-path", "smollm2", "--max-tokens", "8"];
        args.extend_from_slice(extra);
        let output = ibert_with_stdin(dir.path(), &args, "What is Ibis?");
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(!stdout(&output).trim().is_empty(), "{args:?}");
    }
}

#[test]
fn eval_scores_a_split_writes_results_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let splits = dir.path().join("data/splits");
    std::fs::create_dir_all(&splits).unwrap();
    let context = r#"{"tables": {"orders": {"schema": {"id": "int64", "status": "string", "amount": "float64"}}}}"#;
    let records = [
        format!(r#"{{"id": "t1", "task": "sql_to_ibis", "context": {context}, "input": {{"sql": "SELECT id FROM orders WHERE amount > 10"}}, "target": {{"ibis": "expr = orders.filter(orders.amount > 10).select('id')"}}}}"#),
        r#"{"id": "t2", "task": "documentation", "input": {"code": "def total(orders):\n    return orders.amount.sum()\n", "style": "google"}, "target": {"docstring": "Total.\n\nArgs:\n    orders: the orders.\n\nReturns:\n    The sum."}}"#.to_string(),
    ];
    std::fs::write(splits.join("test.jsonl"), records.join("\n") + "\n").unwrap();
    let args = ["eval", "--data", "data", "--max-tokens", "24", "-o", "out"];
    let output = ibert_with_stdin(dir.path(), &args, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.contains("sql_to_ibis") && table.contains("execution") && table.contains("documentation") && table.contains("proxy"), "{table}");
    let results = std::fs::read_to_string(dir.path().join("out/results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 2, "{results}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["tasks"]["sql_to_ibis"]["records"], 1);
    // The same command again has nothing left to do: both records were kept.
    let again = ibert_with_stdin(dir.path(), &args, "");
    assert!(stderr(&again).contains("(2 done before)"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(dir.path().join("out/results.jsonl")).unwrap().lines().count(), 2);
    // No split there: a clear error that says how to make one.
    let missing = ibert_with_stdin(dir.path(), &["eval", "--data", "nowhere"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("ibert data all"), "{}", stderr(&missing));
}
