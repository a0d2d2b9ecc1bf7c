//! `ibert data stats`: what a dataset holds, as a table and optionally as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ibert_datagen::dataset::stats::Stats;

use super::data_multitask::read_datasets;
use crate::cli::StatsArgs;

pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let inputs = if args.inputs.is_empty() { vec![PathBuf::from("data/train_complete.jsonl")] } else { args.inputs.clone() };
    let stats = Stats::of(&read_datasets(&inputs)?);
    print!("{}", stats.render(args.features));
    if let Some(path) = &args.json {
        stats.write_json(path).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote the statistics as JSON to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
