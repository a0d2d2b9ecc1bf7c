//! The verification step shared by `data generate` and `data validate`: start the oracle, verify
//! with a progress bar, and render the summary.

use std::sync::atomic::AtomicBool;

use ibert_datagen::{Candidate, PipelineOptions, PipelineReport, Summary, verify_candidates};
use ibert_verify::{DEFAULT_FIXTURES, FixtureConfig, ReferenceDatabase};

use super::summary;
use ibert_oracle::WorkerPool;

use crate::ui;

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
    let total = candidates.len();
    let pipeline = PipelineOptions { references: references.to_vec(), ..PipelineOptions::new(pool.size(), fixtures_for_seed(seed)) };
    let bar = ui::progress_bar(total as u64, "verifying");
    let report = verify_candidates(candidates, pool, &pipeline, &|_| bar.inc(1), interrupted)?;
    bar.finish_and_clear();
    if report.cancelled {
        eprintln!("interrupted after {} of {total} examples; no output was written", report.outcomes.len());
        return Ok(None);
    }
    let summary = summary::render(&Summary::of(&report.outcomes), &report, pool.size(), &pool.stats());
    Ok(Some(VerificationRun { report, summary }))
}

/// The default fixtures with their seeds shifted by `1000 * seed`.
pub(super) fn fixtures_for_seed(seed: u64) -> Vec<FixtureConfig> {
    DEFAULT_FIXTURES.iter().map(|config| FixtureConfig { seed: config.seed.wrapping_add(seed.wrapping_mul(1000)), rows: config.rows }).collect()
}
