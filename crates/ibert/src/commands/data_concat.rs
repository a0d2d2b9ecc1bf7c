//! `ibert data concat`: dataset files merged into one, duplicates removed.

use std::path::PathBuf;
use std::process::ExitCode;

use ibert_datagen::dataset::concat::{Merged, Source, concat};
use ibert_records::read_jsonl;

use super::data_multitask::write_examples;
use crate::cli::ConcatArgs;
use crate::ui;

pub fn run(args: &ConcatArgs) -> anyhow::Result<ExitCode> {
    let merged = merge_files(&args.inputs)?;
    write_examples(&args.output, &merged.examples)?;
    print!("{}", render(&merged));
    println!("wrote {} examples to {}", merged.examples.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

pub(super) fn merge_files(paths: &[PathBuf]) -> anyhow::Result<Merged> {
    let mut sources = Vec::new();
    for path in paths {
        let examples = read_jsonl(path).map_err(|error| anyhow::anyhow!("{error}"))?;
        sources.push(Source { label: path.display().to_string(), examples });
    }
    Ok(concat(sources))
}

pub(super) fn render(merged: &Merged) -> String {
    let rows: Vec<Vec<String>> = merged.per_source.iter().map(|(label, (read, kept))| vec![label.clone(), read.to_string(), kept.to_string()]).collect();
    let mut out = ui::table(&["source", "read", "kept"], &rows);
    out.push_str(&format!("removed {} exact and {} near duplicates\n", merged.exact_duplicates, merged.near_duplicates));
    out
}
