//! A verification run and its files: the candidates verified with the seeded fixtures, the
//! verified examples and the rejects (each with its reason) written completely or not at all.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ibert_oracle::WorkerPool;
use ibert_records::{Example, JsonlWriter, RecordError};
use ibert_verify::{ReferenceDatabase, fixtures_for_seed};

use crate::progress::Progress;
use crate::records::{reject_record, verified_example};
use crate::{Candidate, Outcome, PipelineError, PipelineOptions, PipelineReport, verify_candidates};

/// Where a verification run writes its verified examples and its rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub train: PathBuf,
    pub rejects: PathBuf,
}

impl Outputs {
    /// `dir/train.jsonl` and `dir/rejects.jsonl`.
    pub fn in_folder(dir: &Path) -> Outputs {
        Outputs { train: dir.join("train.jsonl"), rejects: dir.join("rejects.jsonl") }
    }

    /// `FILE` and `FILE` with `.rejects.jsonl` in place of `.jsonl`.
    pub fn beside(train: &Path) -> Outputs {
        let stem = train.file_stem().map_or_else(|| "train_augmented".to_string(), |s| s.to_string_lossy().into_owned());
        Outputs { train: train.to_path_buf(), rejects: train.with_file_name(format!("{stem}.rejects.jsonl")) }
    }
}

/// What a run wrote: the verified examples (also kept in memory) and how many rejects.
pub struct Written {
    pub examples: Vec<Example>,
    pub rejected: u64,
}

/// Verifies `candidates` on the fixtures of `seed` (and on `references`) with a counter;
/// `None` when `interrupted` stopped the run (a note says so).
pub fn verify(
    candidates: Vec<Candidate>,
    pool: &WorkerPool,
    seed: u64,
    references: &[ReferenceDatabase],
    progress: &dyn Progress,
    interrupted: &AtomicBool,
) -> Result<Option<PipelineReport>, PipelineError> {
    let total = candidates.len();
    let options = PipelineOptions { references: references.to_vec(), ..PipelineOptions::new(pool.size(), fixtures_for_seed(seed)) };
    let counter = progress.counter(total as u64, "verifying", "");
    let report = verify_candidates(candidates, pool, &options, &|_| counter.tick(), interrupted)?;
    drop(counter);
    if report.cancelled {
        progress.note(&format!("interrupted after {} of {total} examples; no output was written", report.outcomes.len()));
        return Ok(None);
    }
    Ok(Some(report))
}

/// Writes the verified outcomes (labelled `source`) and the rejects, each file completely or
/// not at all.
pub fn write_outcomes(outcomes: &[Outcome], source: &str, outputs: &Outputs) -> Result<Written, RecordError> {
    let mut train = JsonlWriter::create(&outputs.train)?;
    let mut rejects = JsonlWriter::create(&outputs.rejects)?;
    let mut examples = Vec::new();
    for outcome in outcomes {
        if let Some(example) = verified_example(outcome, source) {
            train.write(&example)?;
            examples.push(example);
        }
        if let Some(reject) = reject_record(outcome, source) {
            rejects.write(&reject)?;
        }
    }
    let rejected = rejects.written();
    train.commit()?;
    rejects.commit()?;
    Ok(Written { examples, rejected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_go_next_to_the_output() {
        assert_eq!(Outputs::beside(Path::new("data/sql2ibis/train_augmented.jsonl")).rejects, PathBuf::from("data/sql2ibis/train_augmented.rejects.jsonl"));
    }
}
