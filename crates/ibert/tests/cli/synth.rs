//! `ibert data synth` and `ibert data merge`: four shards, two of them killed with SIGKILL in
//! the middle and run again, merge to exactly the records of one unsharded run; bad shard
//! specs, folders of another run and incomplete or changed shards are refused by name.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ibert, stderr, stdout};

const COUNT: &str = "48";
const CHUNK: &str = "8";

fn synth_args(output: &str, shard: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = ["data", "synth", "--count", COUNT, "--chunk-size", CHUNK, "--seed", "5", "--dialect", "duckdb,postgres", "-o", output]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(shard) = shard {
        args.extend(["--shard".to_string(), shard.to_string()]);
    }
    args
}

fn run(dir: &Path, args: &[String]) -> Output {
    ibert().args(args).current_dir(dir).output().unwrap()
}

/// Starts a shard and kills it with SIGKILL once its chunk `first_chunk` is complete.
fn killed_after_one_chunk(dir: &Path, shard: &str, first_chunk: u64) {
    let mut child = ibert().args(synth_args("sharded", Some(shard))).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let marker = dir.join(format!("sharded/chunks/{first_chunk:06}.done.json"));
    let started = Instant::now();
    while !marker.exists() {
        assert!(started.elapsed() < Duration::from_secs(600), "no chunk after 10 minutes");
        assert!(child.try_wait().unwrap().is_none(), "shard {shard} ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn merge(dir: &Path, inputs: &[&str], output: &str) -> Output {
    let mut args = vec!["data", "merge"];
    args.extend(inputs);
    args.extend(["-o", output]);
    ibert().args(&args).current_dir(dir).output().unwrap()
}

#[test]
fn four_shards_two_of_them_killed_merge_to_the_records_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run(dir.path(), &synth_args("whole", None));
    assert!(whole.status.success(), "{}", stderr(&whole));
    let report = stdout(&whole);
    assert!(report.contains("48 queries in 6 chunks"), "{report}");
    assert!(report.contains("verified pairs/s"), "{report}");

    // Six chunks: shard 0 makes chunks 0 and 4, shard 1 chunks 1 and 5, shards 2 and 3 one
    // each. Shard 1 is killed once chunk 1 is complete, in the middle of chunk 5; shard 3 in
    // the middle of its only chunk.
    for shard in ["0/4", "2/4"] {
        let done = run(dir.path(), &synth_args("sharded", Some(shard)));
        assert!(done.status.success(), "{}", stderr(&done));
    }
    killed_after_one_chunk(dir.path(), "1/4", 1);
    let mut child = ibert().args(synth_args("sharded", Some("3/4"))).current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let early = merge(dir.path(), &["sharded"], "too_early");
    assert!(!early.status.success());
    assert!(!dir.path().join("too_early/train_complete.jsonl").exists(), "nothing merged half-way");
    let resumed = run(dir.path(), &synth_args("sharded", Some("1/4")));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("1 of 2 chunks of shard 1/4 are complete already: skipped"), "{}", stderr(&resumed));
    let resumed = run(dir.path(), &synth_args("sharded", Some("3/4")));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    for shard in 0..4 {
        assert!(dir.path().join(format!("sharded/shard-{shard}-of-4.done.json")).exists());
    }

    for (folder, out) in [("whole", "merged_whole"), ("sharded", "merged_sharded")] {
        let merged = merge(dir.path(), &[folder], out);
        assert!(merged.status.success(), "{}", stderr(&merged));
        assert!(stdout(&merged).contains("sql_to_ibis"), "{}", stdout(&merged));
    }
    let read = |path: &str| std::fs::read(dir.path().join(path)).unwrap();
    for file in ["train_complete.jsonl", "splits/train.jsonl", "splits/validation.jsonl", "splits/test.jsonl", "stats.json"] {
        assert!(read(&format!("merged_whole/{file}")) == read(&format!("merged_sharded/{file}")), "{file} differs between the runs");
    }
    let records: Vec<serde_json::Value> =
        String::from_utf8(read("merged_whole/train_complete.jsonl")).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let tasks: std::collections::BTreeSet<&str> = records.iter().map(|r| r["task"].as_str().unwrap()).collect();
    assert!(tasks.contains("sql_to_ibis") && tasks.contains("ibis_to_sql") && tasks.len() >= 4, "{tasks:?}");
    let pairs = records.iter().filter(|r| r["task"] == "sql_to_ibis").count();
    assert!(pairs >= 30, "{pairs} of 40 queries verified");
    assert!(records.iter().all(|r| r["messages"].is_array() && r["meta"]["split"].is_string()));

    // Two shards, each in a folder of its own, merge together to the same records.
    for (shard, folder) in [("0/2", "half0"), ("1/2", "half1")] {
        let done = run(dir.path(), &synth_args(folder, Some(shard)));
        assert!(done.status.success(), "{}", stderr(&done));
    }
    let half = merge(dir.path(), &["half0"], "merged_half");
    assert!(!half.status.success() && stderr(&half).contains("chunk 1 is not complete"), "{}", stderr(&half));
    let halves = merge(dir.path(), &["half0", "half1"], "merged_halves");
    assert!(halves.status.success(), "{}", stderr(&halves));
    assert!(read("merged_halves/train_complete.jsonl") == read("merged_whole/train_complete.jsonl"));

    // The same folders merged twice: every pair once.
    let twice = merge(dir.path(), &["whole", "sharded"], "merged_twice");
    assert!(twice.status.success(), "{}", stderr(&twice));
    assert!(read("merged_twice/train_complete.jsonl") == read("merged_whole/train_complete.jsonl"));
}

