//! Counts of a run's outcomes: verified and rejected by reason, per template and per feature.

use std::collections::BTreeMap;

use ibert_verify::Verdict;

use crate::Outcome;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub total: usize,
    pub verified: usize,
    /// reason -> count
    pub rejected: BTreeMap<String, usize>,
    /// template -> (verified, rejected)
    pub per_template: BTreeMap<String, (usize, usize)>,
    /// feature -> (verified, rejected)
    pub per_feature: BTreeMap<String, (usize, usize)>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut summary = Summary::default();
        for outcome in outcomes {
            summary.total += 1;
            let verified = matches!(outcome.verdict, Verdict::Verified(_));
            let bump = |entry: &mut (usize, usize)| if verified { entry.0 += 1 } else { entry.1 += 1 };
            match &outcome.verdict {
                Verdict::Verified(_) => summary.verified += 1,
                Verdict::Rejected(reject) => *summary.rejected.entry(reject.reason.to_string()).or_default() += 1,
            }
            bump(summary.per_template.entry(outcome.candidate.template.clone()).or_default());
            for feature in &outcome.candidate.features {
                bump(summary.per_feature.entry(feature.clone()).or_default());
            }
        }
        summary
    }

    pub fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }
}
