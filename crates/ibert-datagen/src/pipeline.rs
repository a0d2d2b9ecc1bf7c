//! Verification of many candidates in parallel: N threads, each with its own DuckDB fixtures,
//! sharing one oracle pool. Outcomes come back in candidate order, whatever the scheduling, so a
//! run's output is the same for the same inputs.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ibert_oracle::{OracleError, WorkerPool};
use ibert_verify::{Aligned, FixtureConfig, FixtureError, ReferenceDatabase, Timings, Verdict, Verifier};

use crate::Candidate;
use crate::parallel::map_in_order_with;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Verification threads; one per oracle worker is right for most machines.
    pub threads: usize,
    pub fixtures: Vec<FixtureConfig>,
    /// Real data that pairs over its tables run on instead of generated fixtures.
    pub references: Vec<ReferenceDatabase>,
}

impl PipelineOptions {
    /// Generated fixtures only.
    pub fn new(threads: usize, fixtures: Vec<FixtureConfig>) -> Self {
        PipelineOptions { threads, fixtures, references: Vec::new() }
    }
}

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Oracle(#[from] OracleError),
    #[error(transparent)]
    Fixtures(#[from] FixtureError),
    /// A worker's verifier could not be made (its DuckDB database did not open).
    #[error("preparing a verifier: {0}")]
    Setup(String),
}

/// A candidate and what verification said about it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub candidate: Candidate,
    pub verdict: Verdict,
    /// The verification record for a verified candidate.
    pub verification: Option<ibert_records::Verification>,
}

/// What a run did and where its time went.
#[derive(Debug, Clone, Default)]
pub struct PipelineReport {
    pub outcomes: Vec<Outcome>,
    /// True when the run was cancelled before every candidate was verified.
    pub cancelled: bool,
    pub wall: Duration,
    /// Summed over threads.
    pub timings: Timings,
}

/// Verifies every candidate. `progress` is called after each one; setting `cancel` stops the
/// run after the candidates in flight.
pub fn verify_candidates(
    candidates: Vec<Candidate>,
    pool: &WorkerPool,
    options: &PipelineOptions,
    progress: &(dyn Fn(&Outcome) + Sync),
    cancel: &AtomicBool,
) -> Result<PipelineReport, PipelineError> {
    let started = Instant::now();
    let totals = Mutex::new(Timings::default());
    // A verifier per worker, with its own DuckDB fixtures; its timings join the totals when the
    // worker is done with it.
    let init = || Verifier::with_references(pool, &options.fixtures, &options.references).map(|verifier| TimedVerifier { verifier, totals: &totals });
    let work = |state: &mut Result<TimedVerifier, FixtureError>, _: usize, candidate: &Candidate| -> Result<Outcome, PipelineError> {
        let verifier = match state {
            Ok(timed) => &mut timed.verifier,
            Err(error) => return Err(PipelineError::Setup(error.to_string())),
        };
        verifier.shared = candidate.shared_fixtures.clone();
        let checked = if candidate.align_types {
            verifier.verify_aligned(&candidate.sql, &candidate.ibis, &candidate.tables, Some(&candidate.expr_name))?
        } else {
            Aligned { verdict: verifier.verify(&candidate.sql, &candidate.ibis, &candidate.tables, Some(&candidate.expr_name))?, program: None }
        };
        let Aligned { verdict, program } = checked;
        let verification = match &verdict {
            Verdict::Verified(evidence) => Some(verifier.verification(evidence)),
            Verdict::Rejected(_) => None,
        };
        let mut candidate = candidate.clone();
        if let Some(program) = program {
            candidate.ibis = program;
        }
        let outcome = Outcome { candidate, verdict, verification };
        progress(&outcome);
        Ok(outcome)
    };
    let outcomes = map_in_order_with(&candidates, options.threads, cancel, &init, &work)?;
    let cancelled = outcomes.is_none();
    let outcomes = outcomes.unwrap_or_default();
    Ok(PipelineReport { cancelled, outcomes, wall: started.elapsed(), timings: totals.into_inner().unwrap() })
}

/// A worker's verifier, whose timings are added to the run's totals when it is dropped.
struct TimedVerifier<'p, 't> {
    verifier: Verifier<'p>,
    totals: &'t Mutex<Timings>,
}

impl Drop for TimedVerifier<'_, '_> {
    fn drop(&mut self) {
        *self.totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) += &self.verifier.timings;
    }
}
