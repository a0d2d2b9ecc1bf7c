//! `ibert data mine`: examples from real code and documentation, with provenance.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::mining::{MineReport, installed_ibis, pypi, read_source_list, resolve};
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
    let work = cache_dir().join("mining");
    let mut sources = Vec::new();
    for spec in &specs {
        sources.push(resolve(spec, &work).with_context(|| format!("mining source `{spec}`"))?);
    }
    let curated = pypi::curated();
    for spec in &args.pypi {
        let package = pypi::find(spec, &curated)?;
        eprintln!("fetching {}=={} ({}) from {}", package.name, package.version, package.file, args.index_url);
        sources.push(pypi::fetch_package(&package, &args.index_url, &work).with_context(|| format!("--pypi {spec}"))?);
    }
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    if (specs.is_empty() && args.pypi.is_empty()) || args.ibis {
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
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    for example in &report.examples {
        let level = format!("{:?}", example.verification.as_ref().map(|v| v.level).unwrap_or(ibert_records::VerificationLevel::Parsed)).to_lowercase();
        *per_task.entry(format!("{} ({level})", example.task())).or_default() += 1;
        let source = example.meta.provenance.as_ref().map_or("unknown", |provenance| provenance.source.as_str());
        *per_source.entry(format!("{source} ({level})")).or_default() += 1;
    }
    [
        section("files read", &report.files),
        section("files skipped", &report.skipped),
        section("found", &report.found),
        section("compiled by real Ibis", &report.checks),
        section("examples (level)", &per_task),
        section("examples per source (level)", &per_source),
    ]
    .concat()
}
