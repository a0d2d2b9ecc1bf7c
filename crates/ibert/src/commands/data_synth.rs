//! `ibert data synth`: synthesized schemas and queries, translated and verified, one shard of
//! the run (all of it by default) into the run's folder; a re-run finishes what is missing.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::steps::marker::running_program;
use ibert_datagen::steps::multitask::check_dialects;
use ibert_datagen::synth::focus::focus_weights;
use ibert_datagen::synth::run::{RunOptions, RunReport, Shard, run_shard};
use ibert_datagen::synth::{SynthSpec, Synthesizer};

use crate::cli::SynthArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &SynthArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let mut spec = match &args.spec {
        Some(path) => SynthSpec::load(path)?,
        None => SynthSpec::default(),
    };
    if let Some(results) = &args.focus {
        let (weights, rows) =
            focus_weights(results, &args.focus_split, &spec.weights).with_context(|| format!("reading the eval results {}", results.display()))?;
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|row| vec![row.feature.name().to_string(), row.records.to_string(), row.failed.to_string(), format!("{:.2}", row.weight)])
            .collect();
        eprintln!("weights from {} (features of {} records):", results.display(), args.focus_split.display());
        eprint!("{}", ui::table(&["feature", "records", "failed", "weight"], &table));
        spec.weights = weights;
    }
    let shard = match args.shard {
        Some(shard) => shard,
        None => match Shard::from_environment(args.shards, &|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)? {
            Some((shard, variable)) => {
                eprintln!("shard {shard} (from {variable})");
                shard
            }
            None if args.shards.is_some_and(|n| n > 1) => {
                anyhow::bail!(
                    "--shards {} needs the shard's index in JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID; or pass --shard I/N",
                    args.shards.unwrap_or(1)
                )
            }
            None => Shard::WHOLE,
        },
    };
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    let derive_dialects = (!args.no_derive).then(|| args.dialects.clone());
    if let Some(dialects) = &derive_dialects {
        check_dialects(&pool, dialects)?;
    }
    let synthesizer = Synthesizer::new(args.verify.seed, spec);
    let options = RunOptions { synthesizer: &synthesizer, count: args.count, chunk_size: args.chunk_size, shard, derive_dialects, program: running_program()? };
    let report =
        run_shard(&args.output, &options, &pool, &ui::Terminal, interrupted).with_context(|| format!("synthesizing into {}", args.output.display()))?;
    print!("{}", render(&report, pool.size()));
    if report.interrupted {
        eprintln!("interrupted: the chunks finished are kept; run the same command again to make the rest");
        return Ok(ExitCode::from(INTERRUPTED));
    }
    if shard.count == 1 {
        println!("the run in {} is complete; `ibert data merge {}` makes the dataset", args.output.display(), args.output.display());
    } else {
        println!("shard {shard} of {} is complete; once every shard is, `ibert data merge {}` makes the dataset", args.output.display(), args.output.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts, rejects by reason, derived tasks, the most used features and where the time went.
fn render(report: &RunReport, workers: usize) -> String {
    let mut out = String::new();
    let wall = report.wall.as_secs_f64();
    let made = report.chunks_made;
    out.push_str(&format!(
        "{} queries in {} chunks ({made} made now, {} complete from before): {} verified pairs, {} derived records\n",
        report.queries,
        made + report.chunks_skipped,
        report.chunks_skipped,
        report.verified,
        report.derived
    ));
    let rejected: u64 = report.rejected.values().sum();
    let rows: Vec<Vec<String>> = report
        .rejected
        .iter()
        .map(|(reason, count)| vec![reason.clone(), count.to_string(), format!("{:.1}%", 100.0 * *count as f64 / report.queries.max(1) as f64)])
        .collect();
    out.push_str(&format!("\nnot kept: {rejected}\n"));
    out.push_str(&ui::table(&["reason", "queries", "share"], &rows));
    if !report.derived_per_task.is_empty() {
        let rows: Vec<Vec<String>> = report.derived_per_task.iter().map(|(task, n)| vec![task.clone(), n.to_string()]).collect();
        out.push_str("\nderived now\n");
        out.push_str(&ui::table(&["task", "records"], &rows));
    }
    if !report.features.is_empty() {
        let mut rows: Vec<(&String, &u64)> = report.features.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let rows: Vec<Vec<String>> = rows.into_iter().map(|(feature, n)| vec![feature.clone(), n.to_string()]).collect();
        out.push_str("\nfeatures of the pairs verified now\n");
        out.push_str(&ui::table(&["feature", "pairs"], &rows));
    }
    if made > 0 {
        let times = &report.times;
        let thread_seconds = times.verification.as_secs_f64() * workers as f64;
        let share = |seconds: f64| format!("{:.0}%", 100.0 * seconds / thread_seconds.max(1e-9));
        let t = &times.timings;
        out.push_str(&format!(
            "\ntime: {wall:.1} s wall; synthesis and translation {:.1} s, verification {:.1} s (of its {workers} threads: fixtures {}, Ibis compile {}, DuckDB {}, Ibis execution {}), derivation {:.1} s, writing {:.1} s\n",
            times.synthesis.as_secs_f64(),
            times.verification.as_secs_f64(),
            share(t.fixtures.as_secs_f64()),
            share(t.compile.as_secs_f64()),
            share(t.execute.as_secs_f64()),
            share(t.execute_ibis.as_secs_f64()),
            times.derivation.as_secs_f64(),
            times.writing.as_secs_f64(),
        ));
        out.push_str(&format!("throughput: {:.1} verified pairs/s end to end over the chunks made now\n", report.verified_made as f64 / wall.max(1e-9)));
    }
    out
}
