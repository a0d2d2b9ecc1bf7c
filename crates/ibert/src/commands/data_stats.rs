//! `ibert data stats`: what a dataset holds, as a table and optionally as JSON.

use std::path::{Path, PathBuf};
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
        write_json(path, &stats)?;
        println!("wrote the statistics as JSON to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `stats` as pretty JSON, through a temporary file renamed into place.
pub(super) fn write_json(path: &Path, stats: &Stats) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let temp = builder.tempfile_in(dir).with_context(|| format!("writing in {}", dir.display()))?;
    serde_json::to_writer_pretty(&temp, stats).with_context(|| format!("writing {}", path.display()))?;
    temp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
