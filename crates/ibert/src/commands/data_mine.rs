//! `ibert data mine`: examples from real code and documentation, with provenance.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::mining::{MineReport, MineSource, count_files, mine, read_source_list, resolve};
use ibert_oracle::{PythonEnv, WorkerPool, cache_dir};

use super::data_multitask::write_examples;
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
    let Some(report) = mine_with_progress(&sources, &pool, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    write_examples(&args.output, &report.examples)?;
    print!("{}", render(&report));
    println!("wrote {} mined examples to {}", report.examples.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// The Ibis package of the oracle's environment, as a source.
pub(super) fn installed_ibis() -> anyhow::Result<MineSource> {
    let env = PythonEnv::ensure(&|_| {})?;
    let root = env.package_dir("ibis")?;
    let label = format!("ibis-framework {} (installed)", ibert_oracle::PINNED_IBIS_VERSION);
    Ok(MineSource { label, root, commit: None, ibis_package: true })
}

/// Every source mined in turn, with a progress bar; `None` when Ctrl-C stopped it.
pub(super) fn mine_with_progress(sources: &[MineSource], pool: &WorkerPool, interrupted: &AtomicBool) -> anyhow::Result<Option<MineReport>> {
    let mut total = MineReport::default();
    for source in sources {
        let bar = ui::progress_bar(count_files(source) as u64, "mining");
        bar.set_message(source.label.clone());
        let report = mine(source, pool, &|| bar.inc(1), interrupted)?;
        bar.finish_and_clear();
        if report.cancelled {
            eprintln!("interrupted; no output was written");
            return Ok(None);
        }
        eprintln!("{}: {} examples from {} files", source.label, report.examples.len(), report.files.values().sum::<usize>());
        total.merge(report);
    }
    Ok(Some(total))
}

pub(super) fn render(report: &MineReport) -> String {
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
