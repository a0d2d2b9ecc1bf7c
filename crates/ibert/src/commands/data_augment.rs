//! `ibert data augment`: variations of verified examples, re-verified by execution.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use ibert_datagen::steps::augmentation::candidates;
use ibert_datagen::verified::{Outputs, write_outcomes};

use super::data_generate::print_paths;
use super::data_multitask::read_datasets;
use super::verification_run::verify_with_progress;
use crate::cli::AugmentArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &AugmentArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let verified = read_datasets(&args.inputs)?;
    let candidates = candidates(&verified, &ui::Terminal);
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    let Some(run) = verify_with_progress(candidates, &pool, args.verify.seed, &[], interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    let outputs = Outputs::beside(&args.output);
    let written = write_outcomes(&run.report.outcomes, "augmented", &outputs)?;
    print!("{}", run.summary);
    print_paths(&written, &outputs);
    Ok(ExitCode::SUCCESS)
}
