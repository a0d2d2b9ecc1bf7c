//! Variations of the verified template and corpus examples, re-verified by execution:
//! `sql2ibis/train_augmented.jsonl` and its rejects beside it.

use std::path::{Path, PathBuf};

use ibert_records::Example;

use super::{Step, StepContext, StepError, StepReport, read_all, templates, transpilation, verified_line, verify_into};
use crate::Candidate;
use crate::augment::augment;
use crate::multitask::verified_pairs;
use crate::progress::Progress;
use crate::verified::Outputs;

/// The verified augmentations and their rejects, in the output folder.
pub fn outputs(dir: &Path) -> Outputs {
    Outputs::beside(&dir.join("sql2ibis/train_augmented.jsonl"))
}

/// The augmentations of the verified sql_to_ibis examples among `examples`.
pub fn candidates(examples: &[Example], progress: &dyn Progress) -> Vec<Candidate> {
    let sources: Vec<&Example> = verified_pairs(examples).collect();
    let candidates: Vec<Candidate> = sources.iter().flat_map(|e| augment(e)).collect();
    progress.note(&format!("{} verified examples gave {} augmented candidates", sources.len(), candidates.len()));
    candidates
}

pub struct Augmentation;

impl Step for Augmentation {
    fn name(&self) -> &str {
        "augmentation"
    }

    fn title(&self) -> &str {
        "augmentation"
    }

    fn inputs(&self, context: &StepContext) -> Vec<PathBuf> {
        vec![templates::outputs(context.dir).train, transpilation::outputs(context.dir).train]
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        let outputs = outputs(context.dir);
        vec![outputs.train, outputs.rejects]
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let originals = read_all(&self.inputs(context))?;
        let written = verify_into(candidates(&originals, context.progress), "augmented", &outputs(context.dir), context)?;
        Ok(written.map(|written| StepReport::line(verified_line(&written))))
    }
}
