//! `ibert data multitask`: the other five tasks derived from verified sql_to_ibis examples.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::steps::multitask::{check_dialects, derive_from, render};
use ibert_records::{Example, read_jsonl, write_jsonl};

use crate::cli::MultitaskArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &MultitaskArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let verified = read_datasets(&args.inputs)?;
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    check_dialects(&pool, &args.dialects)?;
    let Some(report) = derive_from(&verified, &pool, &args.dialects, &ui::Terminal, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    write_jsonl(&args.output, &report.examples)?;
    print!("{}", render(&report));
    println!("wrote {} examples to {}", report.examples.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Every record of `paths`, in order; a bad line is an error naming its file and line.
pub(super) fn read_datasets(paths: &[PathBuf]) -> anyhow::Result<Vec<Example>> {
    let mut examples = Vec::new();
    for path in paths {
        let records: Vec<Example> = read_jsonl(path).with_context(|| format!("reading {} (run `ibert data generate` first to make it)", path.display()))?;
        examples.extend(records);
    }
    Ok(examples)
}
