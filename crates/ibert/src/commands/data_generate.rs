//! `ibert data generate`: templates -> verified `train.jsonl` + `rejects.jsonl`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::records::{reject_record, verified_example};
use ibert_datagen::{Candidate, expand_template, load_embedded_templates, load_templates_dir};
use ibert_records::JsonlWriter;

use super::INTERRUPTED;
use super::verification_run::verify_with_progress;
use crate::cli::GenerateArgs;

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

    let Some(run) = verify_with_progress(candidates, &args.verify, interrupted)? else {
        return Ok(ExitCode::from(INTERRUPTED));
    };

    let train_path = args.output.join("train.jsonl");
    let rejects_path = args.output.join("rejects.jsonl");
    let mut train = JsonlWriter::create(&train_path)?;
    let mut rejects = JsonlWriter::create(&rejects_path)?;
    for outcome in &run.report.outcomes {
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

    print!("{}", run.summary);
    println!("wrote {verified} verified examples to {}", train_path.display());
    println!("wrote {rejected} rejects with their reasons to {}", rejects_path.display());
    Ok(ExitCode::SUCCESS)
}
