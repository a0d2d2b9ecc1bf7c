//! `ibert data mine`: examples from real code and documentation, with provenance.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::mining::{MineReport, installed_ibis, read_source_list, resolve};
use ibert_datagen::steps::mining::mine_sources;
use ibert_oracle::cache_dir;
use ibert_records::write_jsonl;

use crate::cli::MineArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &MineArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let mut specs = args.sources.clone();
    if let Some(list) = &args.source_list {
        specs.extend(read_source_list(list)?);
    }
    let mut sources = Vec::new();
    for spec in &specs {
        sources.push(resolve(spec, &cache_dir().join("mining")).with_context(|| format!("mining source `{spec}`"))?);
    }
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    if specs.is_empty() || args.ibis {
        sources.insert(0, installed_ibis()?);
    }
    let Some(report) = mine_sources(&sources, &pool, &ui::Terminal, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    write_jsonl(&args.output, &report.examples)?;
    print!("{}", render(&report));
    println!("wrote {} mined examples to {}", report.examples.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

fn render(report: &MineReport) -> String {
    let section = |title: &str, counts: &BTreeMap<String, usize>| {
        let rows: Vec<Vec<String>> = counts.iter().map(|(k, n)| vec![k.clone(), n.to_string()]).collect();
        if rows.is_empty() { String::new() } else { format!("\n{}", ui::table(&[title, "count"], &rows)) }
    };
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    for example in &report.examples {
        *per_task
            .entry(
                format!("{} ({:?})", example.task(), example.verification.as_ref().map(|v| v.level).unwrap_or(ibert_records::VerificationLevel::Parsed))
                    .to_lowercase(),
            )
            .or_default() += 1;
    }
    [
        section("files read", &report.files),
        section("files skipped", &report.skipped),
        section("found", &report.found),
        section("compiled by real Ibis", &report.checks),
        section("examples (level)", &per_task),
    ]
    .concat()
}
