//! `ibert data export`: the splits of a dataset in the formats trainers read.

use std::process::ExitCode;

use anyhow::Context;
use ibert_datagen::dataset::export::{Format, export};

use crate::cli::ExportArgs;

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let format = Format::from_name(&args.format).context("an unknown format (clap checks the names)")?;
    let output = args.output.clone().unwrap_or_else(|| args.data.join("export").join(&args.format));
    let splits = args.data.join("splits");
    let exported = export(&splits, &output, format, &ibert_tasks::prompt::assistant_message)?;
    let counts: Vec<String> = exported.rows.iter().map(|(split, rows)| format!("{split} {rows}")).collect();
    println!("exported {} as {} ({})", splits.display(), args.format, counts.join(", "));
    for file in &exported.files {
        println!("  {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
