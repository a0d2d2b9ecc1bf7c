//! `ibert eval`: a model measured on a held-out split. Each record is answered (greedy unless
//! the model options say otherwise) and scored by the task library (`ibert_tasks::eval`):
//! execution accuracy where a check exists, stated proxies for `qa` and `documentation`. Results
//! go to `results.jsonl` one record at a time, so an interrupted run resumes where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use ibert_records::{Example, Payload, Task, read_jsonl};
use ibert_tasks::TaskInput;
use ibert_tasks::check::Checker;
use ibert_tasks::eval::{EvalOptions, EvalOutcome, SCORING_VERSION, evaluate};
use ibert_tasks::shots::ShotIndex;
use ibert_verify::Verifier;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::verification_run::fixtures_for_seed;
use crate::cli::EvalArgs;
use crate::exit::INTERRUPTED;
use crate::{model_config, oracle_setup, ui};

pub fn run(args: &EvalArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let split_path = args.data.join(format!("splits/{}.jsonl", args.split));
    if !split_path.exists() {
        bail!("{} does not exist\nhint: `ibert data all -o {}` writes the splits", split_path.display(), args.data.display());
    }
    let split: Vec<Example> = read_jsonl(&split_path)?;
    // The queries of the split's translations, for the goals of the records derived from them.
    let queries: BTreeMap<String, String> = split
        .iter()
        .filter_map(|record| match &record.payload {
            Payload::SqlToIbis { input, .. } => Some((record.id.clone(), input.sql.clone())),
            _ => None,
        })
        .collect();
    let records = select(split, &args.task, args.limit);
    if records.is_empty() {
        bail!("{} has no records of the tasks asked for", split_path.display());
    }
    let train: Vec<Example> =
        if args.shots > 0 { read_jsonl(&args.data.join("splits/train.jsonl")).context("reading the train split for worked examples")? } else { Vec::new() };

    let settings = model_config::settings(&args.model)?;
    let mut engine = model_config::load_engine(&settings)?;
    let output = args.output.clone().unwrap_or_else(|| args.data.join("eval").join(file_stem(&engine.describe())));
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let results_path = output.join("results.jsonl");
    // A resumed run must be the same run: same model, settings and records.
    let signature = signature(&engine.describe(), args, &settings.generation);
    let done = read_done(&results_path, &signature)?;

    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    let fixtures = fixtures_for_seed(args.verify.seed);
    let mut checker = Checker::new(&pool, Verifier::new(&pool, &fixtures));
    let options = EvalOptions { generation: &settings.generation, attempts: args.attempts, error_repairs: !args.no_repairs };
    let indexes: BTreeMap<Task, ShotIndex> = Task::ALL.iter().map(|task| (*task, ShotIndex::new(*task, &train))).collect();

    let mut outcomes: Vec<EvalOutcome> = done.values().cloned().collect();
    let todo: Vec<&Example> = records.iter().filter(|record| !done.contains_key(&record.id)).collect();
    eprintln!(
        "{} records of {} ({} done before), {} shots, {} attempt(s), {}",
        records.len(),
        split_path.display(),
        records.len() - todo.len(),
        args.shots,
        args.attempts,
        engine.describe()
    );
    if args.goal_comments {
        let completions: Vec<&Example> = records.iter().filter(|record| matches!(record.payload, Payload::CodeCompletion { .. })).collect();
        let stated = completions.iter().filter(|record| goal_of(record, &queries).is_some()).count();
        eprintln!("goal comments: {stated} of {} code_completion records state the query they were derived from", completions.len());
    }
    let bar = ui::progress_bar(todo.len() as u64, "evaluating");
    let mut appender = ResultsFile::open(&results_path)?;
    for record in todo {
        if interrupted.load(Ordering::SeqCst) {
            bar.finish_and_clear();
            eprintln!("interrupted: {} results kept in {}; run the same command again to resume", outcomes.len(), results_path.display());
            return Ok(ExitCode::from(INTERRUPTED));
        }
        let input = TaskInput::of(record);
        let shots = if args.shots > 0 { indexes[&record.task()].nearest(&input, &record.context.schemas(), args.shots, Some(&record.id)) } else { Vec::new() };
        let goal = if args.goal_comments { goal_of(record, &queries) } else { None };
        let outcome = evaluate(engine.as_mut(), &mut checker, record, &shots, &options, goal).with_context(|| format!("evaluating record `{}`", record.id))?;
        appender.append(&signature, &outcome)?;
        outcomes.push(outcome);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let summary = Summary::of(&outcomes, &engine.describe(), args);
    let summary_path = output.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)? + "\n").with_context(|| format!("writing {}", summary_path.display()))?;
    println!("{}", summary.table());
    println!(
        "scores: execution accuracy for sql_to_ibis, ibis_to_sql (duckdb), code_completion, error_resolution; proxies for qa and documentation (see docs/tasks.md)"
    );
    println!("wrote {} and {}", results_path.display(), summary_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The records of the asked tasks, at most `limit` per task, spread over the split by a hash
/// of their id (so that a small limit still covers many structures, the same way every run).
fn select(records: Vec<Example>, tasks: &[String], limit: Option<usize>) -> Vec<Example> {
    let mut by_task: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    for record in records {
        let task = record.task().to_string();
        if tasks.is_empty() || tasks.contains(&task) {
            by_task.entry(task).or_default().push(record);
        }
    }
    let mut chosen = Vec::new();
    for (_, mut records) in by_task {
        records.sort_by_key(|record| Sha256::digest(record.id.as_bytes()).to_vec());
        records.truncate(limit.unwrap_or(usize::MAX));
        chosen.extend(records);
    }
    chosen
}

/// What makes two runs the same: the model, how it samples, the split, shots and attempts, and
/// how answers are scored.
fn signature(model: &str, args: &EvalArgs, generation: &ibert_model::GenerationOptions) -> String {
    let repairs = if args.no_repairs { "|no repairs" } else { "" };
    let goals = if args.goal_comments { "|goal comments" } else { "" };
    let text = format!("{model}|{}|{}|{}|{generation:?}|{}|scoring {SCORING_VERSION}{repairs}{goals}", args.split, args.shots, args.attempts, args.verify.seed);
    Sha256::digest(text.as_bytes()).iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// The query a `code_completion` record was derived from (its `derived_from` translation).
fn goal_of<'q>(record: &Example, queries: &'q BTreeMap<String, String>) -> Option<&'q str> {
    let derived_from = record.meta.derived_from.as_ref()?;
    matches!(record.payload, Payload::CodeCompletion { .. }).then(|| queries.get(derived_from).map(String::as_str)).flatten()
}

