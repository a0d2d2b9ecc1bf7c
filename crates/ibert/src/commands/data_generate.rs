//! `ibert data generate`: templates -> verified `train.jsonl` + `rejects.jsonl`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use ibert_datagen::steps::templates::candidates;
use ibert_datagen::verified::{Outputs, Written, write_outcomes};

use super::verification_run::verify_with_progress;
use crate::cli::GenerateArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &GenerateArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let candidates = candidates(args.templates.as_deref(), &args.only, &ui::Terminal)?;
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    let Some(run) = verify_with_progress(candidates, &pool, args.verify.seed, &[], interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    let outputs = Outputs::in_folder(&args.output);
    let written = write_outcomes(&run.report.outcomes, "template", &outputs)?;
    print!("{}", run.summary);
    print_paths(&written, &outputs);
    Ok(ExitCode::SUCCESS)
}

/// Where a verification run wrote its examples and its rejects.
pub(super) fn print_paths(written: &Written, outputs: &Outputs) {
    println!("wrote {} verified examples to {}", written.examples.len(), outputs.train.display());
    println!("wrote {} rejects with their reasons to {}", written.rejected, outputs.rejects.display());
}