#[test]
fn bad_shards_and_folders_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["5/4", "0/0", "two"] {
        let output = run(dir.path(), &synth_args("x", Some(bad)));
        assert!(!output.status.success());
        assert!(stderr(&output).contains("0 <= I < N"), "{bad}: {}", stderr(&output));
    }
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "weights: {windows: 2}\n").unwrap();
    let mut args = synth_args("x", None);
    args.extend(["--spec".into(), spec.display().to_string()]);
    let output = run(dir.path(), &args);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("spec.yaml") && stderr(&output).contains("unknown feature `windows`"), "{}", stderr(&output));

    let one = run(dir.path(), &["data", "synth", "--count", "4", "--chunk-size", "2", "--no-derive", "-o", "run"].map(String::from));
    assert!(one.status.success(), "{}", stderr(&one));
    let other = run(dir.path(), &["data", "synth", "--count", "4", "--chunk-size", "2", "--no-derive", "--seed", "9", "-o", "run"].map(String::from));
    assert!(!other.status.success());
    assert!(stderr(&other).contains("other settings") && stderr(&other).contains("seed 0 there, 9 now"), "{}", stderr(&other));

    std::fs::create_dir_all(dir.path().join("foreign")).unwrap();
    let foreign = merge(dir.path(), &["foreign"], "out");
    assert!(stderr(&foreign).contains("foreign is not a synthesis folder"), "{}", stderr(&foreign));
    let pairs = dir.path().join("run/chunks/000001.jsonl");
    let text = std::fs::read_to_string(&pairs).unwrap();
    std::fs::write(&pairs, format!("{text}{{}}\n")).unwrap();
    let changed = merge(dir.path(), &["run"], "out");
    assert!(!changed.status.success());
    assert!(stderr(&changed).contains("chunk 1 is not complete") && stderr(&changed).contains("changed since it was written"), "{}", stderr(&changed));
    assert!(!dir.path().join("out").exists(), "nothing is written when an input is refused");
    let redone = run(dir.path(), &["data", "synth", "--count", "4", "--chunk-size", "2", "--no-derive", "-o", "run"].map(String::from));
    assert!(redone.status.success() && stderr(&redone).contains("1 of 2 chunks"), "{}", stderr(&redone));
    assert!(merge(dir.path(), &["run"], "out").status.success());
}
