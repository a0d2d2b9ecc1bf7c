//! `ibert train` on a dozen verified records and the small model: a run killed with SIGKILL
//! resumes to the very adapter an uninterrupted run ends with; the adapter then applies at
//! inference and is refused on another base; bad input is named.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{ibert, ibert_with_stdin, stderr, stdout};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/fixtures/splits");

fn data_folder(dir: &Path) {
    let splits = dir.join("data/splits");
    std::fs::create_dir_all(&splits).unwrap();
    for split in ["train.jsonl", "validation.jsonl"] {
        std::fs::copy(Path::new(FIXTURES).join(split), splits.join(split)).unwrap();
    }
}

fn train_args(output: &str) -> Vec<String> {
    let args = [
        "train",
        "-o",
        output,
        "--data",
        "data",
        "--max-steps",
        "6",
        "--batch-size",
        "2",
        "--micro-batch-tokens",
        "640",
        "--max-tokens",
        "640",
        "--rank",
        "4",
        "--checkpoint-every",
        "2",
        "--validation-every",
        "3",
        "--validation-records",
        "3",
        "--seed",
        "7",
        "--learning-rate",
        "1e-3",
    ];
    args.iter().map(|a| a.to_string()).collect()
}

fn train(dir: &Path, output: &str) -> std::process::Output {
    ibert().args(train_args(output)).current_dir(dir).output().unwrap()
}

/// The step log without the timings (which differ between runs).
fn steps(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
            for timing in ["seconds", "tokens_per_second"] {
                record.as_object_mut().unwrap().remove(timing);
            }
            record
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_adapter_an_uninterrupted_run_ends_with() {
    let dir = tempfile::tempdir().unwrap();
    data_folder(dir.path());
    let whole = train(dir.path(), "whole");
    assert!(whole.status.success(), "{}", stderr(&whole));
    assert!(stdout(&whole).contains("wrote the adapter whole"), "{}", stdout(&whole));
    for file in ["adapter_config.json", "adapter_model.safetensors", "ibert_adapter.json", "README.md", "train_log.jsonl", "loss.png"] {
        assert!(dir.path().join("whole").join(file).exists(), "{file}");
    }
    let whole_steps = steps(&dir.path().join("whole"));
    assert_eq!(whole_steps.iter().map(|s| s["step"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    assert!(whole_steps[2]["validation_loss"].is_f64() && whole_steps[5]["validation_loss"].is_f64());

    // The same run, killed once its first checkpoint is on disk.
    let mut child = ibert().args(train_args("killed")).current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let checkpoints = dir.path().join("killed.run/checkpoints");
    let started = Instant::now();
    while !checkpoints.join("step-2").exists() {
        assert!(started.elapsed() < Duration::from_secs(600), "no checkpoint after 10 minutes");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it was killed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.path().join("killed").exists(), "no adapter is written by a killed run");
    let resumed = train(dir.path(), "killed");
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("resuming from the checkpoint of step"), "{}", stderr(&resumed));
    let adapter = |name: &str| std::fs::read(dir.path().join(name).join("adapter_model.safetensors")).unwrap();
    assert!(adapter("whole") == adapter("killed"), "the resumed run ends with another adapter");
    assert_eq!(steps(&dir.path().join("killed")), whole_steps);

    // Other settings in the same run folder are refused, naming the difference.
    // (a rank changes the tensors' shapes too: still refused as other settings, never restarted over)
    let mut other: Vec<String> = train_args("killed").into_iter().map(|a| if a == "4" { "8".to_string() } else { a }).collect();
    other.extend(["--dropout".to_string(), "0.2".to_string()]);
    let refused = ibert().args(&other).current_dir(dir.path()).output().unwrap();
    assert!(
        !refused.status.success() && stderr(&refused).contains("other settings") && stderr(&refused).contains("dropout") && stderr(&refused).contains("rank"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(steps(&dir.path().join("killed.run")).len(), 6, "the refused run left the run's log alone");

    // The adapter applies at inference, and says so.
    let answered = ibert_with_stdin(dir.path(), &["qa", "--adapter", "whole", "--max-tokens", "4", "--no-examples"], "How do I sort a table?");
    assert!(answered.status.success(), "{}", stderr(&answered));
    assert!(stderr(&answered).contains("adapter: whole (LoRA rank 4"), "{}", stderr(&answered));

    // As a GGUF LoRA file too.
    let converted = ibert().args(["model", "convert-adapter", "whole", "--to", "whole.gguf"]).current_dir(dir.path()).output().unwrap();
    assert!(converted.status.success(), "{}", stderr(&converted));
    let answered = ibert_with_stdin(dir.path(), &["qa", "--adapter", "whole.gguf", "--max-tokens", "4", "--no-examples"], "How do I sort a table?");
    assert!(answered.status.success() && stderr(&answered).contains("adapter: whole.gguf"), "{}", stderr(&answered));

    // An adapter whose recorded base is another file is refused.
    let identity_path = dir.path().join("whole/ibert_adapter.json");
    let identity = std::fs::read_to_string(&identity_path).unwrap();
    let sha = serde_json::from_str::<serde_json::Value>(&identity).unwrap()["base"]["sha256"].as_str().unwrap().to_string();
    std::fs::write(&identity_path, identity.replace(&sha, &"0".repeat(64))).unwrap();
    let refused = ibert_with_stdin(dir.path(), &["qa", "--adapter", "whole", "--max-tokens", "4", "--no-examples"], "How do I sort a table?");
    assert!(!refused.status.success() && stderr(&refused).contains("trained on another base"), "{}", stderr(&refused));
}

#[test]
fn training_input_that_cannot_be_used_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = train(dir.path(), "out");
    assert!(!missing.status.success() && stderr(&missing).contains("ibert data all"), "{}", stderr(&missing));

    data_folder(dir.path());
    let train_path = dir.path().join("data/splits/train.jsonl");
    let text = std::fs::read_to_string(&train_path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    second.as_object_mut().unwrap().remove("messages");
    lines[1] = second.to_string();
    std::fs::write(&train_path, lines.join("\n") + "\n").unwrap();
    let output = train(dir.path(), "out");
    assert!(!output.status.success() && stderr(&output).contains("line 2") && stderr(&output).contains("messages"), "{}", stderr(&output));

    std::fs::write(&train_path, "{\"id\": \"x\"\n").unwrap();
    let output = train(dir.path(), "out");
    assert!(!output.status.success() && stderr(&output).contains("train.jsonl"), "{}", stderr(&output));
    assert!(!dir.path().join("out").exists());
}
