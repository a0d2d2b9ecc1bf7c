//! Every dataset file merged (duplicates removed), each record with the prompt a model sees for
//! it and its split by structure: `train_complete.jsonl` and `splits/{train,validation,test}.jsonl`.

use std::path::{Path, PathBuf};

use ibert_records::{ChatMessage, Example};

use super::{Step, StepContext, StepError, StepReport, augmentation, mining, multitask, synthesis, templates, transpilation};
use crate::dataset::concat::concat_files;
use crate::dataset::merge::{complete_file, split_file, write_dataset};
use crate::dataset::split::SPLITS;

/// The merged dataset, in the output folder.
pub fn output(dir: &Path) -> PathBuf {
    complete_file(dir)
}

/// The file of one split, in the output folder.
pub fn split_output(dir: &Path, split: &str) -> PathBuf {
    split_file(dir, split)
}

pub struct Concatenation<'a> {
    /// The messages of a record's prompt, system message first. The prompts are the task
    /// library's (`ibert-tasks`), which depends on the model crate; the binary passes them in so
    /// that dataset generation does not.
    pub prompt: &'a (dyn Fn(&Example) -> Vec<ChatMessage> + Sync),
}

impl Step for Concatenation<'_> {
    fn name(&self) -> &str {
        "concatenation"
    }

    fn title(&self) -> &str {
        "concatenation"
    }

    /// In order of preference, as the first copy of a duplicate is kept: the verified pairs, what
    /// was derived from them, what was mined.
    fn inputs(&self, context: &StepContext) -> Vec<PathBuf> {
        let dir = context.dir;
        let [synthesized, derived, _] = synthesis::outputs(dir);
        vec![
            templates::outputs(dir).train,
            transpilation::outputs(dir).train,
            synthesized,
            augmentation::outputs(dir).train,
            multitask::output(dir),
            derived,
            mining::output(dir),
        ]
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        let mut outputs = vec![output(context.dir)];
        outputs.extend(SPLITS.iter().map(|split| split_output(context.dir, split)));
        outputs
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let mut merged = concat_files(&self.inputs(context))?;
        write_dataset(&mut merged.examples, context.dir, self.prompt)?;
        Ok(Some(StepReport::line(format!(
            "{} examples ({} exact and {} near duplicates removed, and {} pairs similar to an earlier one with {} records derived from them), split by structure",
            merged.examples.len(),
            merged.exact_duplicates,
            merged.near_duplicates,
            merged.similar_pairs,
            merged.derived_from_similar
        ))))
    }
}
