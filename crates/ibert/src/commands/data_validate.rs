//! `ibert data validate FILE.jsonl [--db DATA]`: a verdict per record and a summary; exit
//! status 1 when any record is malformed, 3 when any is rejected, 2 when any could not be checked.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ibert_datagen::records::{candidate_from_example, verified_example};
use ibert_records::{Example, JsonlReader, JsonlWriter};
use ibert_verify::Verdict;

use super::verification_run::verify_with_progress;
use crate::cli::ValidateArgs;
use crate::exit::INTERRUPTED;

pub fn run(args: &ValidateArgs, interrupted: &AtomicBool) -> anyhow::Result<ExitCode> {
    let reader = JsonlReader::<Example>::open(&args.file)?;
    let mut candidates = Vec::new();
    let mut examples = Vec::new();
    let mut malformed = Vec::new();
    let mut skipped = Vec::new();
    for item in reader {
        match item {
            Ok((line, example)) => match candidate_from_example(&example) {
                Some(candidate) => {
                    candidates.push(candidate);
                    examples.push((line, example));
                }
                None => skipped.push((line, example.id.clone(), example.task())),
            },
            Err(error) => malformed.push(error.to_string()),
        }
    }
    eprintln!("{}: {} sql_to_ibis records to verify", args.file.display(), candidates.len());

    let (outcomes, summary) = if candidates.is_empty() {
        (Vec::new(), None)
    } else {
        let (pool, user) = crate::user_data::start_pool_with(&args.verify, args.data.db.as_deref())?;
        let references: Vec<_> = user.iter().map(|user| user.reference.clone()).collect();
        if let Some(user) = &user {
            eprintln!("verifying on the fixtures and, for records over its tables, on the data of --db: {}", user.summary);
        }
        let Some(run) = verify_with_progress(candidates, &pool, args.verify.seed, &references, interrupted)? else {
            return Ok(ExitCode::from(INTERRUPTED));
        };
        (run.report.outcomes, Some(run.summary))
    };

    if !args.quiet {
        for ((line, _), outcome) in examples.iter().zip(&outcomes) {
            match &outcome.verdict {
                Verdict::Verified(evidence) => println!(
                    "{}:{line} {} verified ({}, rows per fixture {:?})",
                    args.file.display(),
                    outcome.candidate.id,
                    if evidence.ordered { "ordered" } else { "multiset" },
                    evidence.fixture_rows
                ),
                Verdict::Rejected(reject) => {
                    println!("{}:{line} {} REJECTED {}: {}", args.file.display(), outcome.candidate.id, reject.reason, reject.detail)
                }
            }
        }
        for (line, id, task) in &skipped {
            println!("{}:{line} {id} skipped: `{task}` records are not checked by `data validate` yet", args.file.display());
        }
    }
    for error in &malformed {
        println!("{error} MALFORMED");
    }
    if let Some(rendered) = &summary {
        print!("{rendered}");
    }

    let verified = outcomes.iter().filter(|o| matches!(o.verdict, Verdict::Verified(_))).count();
    if let Some(path) = &args.output {
        let mut writer = JsonlWriter::create(path)?;
        for ((_, example), outcome) in examples.iter().zip(&outcomes) {
            if let Some(mut stamped) = verified_example(outcome, &example.meta.source) {
                stamped.meta = example.meta.clone();
                stamped.system_prompt = example.system_prompt.clone();
                writer.write(&stamped)?;
            }
        }
        writer.commit().with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {verified} verified records to {}", path.display());
    }
    println!("{}: {verified} verified, {} rejected, {} malformed, {} skipped", args.file.display(), outcomes.len() - verified, malformed.len(), skipped.len());
    // Malformed records are an error; then any record the check rejected; then any it could
    // not decide; else success.
    let reasons: Vec<_> = outcomes.iter().filter_map(|o| if let Verdict::Rejected(reject) = &o.verdict { Some(reject.reason) } else { None }).collect();
    Ok(if !malformed.is_empty() {
        ExitCode::from(crate::exit::ERROR)
    } else if reasons.iter().any(|reason| !reason.is_inconclusive()) {
        ExitCode::from(crate::exit::REJECTED)
    } else if !reasons.is_empty() {
        ExitCode::from(crate::exit::UNVERIFIED)
    } else {
        ExitCode::SUCCESS
    })
}
