//! The one model, on a thread of its own, fed by a bounded first-come-first-served queue: each
//! request is a job run to its end before the next starts (one model generates one sequence at
//! a time), a full queue is refused at once (503 with `Retry-After`) rather than left to time
//! out, and a job whose client left or whose deadline passed is cancelled: skipped if it has not
//! started, stopped at the next token if it has. The thread counts every generation's tokens and
//! every cancellation itself ([`Metered`]), since a cancelled job's handler is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use ibert_model::{Cancel, ChatMessage, Engine, EngineError, Generation, GenerationOptions, StopReason};
use tokio::sync::oneshot;

use crate::errors::ApiError;
use crate::metrics::GenerationCounters;

type Work = Box<dyn FnOnce(&mut dyn Engine) + Send>;

struct Job {
    cancellation: Cancellation,
    work: Work,
}

/// A job's cancel flag, and whether its deadline set it (otherwise its client went away).
#[derive(Clone, Default)]
pub struct Cancellation {
    pub cancel: Cancel,
    by_deadline: Arc<AtomicBool>,
}

impl Cancellation {
    /// Cancels because the deadline passed, unless the job was cancelled (or ended) before.
    pub fn expire(&self) {
        if !self.cancel.is_cancelled() {
            self.by_deadline.store(true, Ordering::Relaxed);
            self.cancel.cancel();
        }
    }

    fn reason(&self) -> &'static str {
        if self.by_deadline.load(Ordering::Relaxed) { "deadline" } else { "client_gone" }
    }
}

/// The model as a job sees it: each generation's tokens, and its cancellation, are counted
/// where they happen.
struct Metered<'a> {
    engine: &'a mut dyn Engine,
    counters: &'a GenerationCounters,
    cancellation: &'a Cancellation,
}

impl Engine for Metered<'_> {
    fn describe(&self) -> String {
        self.engine.describe()
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        self.engine.chat_prompt(messages)
    }

    fn generate(&mut self, prompt: &str, options: &GenerationOptions, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError> {
        let generation = self.engine.generate(prompt, options, on_text)?;
        self.counters.prompt_tokens.inc_by(generation.prompt_tokens as u64);
        self.counters.generated_tokens.inc_by(generation.generated_tokens as u64);
        if generation.stop_reason == StopReason::Cancelled {
            self.counters.count_cancelled(self.cancellation.reason());
        }
        Ok(generation)
    }

    fn adapter(&self) -> Option<&str> {
        self.engine.adapter()
    }
}

pub struct GenerationQueue {
    sender: SyncSender<Job>,
    /// Jobs waiting, not counting the one running.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
    /// What the model is, for `/v1/models` and the answers' `model` field.
    pub model_id: String,
    pub describe: String,
}

impl GenerationQueue {
    /// Starts the model's thread with room for `capacity` waiting jobs.
    pub fn start(mut engine: Box<dyn Engine + Send>, model_id: String, capacity: usize, counters: GenerationCounters) -> GenerationQueue {
        let (sender, receiver) = sync_channel::<Job>(capacity);
        let waiting = Arc::new(AtomicUsize::new(0));
        let describe = engine.describe();
        let counter = Arc::clone(&waiting);
        std::thread::Builder::new()
            .name("ibert-generation".to_string())
            .spawn(move || {
                for job in receiver {
                    counter.fetch_sub(1, Ordering::Relaxed);
                    if job.cancellation.cancel.is_cancelled() {
                        counters.count_cancelled(job.cancellation.reason());
                        continue;
                    }
                    let mut metered = Metered { engine: engine.as_mut(), counters: &counters, cancellation: &job.cancellation };
                    (job.work)(&mut metered);
                }
            })
            .expect("a thread for the model");
        GenerationQueue { sender, waiting, capacity, model_id, describe }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Queues `work`, whose result comes back through the receiver; a 503 when the queue is full.
    pub fn submit<T: Send + 'static>(
        &self,
        cancellation: &Cancellation,
        work: impl FnOnce(&mut dyn Engine) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, ApiError> {
        let (done, result) = oneshot::channel();
        let work: Work = Box::new(move |engine| {
            let _ = done.send(work(engine));
        });
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(Job { cancellation: cancellation.clone(), work }) {
            Ok(()) => Ok(result),
            Err(refused) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                Err(match refused {
                    TrySendError::Full(_) => ApiError::unavailable(
                        format!("the generation queue is full ({} requests waiting); try again shortly", self.capacity),
                        RETRY_AFTER_SECONDS,
                    ),
                    TrySendError::Disconnected(_) => ApiError::internal("the model's thread has stopped"),
                })
            }
        }
    }

    /// Runs `work` on the model and waits for it, at most `deadline` (then cancels it: 504).
    pub async fn run<T: Send + 'static>(&self, deadline: Duration, work: impl FnOnce(&mut dyn Engine, &Cancel) -> T + Send + 'static) -> Result<T, ApiError> {
        let guard = CancelOnDrop::default();
        let cancel = guard.0.cancel.clone();
        let result = self.submit(&guard.0, move |engine| work(engine, &cancel))?;
        match tokio::time::timeout(deadline, result).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ApiError::internal("the model's thread dropped the request")),
            Err(_) => {
                guard.0.expire();
                Err(deadline_passed(deadline))
            }
        }
    }
}

pub const RETRY_AFTER_SECONDS: u64 = 2;

pub fn deadline_passed(deadline: Duration) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GATEWAY_TIMEOUT,
        format!("the request ran past the server's deadline of {} s (--deadline) and was cancelled", deadline.as_secs()),
    )
}

/// Cancels its job when dropped: when the handler's future is dropped because the client went
/// away, when a stream is dropped, or when the answer is complete (then it changes nothing).
#[derive(Default)]
pub struct CancelOnDrop(pub Cancellation);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel.cancel();
    }
}
