//! Examples mined from the installed Ibis package (its docstrings, their programs compiled by
//! real Ibis): `mining/ibis_mined.jsonl`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ibert_oracle::{OracleError, WorkerPool};
use ibert_records::write_jsonl;

use super::{Step, StepContext, StepError, StepReport};
use crate::mining::{MineReport, MineSource, count_files, installed_ibis, mine};
use crate::progress::Progress;

/// The mined examples, in the output folder.
pub fn output(dir: &Path) -> PathBuf {
    dir.join("mining/ibis_mined.jsonl")
}

/// Every source mined in turn, with a counter each; `None` when interrupted (a note says so).
pub fn mine_sources(sources: &[MineSource], pool: &WorkerPool, progress: &dyn Progress, interrupted: &AtomicBool) -> Result<Option<MineReport>, OracleError> {
    let mut total = MineReport::default();
    for source in sources {
        let counter = progress.counter(count_files(source) as u64, "mining", &source.label);
        let report = mine(source, pool, &|| counter.tick(), interrupted)?;
        drop(counter);
        if report.cancelled {
            progress.note("interrupted; no output was written");
            return Ok(None);
        }
        progress.note(&format!("{}: {} examples from {} files", source.label, report.examples.len(), report.files.values().sum::<usize>()));
        total.merge(report);
    }
    Ok(Some(total))
}

pub struct Mining;

impl Step for Mining {
    fn name(&self) -> &str {
        "mining"
    }

    fn title(&self) -> &str {
        "mining the installed Ibis package"
    }

    /// None but the Ibis package of the pinned environment, which the Ibis version and the
    /// program (which embeds the lock file) stand for.
    fn inputs(&self, _: &StepContext) -> Vec<PathBuf> {
        Vec::new()
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        vec![output(context.dir)]
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let Some(mined) = mine_sources(&[installed_ibis()?], context.pool, context.progress, context.interrupted)? else {
            return Ok(None);
        };
        write_jsonl(&output(context.dir), &mined.examples)?;
        Ok(Some(StepReport::line(format!("{} examples from {} files", mined.examples.len(), mined.files.values().sum::<usize>()))))
    }
}
