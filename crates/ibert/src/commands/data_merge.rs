//! `ibert data merge`: synthesis runs or shards combined into one dataset with its splits.

use std::process::ExitCode;

use ibert_datagen::dataset::merge::merge_runs;
use ibert_records::{ChatMessage, Example};
use ibert_tasks::Prompt;

use crate::cli::MergeArgs;
use crate::ui;

pub fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let prompt = |example: &Example| -> Vec<ChatMessage> { Prompt::of(example).messages };
    let report = merge_runs(&args.inputs, &args.output, &prompt)?;
    let merged = &report.merged;
    println!(
        "{} records ({} exact and {} near duplicates removed, and {} pairs similar to an earlier one with {} records derived from them)",
        merged.examples.len(),
        merged.exact_duplicates,
        merged.near_duplicates,
        merged.similar_pairs,
        merged.derived_from_similar
    );
    let mut per_split: std::collections::BTreeMap<(String, String), usize> = std::collections::BTreeMap::new();
    for example in &merged.examples {
        *per_split.entry((example.task().to_string(), example.meta.split.clone().unwrap_or_default())).or_default() += 1;
    }
    let rows: Vec<Vec<String>> = per_split.iter().map(|((task, split), n)| vec![task.clone(), split.clone(), n.to_string()]).collect();
    print!("{}", ui::table(&["task", "split", "records"], &rows));
    print!("{}", report.stats.render(40));
    for file in &report.files {
        println!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
