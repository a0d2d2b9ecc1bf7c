//! What every handler shares: the settings, the metrics, and, once loading is done, the Ibis
//! worker pool, the model's queue and the worked examples.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ibert_model::{Engine, GenerationOptions};
use ibert_oracle::WorkerPool;
use ibert_records::{Example, Task};
use ibert_tasks::prompt::Tables;
use ibert_tasks::shots::ShotIndex;
use ibert_tasks::{Prompt, TaskInput};

use crate::errors::ApiError;
use crate::explorer::Dataset;
use crate::generation::GenerationQueue;
use crate::metrics::{GenerationCounters, Metrics};
use crate::verification::VerificationThreads;

/// How the server runs; see `ibert serve --help`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// A bearer token every `/v1` and `/metrics` request must carry.
    pub api_key: Option<String>,
    pub max_body_bytes: usize,
    /// The most tokens one request may ask to generate.
    pub max_tokens_limit: usize,
    /// Each request's deadline, waiting in the queue included.
    pub deadline: Duration,
    /// Generation requests that may wait behind the running one.
    pub queue: usize,
    /// Answers a checked task may try.
    pub attempts: u32,
    /// The dataset the explorer shows (`data all`'s folder), when there is one.
    pub data_dir: Option<PathBuf>,
    /// Sampling defaults of requests that do not set them (config.yaml and flags).
    pub generation: GenerationOptions,
}

/// What loading gives the server: the workers, the model unless it runs without one, and the
/// train records worked examples are drawn from (none when an adapter runs or examples are off).
pub struct Loaded {
    pub pool: WorkerPool,
    pub model: Option<LoadedModel>,
    pub train: Vec<Example>,
}

pub struct LoadedModel {
    pub engine: Box<dyn Engine + Send>,
    /// The name clients see in `/v1/models` and in answers.
    pub id: String,
}

/// Loads what the server needs; runs on a thread of its own while `/health` answers 503.
pub type Loader = Box<dyn FnOnce() -> anyhow::Result<Loaded> + Send>;

pub struct Ready {
    /// Lives as long as the process: the verification threads keep verifiers that borrow it
    /// between requests.
    pub pool: &'static WorkerPool,
    pub generation: Option<GenerationQueue>,
    pub verification: VerificationThreads,
    shots: HashMap<Task, ShotIndex>,
}

impl Ready {
    pub fn new(loaded: Loaded, queue: usize, counters: GenerationCounters) -> Ready {
        let generation = loaded.model.map(|model| GenerationQueue::start(model.engine, model.id, queue.max(1), counters));
        let shots = [Task::SqlToIbis, Task::CodeCompletion, Task::ErrorResolution, Task::Qa, Task::Documentation]
            .into_iter()
            .map(|task| (task, ShotIndex::new(task, &loaded.train)))
            .filter(|(_, index)| !index.is_empty())
            .collect();
        let pool: &'static WorkerPool = Box::leak(Box::new(loaded.pool));
        Ready { pool, generation, verification: VerificationThreads::start(pool, pool.size()), shots }
    }

    /// The prompt of `input`, with up to two worked examples of the train split.
    pub fn prompt(&self, input: &TaskInput, tables: &Tables) -> Prompt {
        let shots = self.shots.get(&input.task()).map(|index| index.nearest(input, tables, 2, None)).unwrap_or_default();
        Prompt::render(input, tables, &shots)
    }

    pub fn model(&self) -> Result<&GenerationQueue, ApiError> {
        self.generation.as_ref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_IMPLEMENTED,
                "this server runs without a model (--no-model): only to-sql, transpiled from-sql and the explorer answer",
            )
        })
    }
}

pub struct AppState {
    pub options: ServeOptions,
    pub metrics: Metrics,
    pub ready: OnceLock<Ready>,
    pub dataset: Option<Dataset>,
}

impl AppState {
    pub fn ready(&self) -> Result<&Ready, ApiError> {
        self.ready.get().ok_or_else(|| ApiError::unavailable("the server is still loading (the Ibis workers and the model)", 5))
    }

    pub fn queue_depth(&self) -> usize {
        self.ready.get().and_then(|ready| ready.generation.as_ref()).map_or(0, GenerationQueue::waiting)
    }

    /// The request's `max_tokens`, or the default, refused above the server's limit.
    pub fn max_tokens(&self, asked: Option<usize>) -> Result<usize, ApiError> {
        let tokens = asked.unwrap_or(self.options.generation.max_tokens);
        if tokens == 0 || tokens > self.options.max_tokens_limit {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be between 1 and this server's limit of {} (--max-tokens-limit); got {tokens}",
                self.options.max_tokens_limit
            )));
        }
        Ok(tokens)
    }
}

pub type State = Arc<AppState>;
