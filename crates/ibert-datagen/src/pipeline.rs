//! Verification of many candidates in parallel: N threads, each with its own DuckDB fixtures,
//! sharing one oracle pool. Outcomes come back in candidate order, whatever the scheduling, so a
//! run's output is the same for the same inputs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ibert_oracle::{OracleError, WorkerPool};
use ibert_verify::{Aligned, FixtureConfig, FixtureError, ReferenceDatabase, Timings, Verdict, Verifier};

use crate::Candidate;

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
/// threads after their current candidate.
pub fn verify_candidates(
    candidates: Vec<Candidate>,
    pool: &WorkerPool,
    options: &PipelineOptions,
    progress: &(dyn Fn(&Outcome) + Sync),
    cancel: &AtomicBool,
) -> Result<PipelineReport, PipelineError> {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Outcome>>> = candidates.iter().map(|_| Mutex::new(None)).collect();
    let totals = Mutex::new(Timings::default());
    let failure: Mutex<Option<PipelineError>> = Mutex::new(None);

    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                let mut verifier = match Verifier::with_references(pool, &options.fixtures, &options.references) {
                    Ok(verifier) => verifier,
                    Err(error) => {
                        failure.lock().unwrap().get_or_insert(error.into());
                        return;
                    }
                };
                loop {
                    if cancel.load(Ordering::Relaxed) || failure.lock().unwrap().is_some() {
                        break;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(candidate) = candidates.get(index) else { break };
                    let checked = if candidate.align_types {
                        verifier.verify_aligned(&candidate.sql, &candidate.ibis, &candidate.tables, Some(&candidate.expr_name))
                    } else {
                        verifier
                            .verify(&candidate.sql, &candidate.ibis, &candidate.tables, Some(&candidate.expr_name))
                            .map(|verdict| Aligned { verdict, program: None })
                    };
                    let Aligned { verdict, program } = match checked {
                        Ok(checked) => checked,
                        Err(error) => {
                            failure.lock().unwrap().get_or_insert(error.into());
                            break;
                        }
                    };
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
                    *slots[index].lock().unwrap() = Some(outcome);
                }
                *totals.lock().unwrap() += &verifier.timings;
            });
        }
    });

    if let Some(error) = failure.into_inner().unwrap() {
        return Err(error);
    }
    let outcomes: Vec<Outcome> = slots.into_iter().filter_map(|slot| slot.into_inner().unwrap()).collect();
    Ok(PipelineReport { cancelled: outcomes.len() < candidates.len(), outcomes, wall: started.elapsed(), timings: totals.into_inner().unwrap() })
}
