//! `ibert data concat`: dataset files merged into one, duplicates removed.

use std::process::ExitCode;

use ibert_datagen::dataset::concat::{Merged, concat_files};
use ibert_records::write_jsonl;

use crate::cli::ConcatArgs;
use crate::ui;

pub fn run(args: &ConcatArgs) -> anyhow::Result<ExitCode> {
    let merged = concat_files(&args.inputs)?;
    write_jsonl(&args.output, &merged.examples)?;
    print!("{}", render(&merged));
    println!("wrote {} examples to {}", merged.examples.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

fn render(merged: &Merged) -> String {
    let rows: Vec<Vec<String>> = merged.per_source.iter().map(|(label, (read, kept))| vec![label.clone(), read.to_string(), kept.to_string()]).collect();
    let mut out = ui::table(&["source", "read", "kept"], &rows);
    out.push_str(&format!(
        "removed {} exact and {} near duplicates, and {} pairs similar to an earlier one with {} records derived from them\n",
        merged.exact_duplicates, merged.near_duplicates, merged.similar_pairs, merged.derived_from_similar
    ));
    out
}
