//! What the merged dataset holds: `stats.json`, and the table printed at the end of the run.

use std::path::{Path, PathBuf};

use ibert_records::{Example, read_jsonl};

use super::{Step, StepContext, StepError, StepReport, concatenation};
use crate::dataset::stats::Stats;

/// The statistics as JSON, in the output folder.
pub fn output(dir: &Path) -> PathBuf {
    dir.join("stats.json")
}

/// How many of the most common features the printed table lists.
const FEATURES: usize = 15;

pub struct Statistics;

impl Step for Statistics {
    fn name(&self) -> &str {
        "statistics"
    }

    fn title(&self) -> &str {
        "statistics"
    }

    fn inputs(&self, context: &StepContext) -> Vec<PathBuf> {
        vec![concatenation::output(context.dir)]
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        vec![output(context.dir)]
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let stats = Stats::of(&read_jsonl::<Example>(&concatenation::output(context.dir))?);
        let path = output(context.dir);
        stats.write_json(&path).map_err(|source| StepError::Io { action: "writing", path, source })?;
        Ok(Some(StepReport { line: format!("{} records", stats.total), summary: Some(stats.render(FEATURES)) }))
    }
}