fn file_stem(description: &str) -> String {
    let stem_of = |name: &str| Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let mut stem = stem_of(description.split_whitespace().next().unwrap_or("model"));
    // Results with an adapter go apart from the base's.
    if let Some(adapter) = description.split(" + adapter ").nth(1).and_then(|rest| rest.split_whitespace().next()) {
        stem = format!("{stem}+{}", stem_of(adapter));
    }
    stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// One line of `results.jsonl`.
#[derive(Serialize, serde::Deserialize)]
struct ResultLine {
    signature: String,
    #[serde(flatten)]
    outcome: serde_json::Value,
}

/// The results of earlier runs with the same signature, by record id.
fn read_done(path: &Path, signature: &str) -> anyhow::Result<BTreeMap<String, EvalOutcome>> {
    let mut done = BTreeMap::new();
    if !path.exists() {
        return Ok(done);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    for (number, line) in text.lines().enumerate() {
        // A line cut short by a kill is the only damage an append can leave: skip it.
        let Ok(parsed) = serde_json::from_str::<ResultLine>(line) else {
            eprintln!("{}:{}: an unreadable result line is ignored (it will be measured again)", path.display(), number + 1);
            continue;
        };
        if parsed.signature == signature
            && let Ok(outcome) = serde_json::from_value::<EvalOutcome>(parsed.outcome)
        {
            done.insert(outcome.id.clone(), outcome);
        }
    }
    Ok(done)
}

/// `results.jsonl`, appended a whole line at a time and flushed after each.
struct ResultsFile {
    file: std::fs::File,
    path: PathBuf,
}

impl ResultsFile {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(ResultsFile { file, path: path.to_path_buf() })
    }

    fn append(&mut self, signature: &str, outcome: &EvalOutcome) -> anyhow::Result<()> {
        use std::io::Write;
        let line = ResultLine { signature: signature.to_string(), outcome: serde_json::to_value(outcome)? };
        let text = serde_json::to_string(&line)? + "\n";
        self.file.write_all(text.as_bytes()).and_then(|_| self.file.sync_data()).with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Per-task figures of one run.
#[derive(Serialize)]
struct Summary {
    model: String,
    split: String,
    shots: usize,
    attempts: u32,
    tasks: BTreeMap<String, TaskFigures>,
}

#[derive(Serialize)]
struct TaskFigures {
    records: usize,
    correct: usize,
    accuracy: f64,
    /// `execution` or `proxy`.
    metric: &'static str,
    latency_p50: f64,
    latency_p95: f64,
    prompt_tokens_per_second: f64,
    generated_tokens_per_second: f64,
    /// The share of drafted tokens the model kept (`None` with plain decoding).
    draft_acceptance: Option<f64>,
}

impl Summary {
    fn of(outcomes: &[EvalOutcome], model: &str, args: &EvalArgs) -> Summary {
        let mut tasks: BTreeMap<String, Vec<&EvalOutcome>> = BTreeMap::new();
        for outcome in outcomes {
            tasks.entry(outcome.task.clone()).or_default().push(outcome);
        }
        let tasks = tasks
            .into_iter()
            .map(|(task, outcomes)| {
                let mut latencies: Vec<f64> = outcomes.iter().map(|o| o.latency).collect();
                latencies.sort_by(f64::total_cmp);
                let percentile = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
                let rate = |tokens: usize, seconds: f64| if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 };
                let correct = outcomes.iter().filter(|o| o.correct).count();
                let figures = TaskFigures {
                    records: outcomes.len(),
                    correct,
                    accuracy: correct as f64 / outcomes.len().max(1) as f64,
                    metric: if matches!(task.as_str(), "qa" | "documentation") { "proxy" } else { "execution" },
                    latency_p50: percentile(0.5),
                    latency_p95: percentile(0.95),
                    prompt_tokens_per_second: rate(outcomes.iter().map(|o| o.prompt_tokens).sum(), outcomes.iter().map(|o| o.prompt_seconds).sum()),
                    generated_tokens_per_second: rate(outcomes.iter().map(|o| o.generated_tokens).sum(), outcomes.iter().map(|o| o.generation_seconds).sum()),
                    draft_acceptance: {
                        let drafted: usize = outcomes.iter().map(|o| o.drafted_tokens).sum();
                        (drafted > 0).then(|| outcomes.iter().map(|o| o.accepted_tokens).sum::<usize>() as f64 / drafted as f64)
                    },
                };
                (task, figures)
            })
            .collect();
        Summary { model: model.to_string(), split: args.split.clone(), shots: args.shots, attempts: args.attempts, tasks }
    }

    fn table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .tasks
            .iter()
            .map(|(task, f)| {
                vec![
                    task.clone(),
                    f.metric.to_string(),
                    format!("{}/{}", f.correct, f.records),
                    format!("{:.1}%", 100.0 * f.accuracy),
                    format!("{:.1} s", f.latency_p50),
                    format!("{:.1} s", f.latency_p95),
                    format!("{:.0}", f.prompt_tokens_per_second),
                    format!("{:.1}", f.generated_tokens_per_second),
                    f.draft_acceptance.map_or("-".to_string(), |share| format!("{:.0}%", 100.0 * share)),
                ]
            })
            .collect();
        format!(
            "{} on the {} split ({} shots, {} attempt(s))\n{}",
            self.model,
            self.split,
            self.shots,
            self.attempts,
            ui::table(&["task", "metric", "correct", "accuracy", "p50", "p95", "prompt tok/s", "gen tok/s", "drafts kept"], &rows)
        )
    }
}
