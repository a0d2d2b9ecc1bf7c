//! `ibert data generate`: templates -> verified `train.jsonl` + `rejects.jsonl`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::records::{reject_record, verified_example};
use ibert_datagen::{Candidate, PipelineOptions, Summary, expand_template, load_embedded_templates, load_templates_dir, verify_candidates};
use ibert_records::JsonlWriter;
use ibert_verify::{DEFAULT_FIXTURES, FixtureConfig};

use super::{INTERRUPTED, summary};
use crate::cli::GenerateArgs;
use crate::{oracle_setup, ui};

pub fn run(args: &GenerateArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let templates = match &args.templates {
        Some(dir) => load_templates_dir(dir)?,
        None => load_embedded_templates()?,
    };
    let templates: Vec<_> = if args.only.is_empty() {
        templates
    } else {
        let unknown: Vec<&String> = args.only.iter().filter(|name| !templates.iter().any(|t| &t.name == *name)).collect();
        anyhow::ensure!(unknown.is_empty(), "no template named {}", unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "));
        templates.into_iter().filter(|t| args.only.contains(&t.name)).collect()
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    for template in &templates {
        candidates.extend(expand_template(template)?);
    }
    eprintln!("{} templates expanded to {} candidate examples", templates.len(), candidates.len());

    let pool = oracle_setup::start_pool(&args.verify)?;
    let options = PipelineOptions { threads: pool.size(), fixtures: fixtures_for_seed(args.verify.seed) };
    let bar = ui::progress_bar(candidates.len() as u64, "verifying");
    let report = verify_candidates(candidates, &pool, &options, &|_| bar.inc(1), interrupted)?;
    bar.finish_and_clear();
    if report.cancelled {
        eprintln!("interrupted: {} of the examples were verified; no output was written", report.outcomes.len());
        return Ok(ExitCode::from(INTERRUPTED));
    }

    let train_path = args.output.join("train.jsonl");
    let rejects_path = args.output.join("rejects.jsonl");
    let mut train = JsonlWriter::create(&train_path)?;
    let mut rejects = JsonlWriter::create(&rejects_path)?;
    for outcome in &report.outcomes {
        if let Some(example) = verified_example(outcome, "template") {
            train.write(&example)?;
        }
        if let Some(reject) = reject_record(outcome, "template") {
            rejects.write(&reject)?;
        }
    }
    let (verified, rejected) = (train.written(), rejects.written());
    train.commit().with_context(|| format!("writing {}", train_path.display()))?;
    rejects.commit().with_context(|| format!("writing {}", rejects_path.display()))?;

    let summary = Summary::of(&report.outcomes);
    print!("{}", summary::render(&summary, &report, pool.size(), &pool.stats()));
    println!("wrote {verified} verified examples to {}", train_path.display());
    println!("wrote {rejected} rejects with their reasons to {}", rejects_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The default fixtures with their seeds shifted by `seed`.
pub fn fixtures_for_seed(seed: u64) -> Vec<FixtureConfig> {
    DEFAULT_FIXTURES.iter().map(|config| FixtureConfig { seed: config.seed.wrapping_add(seed.wrapping_mul(1000)), rows: config.rows }).collect()
}
