//! `ibert data generate`: templates -> verified `train.jsonl` + `rejects.jsonl`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::records::{reject_record, verified_example};
use ibert_datagen::{Candidate, expand_template, load_embedded_templates, load_templates_dir};
use ibert_oracle::WorkerPool;
use ibert_records::{Example, JsonlWriter};

use super::verification_run::verify_with_progress;
use crate::cli::GenerateArgs;
use crate::exit::INTERRUPTED;
use crate::oracle_setup;

pub fn run(args: &GenerateArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let candidates = template_candidates(args.templates.as_deref(), &args.only)?;
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    let outputs = Outputs::in_folder(&args.output);
    let Some(written) = verify_and_write(candidates, "template", &outputs, &pool, args.verify.seed, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    print!("{}", written.summary);
    written.print_paths();
    Ok(ExitCode::SUCCESS)
}

/// The expansions of the templates in `dir` (the built-in ones without it), or of those named.
pub(super) fn template_candidates(dir: Option<&Path>, only: &[String]) -> anyhow::Result<Vec<Candidate>> {
    let templates = match dir {
        Some(dir) => load_templates_dir(dir)?,
        None => load_embedded_templates()?,
    };
    let unknown: Vec<&String> = only.iter().filter(|name| !templates.iter().any(|t| &t.name == *name)).collect();
    anyhow::ensure!(unknown.is_empty(), "no template named {}", unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "));
    let templates: Vec<_> = templates.into_iter().filter(|t| only.is_empty() || only.contains(&t.name)).collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    for template in &templates {
        candidates.extend(expand_template(template)?);
    }
    eprintln!("{} templates expanded to {} candidate examples", templates.len(), candidates.len());
    Ok(candidates)
}

/// A verification run written to disk.
pub(super) struct Written {
    pub examples: Vec<Example>,
    pub rejected: u64,
    pub summary: String,
    pub train: PathBuf,
    pub rejects: PathBuf,
}

impl Written {
    pub fn print_paths(&self) {
        println!("wrote {} verified examples to {}", self.examples.len(), self.train.display());
        println!("wrote {} rejects with their reasons to {}", self.rejected, self.rejects.display());
    }
}

/// Where a verification run writes its verified examples and its rejects.
pub(super) struct Outputs {
    pub train: PathBuf,
    pub rejects: PathBuf,
}

impl Outputs {
    /// `dir/train.jsonl` and `dir/rejects.jsonl`.
    pub fn in_folder(dir: &Path) -> Outputs {
        Outputs { train: dir.join("train.jsonl"), rejects: dir.join("rejects.jsonl") }
    }
}

/// Verifies `candidates` and writes the verified ones (labelled `source`) and the rejects, each
/// file completely or not at all. `None` when interrupted.
pub(super) fn verify_and_write(
    candidates: Vec<Candidate>,
    source: &str,
    outputs: &Outputs,
    pool: &WorkerPool,
    seed: u64,
    interrupted: &AtomicBool,
) -> anyhow::Result<Option<Written>> {
    let Some(run) = verify_with_progress(candidates, pool, seed, &[], interrupted)? else {
        return Ok(None);
    };
    let (train_path, rejects_path) = (outputs.train.clone(), outputs.rejects.clone());
    let mut train = JsonlWriter::create(&train_path)?;
    let mut rejects = JsonlWriter::create(&rejects_path)?;
    let mut examples = Vec::new();
    for outcome in &run.report.outcomes {
        if let Some(example) = verified_example(outcome, source) {
            train.write(&example)?;
            examples.push(example);
        }
        if let Some(reject) = reject_record(outcome, source) {
            rejects.write(&reject)?;
        }
    }
    let rejected = rejects.written();
    train.commit().with_context(|| format!("writing {}", train_path.display()))?;
    rejects.commit().with_context(|| format!("writing {}", rejects_path.display()))?;
    Ok(Some(Written { examples, rejected, summary: run.summary, train: train_path, rejects: rejects_path }))
}
