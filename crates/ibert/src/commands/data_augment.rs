//! `ibert data augment`: variations of verified examples, re-verified by execution.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use ibert_datagen::Candidate;
use ibert_datagen::augment::augment;
use ibert_datagen::multitask::verified_pairs;
use ibert_records::Example;

use super::data_generate::{Outputs, verify_and_write};
use super::data_multitask::read_datasets;
use crate::cli::AugmentArgs;
use crate::exit::INTERRUPTED;
use crate::oracle_setup;

pub fn run(args: &AugmentArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let verified = read_datasets(&args.inputs)?;
    let candidates = candidates(&verified);
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    let Some(written) = verify_and_write(candidates, "augmented", &outputs(&args.output), &pool, args.verify.seed, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    print!("{}", written.summary);
    written.print_paths();
    Ok(ExitCode::SUCCESS)
}

/// The augmentations of the verified sql_to_ibis examples among `examples`.
pub(super) fn candidates(examples: &[Example]) -> Vec<Candidate> {
    let sources: Vec<&Example> = verified_pairs(examples).collect();
    let candidates: Vec<Candidate> = sources.iter().flat_map(|e| augment(e)).collect();
    eprintln!("{} verified examples gave {} augmented candidates", sources.len(), candidates.len());
    candidates
}

/// `FILE` and `FILE` with `.rejects.jsonl` in place of `.jsonl`.
pub(super) fn outputs(train: &Path) -> Outputs {
    let stem = train.file_stem().map_or_else(|| "train_augmented".to_string(), |s| s.to_string_lossy().into_owned());
    Outputs { train: train.to_path_buf(), rejects: train.with_file_name(format!("{stem}.rejects.jsonl")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn rejects_go_next_to_the_output() {
        assert_eq!(outputs(Path::new("data/sql2ibis/train_augmented.jsonl")).rejects, PathBuf::from("data/sql2ibis/train_augmented.rejects.jsonl"));
    }
}
