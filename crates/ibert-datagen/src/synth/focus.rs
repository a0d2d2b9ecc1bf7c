//! Active learning on what a model gets wrong (`data synth --focus RESULTS`): the features of the
//! records an `ibert eval` run failed on weigh more in synthesis, those it always got right
//! less. Only the features of the evaluated records are read (from the split the run measured),
//! never their SQL or programs, so nothing of the test split enters the training data.

use std::collections::BTreeMap;
use std::path::Path;

use ibert_records::{Example, RecordError, read_jsonl};
use serde::Deserialize;

use super::weights::{Feature, Weights};

/// Records a feature needs in the run for its failure rate to count.
const LEAST_RECORDS: usize = 3;

/// One feature's record in the run: how many evaluated records had it, how many failed, and
/// the weight synthesis gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct FocusRow {
    pub feature: Feature,
    pub records: usize,
    pub failed: usize,
    pub weight: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum FocusError {
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error("{results}: none of its {results_read} results is a record of {split} (give the split the eval run measured, with --focus-split)")]
    NoMatch { results: std::path::PathBuf, results_read: usize, split: std::path::PathBuf },
}

#[derive(Deserialize)]
struct ResultLine {
    id: String,
    correct: bool,
}

/// The weights for an eval run's `results.jsonl` over the records of `split`: each synthesis
/// feature the failed records name weighs `0.5 + 2 x` its failure rate (0.5 when never failed,
/// 2.5 when always), times `base`; features the run saw fewer than three times keep `base`.
pub fn focus_weights(results: &Path, split: &Path, base: &Weights) -> Result<(Weights, Vec<FocusRow>), FocusError> {
    let lines: Vec<ResultLine> = read_jsonl(results)?;
    let features_of: BTreeMap<String, Vec<String>> = read_jsonl::<Example>(split)?.into_iter().map(|e| (e.id, e.meta.features)).collect();
    let mut counts: BTreeMap<Feature, (usize, usize)> = BTreeMap::new();
    let mut matched = 0;
    for line in &lines {
        let Some(features) = features_of.get(&line.id) else { continue };
        matched += 1;
        for feature in features.iter().filter_map(|name| Feature::from_name(name)) {
            let entry = counts.entry(feature).or_default();
            entry.0 += 1;
            entry.1 += usize::from(!line.correct);
        }
    }
    if matched == 0 {
        return Err(FocusError::NoMatch { results: results.to_path_buf(), results_read: lines.len(), split: split.to_path_buf() });
    }
    let mut weights = base.clone();
    let mut rows = Vec::new();
    for (feature, (records, failed)) in counts {
        if records < LEAST_RECORDS {
            continue;
        }
        let weight = base.get(feature) * (0.5 + 2.0 * failed as f64 / records as f64);
        weights.set(feature, (weight * 1000.0).round() / 1000.0);
        rows.push(FocusRow { feature, records, failed, weight: weights.get(feature) });
    }
    Ok((weights, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibert_records::{Context, Meta, Payload, SqlToIbisInput, SqlToIbisTarget};

    fn record(id: &str, features: &[&str]) -> Example {
        Example {
            id: id.into(),
            payload: Payload::SqlToIbis {
                input: SqlToIbisInput { sql: "SELECT 1".into() },
                target: SqlToIbisTarget { ibis: "expr = t".into(), expr_name: "expr".into() },
            },
            dialect: "duckdb".into(),
            backend: "duckdb".into(),
            ibis_version: String::new(),
            system_prompt: None,
            messages: None,
            context: Context::default(),
            meta: Meta { source: "template".into(), features: features.iter().map(|f| f.to_string()).collect(), ..Meta::default() },
            verification: None,
        }
    }

    #[test]
    fn failed_features_weigh_more_and_rare_ones_keep_their_weight() {
        let dir = tempfile::tempdir().unwrap();
        let split = dir.path().join("test.jsonl");
        let records: Vec<Example> = (0..4).map(|i| record(&format!("w{i}"), &["window", "filter"])).chain([record("c", &["cte"])]).collect();
        ibert_records::write_jsonl(&split, &records).unwrap();
        let results = dir.path().join("results.jsonl");
        let lines = ["w0", "w1", "w2", "w3", "c", "unknown"]
            .iter()
            .enumerate()
            .map(|(i, id)| format!("{{\"signature\":\"s\",\"id\":\"{id}\",\"task\":\"sql_to_ibis\",\"correct\":{}}}", i == 0))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&results, lines + "\n").unwrap();
        let (weights, rows) = focus_weights(&results, &split, &Weights::default()).unwrap();
        assert_eq!(weights.get(Feature::Window), 2.0, "3 of 4 failed: 0.5 + 2 * 0.75");
        assert_eq!(weights.get(Feature::Cte), 1.0, "one record is too few to judge");
        assert_eq!(rows.len(), 2);

        let other = dir.path().join("other.jsonl");
        ibert_records::write_jsonl(&other, &[record("zzz", &["window"])]).unwrap();
        let error = focus_weights(&results, &other, &Weights::default()).unwrap_err().to_string();
        assert!(error.contains("--focus-split"), "{error}");
    }
}
