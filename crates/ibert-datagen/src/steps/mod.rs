//! The dataset pipeline of `ibert data all` as steps: each names the files it reads and writes,
//! does its work, and reports a line for the stage table (and, for some, a longer summary).
//! Steps hand data to one another through their files only, so a step whose outputs are
//! complete can be skipped: once a step has written every output, a completion marker
//! ([`marker`]) records what they were made from, and a later run skips the step while that
//! still holds. Adding a stage is adding a file here and a line to the list in `data all`.
//!
//! | step | reads | writes |
//! | --- | --- | --- |
//! | [`templates`] | the built-in templates | `sql2ibis/train.jsonl`, `sql2ibis/rejects.jsonl` |
//! | [`transpilation`] | the SQL corpus folder | `transpiled/train.jsonl`, `transpiled/rejects.jsonl` |
//! | [`augmentation`] | both `train.jsonl` above | `sql2ibis/train_augmented.jsonl`, `sql2ibis/train_augmented.rejects.jsonl` |
//! | [`mining`] | the installed Ibis package | `mining/ibis_mined.jsonl` |
//! | [`multitask`] | both `train.jsonl` above | `multitask/train.jsonl` |
//! | [`synthesis`] | nothing (seeded) | `synth/train.jsonl`, `synth/derived.jsonl`, `synth/rejects.jsonl` |
//! | [`concatenation`] | every file above but the rejects | `train_complete.jsonl`, `splits/{train,validation,test}.jsonl` |
//! | [`statistics`] | `train_complete.jsonl` | `stats.json` |

pub mod augmentation;
pub mod concatenation;
pub mod marker;
pub mod mining;
pub mod multitask;
pub mod statistics;
pub mod synthesis;
pub mod templates;
pub mod transpilation;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ibert_oracle::{OracleError, WorkerPool};
use ibert_records::{Example, RecordError, read_jsonl};
use ibert_transpile::corpus::CorpusError;

use crate::progress::Progress;
use crate::verified::{Outputs, Written, verify, write_outcomes};
use crate::{Candidate, PipelineError, TemplateError};

/// What every step of one run shares.
pub struct StepContext<'a> {
    /// The output folder: the steps' files are named relative to it.
    pub dir: &'a Path,
    pub pool: &'a WorkerPool,
    /// The seed of the fixture databases of every verification.
    pub seed: u64,
    pub progress: &'a dyn Progress,
    /// Set by Ctrl-C: a step stops after the work in flight and writes nothing.
    pub interrupted: &'a AtomicBool,
    /// The running program, as completion markers record it ([`marker::running_program`]).
    pub program: String,
}

impl<'a> StepContext<'a> {
    pub fn new(dir: &'a Path, pool: &'a WorkerPool, seed: u64, progress: &'a dyn Progress, interrupted: &'a AtomicBool) -> Result<Self, StepError> {
        Ok(StepContext { dir, pool, seed, progress, interrupted, program: marker::running_program()? })
    }
}

/// What a step did, in words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// One line for the stage table: what was made and what was dropped.
    pub line: String,
    /// A longer summary, printed at the end of the run.
    pub summary: Option<String>,
}

impl StepReport {
    pub fn line(line: String) -> StepReport {
        StepReport { line, summary: None }
    }
}

/// One stage of the pipeline.
pub trait Step {
    /// A short name: the stage table's row and the completion marker's file name.
    fn name(&self) -> &str;
    /// What the step does, for the header printed when it starts.
    fn title(&self) -> &str;
    /// The files the step reads; those of earlier steps are under `context.dir`.
    fn inputs(&self, context: &StepContext) -> Vec<PathBuf>;
    /// What else its outputs depend on (options such as the dialects), one setting a line. The
    /// seed, the Ibis version and the running program are recorded for every step.
    fn settings(&self) -> Vec<String> {
        Vec::new()
    }
    /// The files the step writes, each completely or not at all.
    fn outputs(&self, context: &StepContext) -> Vec<PathBuf>;
    /// Does the work; `None` when interrupted, with nothing written.
    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError>;
}

/// How a step went.
#[derive(Debug)]
pub enum StepRun {
    Ran(StepReport),
    /// Its outputs were complete, made from the same inputs: the report is the one recorded.
    Skipped(StepReport),
    Interrupted,
}

/// Runs `step` unless its completion marker shows its outputs complete and made from what it
/// would make them from now. The marker is removed before the step runs and written after
/// every output is in place, so an interrupted step is never taken for a complete one.
pub fn run_step(step: &dyn Step, context: &StepContext) -> Result<StepRun, StepError> {
    let marker = marker::path(context.dir, step.name());
    let made_from = marker::MadeFrom::of(step, context)?;
    if let Some(report) = marker::complete(&marker, &made_from, context.dir)? {
        return Ok(StepRun::Skipped(report));
    }
    marker::remove(&marker)?;
    let Some(report) = step.run(context)? else {
        return Ok(StepRun::Interrupted);
    };
    marker::write(&marker, made_from, &step.outputs(context), context.dir, &report)?;
    Ok(StepRun::Ran(report))
}

/// Why a step failed (an interruption is not a failure: see [`StepRun::Interrupted`]).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Oracle(#[from] OracleError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("{action} `{path}`: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Synthesis(Box<crate::synth::run::RunError>),
    #[error("Ibis does not compile to {unknown}; it compiles to {known}")]
    UnknownDialects { unknown: String, known: String },
}

/// The records of `paths`, in order.
fn read_all(paths: &[PathBuf]) -> Result<Vec<Example>, RecordError> {
    let mut examples = Vec::new();
    for path in paths {
        examples.extend(read_jsonl::<Example>(path)?);
    }
    Ok(examples)
}

/// Verifies `candidates` and writes what verified (labelled `source`) and the rejects to
/// `outputs`; `None` when interrupted.
fn verify_into(candidates: Vec<Candidate>, source: &str, outputs: &Outputs, context: &StepContext) -> Result<Option<Written>, StepError> {
    let Some(report) = verify(candidates, context.pool, context.seed, &[], context.progress, context.interrupted)? else {
        return Ok(None);
    };
    Ok(Some(write_outcomes(&report.outcomes, source, outputs)?))
}

/// `N verified, M rejected`, as the stage table says it.
fn verified_line(written: &Written) -> String {
    format!("{} verified, {} rejected", written.examples.len(), written.rejected)
}
