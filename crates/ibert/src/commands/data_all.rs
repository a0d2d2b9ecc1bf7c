//! `ibert data all`: the whole pipeline in one command, with the embedded defaults: the
//! templates and the transpiled SQL corpus verified, augmented (and re-verified), the installed
//! Ibis package mined, the other tasks derived, everything merged and counted. Each stage writes
//! its files completely or not at all.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ibert_datagen::dataset::split::{TEST, TRAIN, VALIDATION, assign_splits};
use ibert_datagen::dataset::stats::Stats;
use ibert_datagen::transpiled::transpile_corpus;
use ibert_records::Example;
use ibert_tasks::Prompt;
use ibert_transpile::corpus::Corpus;

use super::data_augment::{candidates as augment_candidates, outputs as augment_outputs};
use super::data_concat::merge_files;
use super::data_generate::{Outputs, template_candidates, verify_and_write};
use super::data_mine::{installed_ibis, mine_with_progress};
use super::data_multitask::{check_dialects, derive_with_progress, render as render_multitask, write_examples};
use super::data_stats::write_json;
use crate::cli::AllArgs;
use crate::exit::INTERRUPTED;
use crate::{oracle_setup, ui};

pub fn run(args: &AllArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut stages: Vec<(String, Duration, String)> = Vec::new();
    let pool = oracle_setup::start_pool(&args.verify, &[])?;
    check_dialects(&pool, &args.dialects)?;
    let seed = args.verify.seed;

    eprintln!("\n== 1/7 templates");
    let stage = Instant::now();
    let candidates = template_candidates(None, &[])?;
    let Some(templates) = verify_and_write(candidates, "template", &Outputs::in_folder(&args.output.join("sql2ibis")), &pool, seed, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    stages.push(("templates".into(), stage.elapsed(), format!("{} verified, {} rejected", templates.examples.len(), templates.rejected)));
    let mut verified_files: Vec<PathBuf> = vec![templates.train.clone()];
    let mut originals = templates.examples;

    eprintln!("\n== 2/7 transpiled SQL corpus");
    let stage = Instant::now();
    if args.corpus.is_dir() {
        let mut candidates = Vec::new();
        let mut refused = 0;
        for corpus in Corpus::load_dir(&args.corpus)? {
            let transpiled = transpile_corpus(&corpus);
            refused += transpiled.refused.len();
            candidates.extend(transpiled.candidates);
        }
        eprintln!("{} corpus queries translated ({refused} refused by the transpiler)", candidates.len());
        let Some(transpiled) = verify_and_write(candidates, "transpiler", &Outputs::in_folder(&args.output.join("transpiled")), &pool, seed, interrupted)?
        else {
            return Ok(ExitCode::from(INTERRUPTED));
        };
        let detail = format!("{} verified, {} rejected, {refused} refused", transpiled.examples.len(), transpiled.rejected);
        stages.push(("transpiled corpus".into(), stage.elapsed(), detail));
        verified_files.push(transpiled.train.clone());
        originals.extend(transpiled.examples);
    } else {
        eprintln!("{} does not exist: skipped", args.corpus.display());
        stages.push(("transpiled corpus".into(), stage.elapsed(), format!("skipped ({} not found)", args.corpus.display())));
    }

    eprintln!("\n== 3/7 augmentation");
    let stage = Instant::now();
    let candidates = augment_candidates(&originals);
    let outputs = augment_outputs(&args.output.join("sql2ibis/train_augmented.jsonl"));
    let Some(augmented) = verify_and_write(candidates, "augmented", &outputs, &pool, seed, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    stages.push(("augmentation".into(), stage.elapsed(), format!("{} verified, {} rejected", augmented.examples.len(), augmented.rejected)));
    verified_files.push(augmented.train.clone());

    eprintln!("\n== 4/7 mining the installed Ibis package");
    let stage = Instant::now();
    let Some(mined) = mine_with_progress(&[installed_ibis()?], &pool, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    let mined_path = args.output.join("mining/ibis_mined.jsonl");
    write_examples(&mined_path, &mined.examples)?;
    stages.push(("mining".into(), stage.elapsed(), format!("{} examples from {} files", mined.examples.len(), mined.files.values().sum::<usize>())));

    // The other tasks come from the original pairs: derived from every renamed copy as well,
    // they would mostly repeat themselves.
    eprintln!("\n== 5/7 multi-task derivation");
    let stage = Instant::now();
    let Some(report) = derive_with_progress(&originals, &pool, &args.dialects, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };
    let multitask_path = args.output.join("multitask/train.jsonl");
    write_examples(&multitask_path, &report.examples)?;
    let detail = format!("{} examples, {} distinct real error types", report.examples.len(), report.error_types.len());
    let multitask_summary = render_multitask(&report);
    stages.push(("multi-task".into(), stage.elapsed(), detail));

    eprintln!("\n== 6/7 concatenation");
    let stage = Instant::now();
    let mut inputs = verified_files;
    inputs.push(multitask_path);
    inputs.push(mined_path);
    let mut merged = merge_files(&inputs)?;
    // Every record carries the exact prompt a model sees for it, and its split by structure.
    for example in &mut merged.examples {
        let prompt = Prompt::of(example);
        example.system_prompt = prompt.messages.first().map(|message| message.content.clone());
        example.messages = Some(prompt.messages);
    }
    assign_splits(&mut merged.examples);
    let complete_path = args.output.join("train_complete.jsonl");
    write_examples(&complete_path, &merged.examples)?;
    for split in [TRAIN, VALIDATION, TEST] {
        let records: Vec<Example> = merged.examples.iter().filter(|example| example.meta.split.as_deref() == Some(split)).cloned().collect();
        write_examples(&args.output.join(format!("splits/{split}.jsonl")), &records)?;
    }
    let detail = format!(
        "{} examples ({} exact and {} near duplicates removed), split by structure",
        merged.examples.len(),
        merged.exact_duplicates,
        merged.near_duplicates
    );
    stages.push(("concatenation".into(), stage.elapsed(), detail));

    eprintln!("\n== 7/7 statistics");
    // The task commands' default model, so that everything is ready after this one command.
    let model = if args.skip_model {
        "skipped (--skip-model)".to_string()
    } else {
        crate::model_config::default_model(&ibert_oracle::cache_dir())?.display().to_string()
    };
    let stats = Stats::of(&merged.examples);
    let stats_path = args.output.join("stats.json");
    write_json(&stats_path, &stats)?;

    print!("{}", stats.render(15));
    println!("\nmulti-task derivation\n{}", multitask_summary);
    let rows: Vec<Vec<String>> = stages.iter().map(|(name, time, detail)| vec![name.clone(), format!("{:.1} s", time.as_secs_f64()), detail.clone()]).collect();
    println!("\n{}", ui::table(&["stage", "time", "result"], &rows));
    println!("wrote {} ({} examples) and {}", complete_path.display(), merged.examples.len(), stats_path.display());
    println!("default model for the task commands: {model}");
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
