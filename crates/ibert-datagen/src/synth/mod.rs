//! Schema and query synthesis: seeded schemas of several domains ([`schema`]), SQL queries
//! over them drawn from the grammar the transpiler supports ([`query`], weighted by
//! [`weights`]), each translated by the transpiler into a candidate for the same verification
//! as every other pair. Query `n` of a run depends only on the seed, the spec and `n`, so any
//! range of queries can be made anywhere, in any order ([`run`] shards them).
//!
//! Predicates are grounded in the fixture data by the verifier: it mixes each literal of a
//! query into the rows of the table it is compared with, so a selective predicate selects
//! rows, and where the default fixtures still return nothing it retries with data aimed at the
//! query. A query whose result is empty on every fixture is rejected as `vacuous`.

pub mod focus;
pub mod query;
pub mod run;
pub mod schema;
pub mod weights;

use std::sync::Arc;

use ibert_transpile::{RESULT_NAME, SqlDialect, transpile};
use ibert_verify::SharedFixtures;
use ibert_verify::rng::Rng;

use crate::Candidate;
use query::{SynthQuery, synth_query};
use schema::{SynthSchema, synth_schema};
pub use weights::{Feature, SpecError, SynthSpec, Weights};

/// What makes every query of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesizer {
    pub seed: u64,
    pub spec: SynthSpec,
}

/// A synthesized query the transpiler did not translate.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub id: String,
    pub sql: String,
    pub features: Vec<String>,
    pub reason: String,
}

impl Synthesizer {
    pub fn new(seed: u64, spec: SynthSpec) -> Self {
        Synthesizer { seed, spec }
    }

    /// The schema of query `index`: one schema serves `queries_per_schema` queries in a row.
    pub fn schema(&self, index: u64) -> SynthSchema {
        synth_schema(self.seed, index / self.spec.queries_per_schema, self.spec.min_tables, self.spec.max_tables)
    }

    /// Query `index` and its schema.
    pub fn query(&self, index: u64) -> (SynthSchema, SynthQuery) {
        let schema = self.schema(index);
        let mut rng = Rng::for_stream(self.seed, &format!("query {index}"));
        let difficulty = self.spec.difficulty.unwrap_or_else(|| *rng.pick(&[1, 2, 2, 3, 3, 3, 4, 4, 5]));
        let query = synth_query(&schema, &self.spec.weights, difficulty, &mut rng);
        (schema, query)
    }

    /// The id of query `index`: the seed and a digest of the spec are part of it, so runs with
    /// other seeds or specs merge without two records sharing an id.
    pub fn id(&self, index: u64) -> String {
        let spec = self.spec.settings().join("\n");
        let digest = crate::stable_hash::fnv1a(spec.as_bytes());
        format!("synth.s{}.{:06x}.{index:08}", self.seed, digest & 0xff_ffff)
    }

    /// The default fixtures of the queries of schema block `block` (queries
    /// `block * queries_per_schema ..`): every table of the schema, with the literals of every
    /// query of the block, so that the data is made once for the block.
    pub fn shared_fixtures(&self, block: u64) -> SharedFixtures {
        let per_schema = self.spec.queries_per_schema;
        let schema = self.schema(block * per_schema);
        let start = block.saturating_mul(per_schema);
        let queries: Vec<String> = (start..start.saturating_add(per_schema)).map(|index| self.query(index).1.sql).collect();
        SharedFixtures::new(schema.catalog().schemas(), queries.iter().map(String::as_str))
    }

    /// Queries `range` translated, each a candidate to verify or what the transpiler refused.
    pub fn candidates(&self, range: std::ops::Range<u64>) -> Vec<Result<Candidate, Refused>> {
        let mut shared: Option<(u64, Arc<SharedFixtures>)> = None;
        range
            .map(|index| {
                let block = index / self.spec.queries_per_schema;
                if shared.as_ref().is_none_or(|(made_for, _)| *made_for != block) {
                    shared = Some((block, Arc::new(self.shared_fixtures(block))));
                }
                let fixtures = shared.as_ref().map(|(_, fixtures)| Arc::clone(fixtures));
                self.candidate(index).map(|candidate| Candidate { shared_fixtures: fixtures, ..candidate })
            })
            .collect()
    }

    /// Query `index` translated: a candidate to verify (with fixtures of its own), or what the
    /// transpiler refused.
    pub fn candidate(&self, index: u64) -> Result<Candidate, Refused> {
        let (schema, query) = self.query(index);
        let id = self.id(index);
        let catalog = schema.catalog();
        match transpile(&query.sql, &catalog, SqlDialect::DuckDb) {
            Ok(translation) => Ok(Candidate {
                id,
                template: schema.name.clone(),
                variation: index.to_string(),
                sql: query.sql,
                ibis: translation.code,
                expr_name: RESULT_NAME.to_string(),
                tables: catalog.schemas_of(&translation.tables),
                features: query.features,
                difficulty: Some(query.difficulty.to_string()),
                derived_from: None,
                align_types: true,
                shared_fixtures: None,
            }),
            Err(error) => Err(Refused { id, sql: query.sql, features: query.features, reason: error.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_depends_only_on_seed_spec_and_index() {
        let one = Synthesizer::new(3, SynthSpec::default());
        assert_eq!(one.query(17), one.query(17));
        assert_ne!(one.query(17).1, one.query(18).1);
        assert_ne!(one.query(17).1, Synthesizer::new(4, SynthSpec::default()).query(17).1);
        assert_eq!(one.schema(0), one.schema(39), "one schema serves 40 queries");
        assert_ne!(one.schema(0), one.schema(40));
    }

    #[test]
    fn most_queries_translate_and_every_feature_is_drawn() {
        let synthesizer = Synthesizer::new(1, SynthSpec::default());
        let mut refused = Vec::new();
        let mut features = std::collections::BTreeSet::new();
        for index in 0..2000 {
            match synthesizer.candidate(index) {
                Ok(candidate) => features.extend(candidate.features),
                Err(refusal) => refused.push(refusal),
            }
        }
        assert!(refused.len() < 40, "{} of 2000 refused; the first: {:?}", refused.len(), refused.first());
        let missing: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).filter(|name| !features.contains(*name)).collect();
        assert!(missing.is_empty(), "never drawn: {missing:?}");
    }

    #[test]
    fn a_zero_weight_turns_a_feature_off() {
        let spec = SynthSpec::parse("weights: {window: 0, group_by: 0}").unwrap();
        let synthesizer = Synthesizer::new(1, spec);
        for index in 0..300 {
            let (_, query) = synthesizer.query(index);
            assert!(!query.sql.contains(" OVER ") && !query.sql.contains("GROUP BY") || query.sql.starts_with("WITH"), "{}", query.sql);
        }
    }
}
