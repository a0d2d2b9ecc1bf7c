//! `ibert data all`: the whole pipeline in one command, with the embedded defaults: the
//! templates and the transpiled SQL corpus verified, augmented (and re-verified), the installed
//! Ibis package mined, the other tasks derived, queries synthesized over generated schemas
//! (verified, with their own derived tasks), everything merged and counted. The stages are the
//! steps of `ibert_datagen::steps`, listed here in order; each writes its files completely or
//! not at all, and one whose files are complete from an earlier run is skipped.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;

use ibert_datagen::dataset::stats::Stats;
use ibert_datagen::steps::augmentation::Augmentation;
use ibert_datagen::steps::concatenation::{self, Concatenation};
use ibert_datagen::steps::mining::Mining;
use ibert_datagen::steps::multitask::{MultitaskDerivation, check_dialects};
use ibert_datagen::steps::statistics::{self, Statistics};
use ibert_datagen::steps::synthesis::Synthesis;
use ibert_datagen::steps::templates::Templates;
use ibert_datagen::steps::transpilation::Transpilation;
use ibert_datagen::steps::{Step, StepContext, StepRun, marker, run_step};
use ibert_records::{ChatMessage, Example};
use ibert_tasks::Prompt;

use crate::cli::AllArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &AllArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    check_dialects(&pool, &args.dialects)?;
    // Every record carries the exact prompt a model sees for it.
    let prompt = |example: &Example| -> Vec<ChatMessage> { Prompt::of(example).messages };
    let steps: Vec<Box<dyn Step + '_>> = vec![
        Box::new(Templates),
        Box::new(Transpilation { corpus: args.corpus.clone() }),
        Box::new(Augmentation),
        Box::new(Mining),
        Box::new(MultitaskDerivation { dialects: args.dialects.clone() }),
        Box::new(Synthesis { count: args.synth_count, dialects: args.dialects.clone() }),
        Box::new(Concatenation { prompt: &prompt }),
        Box::new(Statistics),
    ];

    let context = StepContext::new(&args.output, &pool, args.verify.seed, &ui::Terminal, interrupted)?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut summaries: Vec<(&str, Option<String>)> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        eprintln!("\n== {}/{} {}", index + 1, steps.len(), step.title());
        let stage = Instant::now();
        let (report, detail) = match run_step(step.as_ref(), &context)? {
            StepRun::Interrupted => return Ok(ExitCode::from(INTERRUPTED)),
            StepRun::Ran(report) => {
                let detail = report.line.clone();
                (report, detail)
            }
            StepRun::Skipped(report) => {
                let marker = marker::path(&args.output, step.name());
                eprintln!("skipped: its files are complete and made from the same inputs ({}): {}", marker.display(), report.line);
                let detail = format!("{} (from an earlier run)", report.line);
                (report, detail)
            }
        };
        rows.push(vec![step.name().to_string(), format!("{:.1} s", stage.elapsed().as_secs_f64()), detail]);
        summaries.push((step.title(), report.summary));
    }

    // The last step's summary (the statistics of the dataset) first, then the others'.
    if let Some((_, Some(last))) = summaries.pop() {
        print!("{last}");
    }
    for (title, summary) in summaries {
        if let Some(summary) = summary {
            println!("\n{title}\n{summary}");
        }
    }
    println!("\n{}", ui::table(&["stage", "time", "result"], &rows));
    let (complete_path, stats_path) = (concatenation::output(&args.output), statistics::output(&args.output));
    let stats: Stats = serde_json::from_str(&std::fs::read_to_string(&stats_path)?).with_context(|| format!("reading {}", stats_path.display()))?;
    println!("wrote {} ({} examples) and {}", complete_path.display(), stats.total, stats_path.display());
    let default = ibert_catalog::builtin_model(ibert_catalog::DEFAULT_MODEL_NAME).expect("the default model is built in");
    println!(
        "the task commands fetch their model ({}, {:.1} GB) on first use; `ibert model info` fetches it now",
        default.name,
        default.file.size as f64 / 1e9
    );
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
