//! The verification step shared by `data generate`, `data augment` and `data validate`: verify
//! with a progress bar, and render the summary.

use std::sync::atomic::AtomicBool;

use ibert_datagen::{Candidate, PipelineReport, Summary};
use ibert_oracle::WorkerPool;
use ibert_verify::ReferenceDatabase;

use super::summary;
use crate::ui;

/// The seeded fixtures, used by the commands that verify one program at a time.
pub(super) use ibert_verify::fixtures_for_seed;

/// A finished run and its rendered summary.
pub struct VerificationRun {
    pub report: PipelineReport,
    pub summary: String,
}

/// Verifies `candidates`; `None` when Ctrl-C stopped the run (a message has been printed).
pub fn verify_with_progress(
    candidates: Vec<Candidate>,
    pool: &WorkerPool,
    seed: u64,
    references: &[ReferenceDatabase],
    interrupted: &AtomicBool,
) -> anyhow::Result<Option<VerificationRun>> {
    let Some(report) = ibert_datagen::verified::verify(candidates, pool, seed, references, &ui::Terminal, interrupted)? else {
        return Ok(None);
    };
    let summary = summary::render(&Summary::of(&report.outcomes), &report, pool.size(), &pool.stats());
    Ok(Some(VerificationRun { report, summary }))
}
