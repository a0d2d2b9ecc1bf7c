//! Between pipeline outcomes and dataset records.

use ibert_records::{Context, Example, Meta, Payload, RejectRecord, RejectedError, SqlToIbisInput, SqlToIbisTarget, TableContext};
use ibert_verify::Verdict;

use crate::{Candidate, Outcome};

/// The dataset record of a verified outcome; `None` for a rejected one.
pub fn verified_example(outcome: &Outcome, source: &str) -> Option<Example> {
    let verification = outcome.verification.clone()?;
    let candidate = &outcome.candidate;
    Some(Example {
        id: candidate.id.clone(),
        payload: Payload::SqlToIbis {
            input: SqlToIbisInput { sql: candidate.sql.clone() },
            target: SqlToIbisTarget { ibis: candidate.ibis.clone(), expr_name: candidate.expr_name.clone() },
        },
        dialect: "duckdb".into(),
        backend: "duckdb".into(),
        ibis_version: verification.ibis_version.clone(),
        system_prompt: None,
        messages: None,
        context: Context { tables: candidate.tables.iter().map(|(name, schema)| (name.clone(), TableContext { schema: schema.clone() })).collect() },
        meta: meta_of(candidate, source),
        verification: Some(verification),
    })
}

/// The rejects-file record of a rejected outcome; `None` for a verified one.
pub fn reject_record(outcome: &Outcome, source: &str) -> Option<RejectRecord> {
    let Verdict::Rejected(reject) = &outcome.verdict else { return None };
    let candidate = &outcome.candidate;
    Some(RejectRecord {
        id: candidate.id.clone(),
        reason: reject.reason.to_string(),
        detail: reject.detail.clone(),
        error: reject.failure.as_ref().map(|failure| RejectedError {
            error_type: failure.error_type.clone(),
            message: failure.message.clone(),
            line: failure.line,
        }),
        sql: Some(candidate.sql.clone()),
        ibis: Some(candidate.ibis.clone()),
        meta: meta_of(candidate, source),
    })
}

fn meta_of(candidate: &Candidate, source: &str) -> Meta {
    Meta {
        template: Some(candidate.template.clone()).filter(|t| !t.is_empty()),
        variation: Some(candidate.variation.clone()).filter(|v| !v.is_empty()),
        source: source.to_string(),
        features: candidate.features.clone(),
        difficulty: candidate.difficulty.clone(),
        provenance: None,
        derived_from: candidate.derived_from.clone(),
        split: None,
    }
}

/// A candidate from a `sql_to_ibis` record (for `data validate`); `None` for other tasks.
pub fn candidate_from_example(example: &Example) -> Option<Candidate> {
    let Payload::SqlToIbis { input, target } = &example.payload else { return None };
    Some(Candidate {
        id: example.id.clone(),
        template: example.meta.template.clone().unwrap_or_default(),
        variation: example.meta.variation.clone().unwrap_or_default(),
        sql: input.sql.clone(),
        ibis: target.ibis.clone(),
        expr_name: target.expr_name.clone(),
        tables: example.context.schemas(),
        features: example.meta.features.clone(),
        difficulty: example.meta.difficulty.clone(),
        derived_from: example.meta.derived_from.clone(),
        align_types: false,
        shared_fixtures: None,
    })
}
