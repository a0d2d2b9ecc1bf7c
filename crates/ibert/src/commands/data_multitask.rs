//! `ibert data multitask`: the other five tasks derived from verified sql_to_ibis examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::load_embedded_templates;
use ibert_datagen::multitask::{MultitaskOptions, MultitaskReport, derive};
use ibert_oracle::WorkerPool;
use ibert_records::{Example, JsonlWriter, read_jsonl};

use crate::cli::MultitaskArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &MultitaskArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let verified = read_datasets(&args.inputs)?;
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    check_dialects(&pool, &args.dialects)?;
    let Some(report) = derive_with_progress(&verified, &pool, &args.dialects, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    write_examples(&args.output, &report.examples)?;
    print!("{}", render(&report));
    println!("wrote {} examples to {}", report.examples.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Every record of `paths`, in order; a bad line is an error naming its file and line.
pub(super) fn read_datasets(paths: &[PathBuf]) -> anyhow::Result<Vec<Example>> {
    let mut examples = Vec::new();
    for path in paths {
        let records: Vec<Example> = read_jsonl(path).with_context(|| format!("reading {} (run `ibert data generate` first to make it)", path.display()))?;
        examples.extend(records);
    }
    Ok(examples)
}

/// Writes `examples` to `path` completely or not at all.
pub(super) fn write_examples(path: &Path, examples: &[Example]) -> anyhow::Result<()> {
    let mut writer = JsonlWriter::create(path)?;
    for example in examples {
        writer.write(example)?;
    }
    writer.commit().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Refuses a dialect Ibis does not compile to, naming the ones it does.
pub(super) fn check_dialects(pool: &WorkerPool, dialects: &[String]) -> anyhow::Result<()> {
    let (known, _) = pool.dialects()?;
    let unknown: Vec<&String> = dialects.iter().filter(|d| !known.contains(d)).collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "Ibis does not compile to {}; it compiles to {}",
        unknown.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", "),
        known.join(", ")
    );
    Ok(())
}

/// Derivation with a progress bar; `None` when Ctrl-C stopped it (a message has been printed).
pub(super) fn derive_with_progress(
    verified: &[Example],
    pool: &WorkerPool,
    dialects: &[String],
    interrupted: &AtomicBool,
) -> anyhow::Result<Option<MultitaskReport>> {
    let descriptions: BTreeMap<String, String> =
        load_embedded_templates()?.into_iter().map(|t| (t.name, t.description)).filter(|(_, d)| !d.is_empty()).collect();
    let options = MultitaskOptions { dialects: dialects.to_vec(), threads: pool.size(), descriptions };
    let sources = ibert_datagen::multitask::verified_pairs(verified).count();
    eprintln!("deriving the other tasks from {sources} verified sql_to_ibis examples");
    let bar = ui::progress_bar(sources as u64, "deriving");
    let report = derive(verified, pool, &options, &|| bar.inc(1), interrupted)?;
    bar.finish_and_clear();
    if report.cancelled {
        eprintln!("interrupted; no output was written");
        return Ok(None);
    }
    Ok(Some(report))
}

/// Counts per task, what was dropped and why, and the real error types recorded.
pub(super) fn render(report: &MultitaskReport) -> String {
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    for example in &report.examples {
        *per_task.entry(example.task().to_string()).or_default() += 1;
    }
    let rows: Vec<Vec<String>> = per_task.iter().map(|(task, n)| vec![task.clone(), n.to_string()]).collect();
    let mut out = ui::table(&["task", "examples"], &rows);
    let rows: Vec<Vec<String>> = report.error_types.iter().map(|(t, n)| vec![t.clone(), n.to_string()]).collect();
    out.push_str(&format!("\nerror_resolution: {} distinct real error types\n", report.error_types.len()));
    out.push_str(&ui::table(&["error type", "examples"], &rows));
    if !report.dropped.is_empty() {
        let rows: Vec<Vec<String>> = report.dropped.iter().map(|(reason, n)| vec![reason.clone(), n.to_string()]).collect();
        out.push_str("\nnot kept\n");
        out.push_str(&ui::table(&["reason", "count"], &rows));
    }
    out
}
