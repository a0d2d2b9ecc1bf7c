//! Examples from the deterministic transpiler: each corpus query with its Ibis translation, as
//! a candidate for the same verification as the templates.

use std::time::{Duration, Instant};

use ibert_transpile::corpus::Corpus;
use ibert_transpile::{RESULT_NAME, SqlDialect, TranspileError, transpile};

use crate::expand::Candidate;

/// A corpus after translation: the candidates to verify and the queries the transpiler refused.
pub struct TranspiledCorpus {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<Refused>,
    /// Translation time of each query (parse, resolve, emit), in corpus order.
    pub latencies: Vec<Duration>,
}

pub struct Refused {
    pub id: String,
    pub features: Vec<String>,
    pub error: TranspileError,
}

pub fn transpile_corpus(corpus: &Corpus) -> TranspiledCorpus {
    let mut result = TranspiledCorpus { candidates: Vec::new(), refused: Vec::new(), latencies: Vec::new() };
    for query in &corpus.queries {
        let start = Instant::now();
        let translated = transpile(&query.sql, &corpus.catalog, SqlDialect::DuckDb);
        result.latencies.push(start.elapsed());
        match translated {
            Ok(translation) => result.candidates.push(Candidate {
                id: format!("{}.{}", corpus.name, query.id),
                template: corpus.name.clone(),
                variation: query.id.clone(),
                sql: query.sql.clone(),
                ibis: translation.code,
                expr_name: RESULT_NAME.to_string(),
                tables: corpus.catalog.schemas_of(&translation.tables),
                features: query.features.clone(),
                difficulty: None,
            }),
            Err(error) => result.refused.push(Refused { id: query.id.clone(), features: query.features.clone(), error }),
        }
    }
    result
}
