//! Examples from the deterministic transpiler: each corpus query with its Ibis translation, as
//! a candidate for the same verification as the templates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ibert_oracle::PythonEnv;
use ibert_transpile::corpus::{Corpus, CorpusError};
use ibert_transpile::{RESULT_NAME, TranspileError, transpile};

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
        let translated = transpile(&query.sql, &corpus.catalog, corpus.dialect);
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
                derived_from: None,
                align_types: true,
                shared_fixtures: None,
            }),
            Err(error) => result.refused.push(Refused { id: query.id.clone(), features: query.features.clone(), error }),
        }
    }
    result
}

/// The TPC-H and TPC-DS suites: the schemas of `corpus/tpc` under `root` and the DuckDB copies of
/// the standard queries that the pinned ibis-framework package ships (22 and 99).
pub fn tpc_suites(env: &PythonEnv, root: &Path) -> Result<[Corpus; 2], CorpusError> {
    let queries = tpc_queries_dir(env)?;
    let tpc = root.join("corpus/tpc");
    Ok([Corpus::load_tpc("tpch", &tpc.join("tpch.yaml"), &queries.join("h"))?, Corpus::load_tpc("tpcds", &tpc.join("tpcds.yaml"), &queries.join("ds"))?])
}

fn tpc_queries_dir(env: &PythonEnv) -> Result<PathBuf, CorpusError> {
    let python = env.python();
    let failed = |message: String| CorpusError::Invalid { path: python.clone(), message };
    let output = Command::new(&python)
        .args(["-c", "import ibis, os; print(os.path.dirname(ibis.__file__))"])
        .output()
        .map_err(|error| failed(format!("running it to locate the ibis package: {error}")))?;
    if !output.status.success() {
        return Err(failed(format!("locating the ibis package: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    let ibis_dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(Path::new(&ibis_dir).join("backends/tests/tpc/queries/duckdb"))
}
