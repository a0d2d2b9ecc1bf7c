//! The other five tasks derived from the verified template and corpus examples (not from their
//! augmented copies, which would mostly repeat the same programs with other names), each
//! checked by real Ibis: `multitask/train.jsonl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ibert_oracle::WorkerPool;
use ibert_records::{Example, write_jsonl};

use super::{Step, StepContext, StepError, StepReport, read_all, templates, transpilation};
use crate::load_embedded_templates;
use crate::multitask::{MultitaskOptions, MultitaskReport, derive, verified_pairs};
use crate::progress::Progress;
use crate::table::table;

/// The derived examples, in the output folder.
pub fn output(dir: &Path) -> PathBuf {
    dir.join("multitask/train.jsonl")
}

/// Refuses a dialect Ibis does not compile to, naming the ones it does.
pub fn check_dialects(pool: &WorkerPool, dialects: &[String]) -> Result<(), StepError> {
    let (known, _) = pool.dialects()?;
    let unknown: Vec<String> = dialects.iter().filter(|d| !known.contains(d)).map(|d| format!("`{d}`")).collect();
    if unknown.is_empty() { Ok(()) } else { Err(StepError::UnknownDialects { unknown: unknown.join(", "), known: known.join(", ") }) }
}

/// Derivation with a counter, the templates' descriptions for docstrings and questions; `None`
/// when interrupted (a note says so).
pub fn derive_from(
    verified: &[Example],
    pool: &WorkerPool,
    dialects: &[String],
    progress: &dyn Progress,
    interrupted: &AtomicBool,
) -> Result<Option<MultitaskReport>, StepError> {
    let descriptions: BTreeMap<String, String> =
        load_embedded_templates()?.into_iter().map(|t| (t.name, t.description)).filter(|(_, d)| !d.is_empty()).collect();
    let options = MultitaskOptions { dialects: dialects.to_vec(), threads: pool.size(), descriptions };
    let sources = verified_pairs(verified).count();
    progress.note(&format!("deriving the other tasks from {sources} verified sql_to_ibis examples"));
    let counter = progress.counter(sources as u64, "deriving", "");
    let report = derive(verified, pool, &options, &|| counter.tick(), interrupted)?;
    drop(counter);
    if report.cancelled {
        progress.note("interrupted; no output was written");
        return Ok(None);
    }
    Ok(Some(report))
}

/// Counts per task, the real error types recorded, and what was dropped and why.
pub fn render(report: &MultitaskReport) -> String {
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    for example in &report.examples {
        *per_task.entry(example.task().to_string()).or_default() += 1;
    }
    let rows: Vec<Vec<String>> = per_task.iter().map(|(task, n)| vec![task.clone(), n.to_string()]).collect();
    let mut out = table(&["task", "examples"], &rows);
    let rows: Vec<Vec<String>> = report.error_types.iter().map(|(t, n)| vec![t.clone(), n.to_string()]).collect();
    out.push_str(&format!("\nerror_resolution: {} distinct real error types\n", report.error_types.len()));
    out.push_str(&table(&["error type", "examples"], &rows));
    if !report.dropped.is_empty() {
        let rows: Vec<Vec<String>> = report.dropped.iter().map(|(reason, n)| vec![reason.clone(), n.to_string()]).collect();
        out.push_str("\nnot kept\n");
        out.push_str(&table(&["reason", "count"], &rows));
    }
    out
}

pub struct MultitaskDerivation {
    /// The dialects of the ibis_to_sql targets.
    pub dialects: Vec<String>,
}

impl Step for MultitaskDerivation {
    fn name(&self) -> &str {
        "multi-task"
    }

    fn title(&self) -> &str {
        "multi-task derivation"
    }

    fn inputs(&self, context: &StepContext) -> Vec<PathBuf> {
        vec![templates::outputs(context.dir).train, transpilation::outputs(context.dir).train]
    }

    fn settings(&self) -> Vec<String> {
        vec![format!("dialects {}", self.dialects.join(","))]
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        vec![output(context.dir)]
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let originals = read_all(&self.inputs(context))?;
        let Some(report) = derive_from(&originals, context.pool, &self.dialects, context.progress, context.interrupted)? else {
            return Ok(None);
        };
        write_jsonl(&output(context.dir), &report.examples)?;
        let line = format!("{} examples, {} distinct real error types", report.examples.len(), report.error_types.len());
        Ok(Some(StepReport { line, summary: Some(render(&report)) }))
    }
}
