//! Verification of transpiled `from-sql` answers on a fixed set of threads, one per Ibis worker,
//! each keeping its verifier between requests: the fixture databases it made (DuckDB in memory,
//! a bounded number per verifier) serve later requests over the same tables and literals, and
//! its connection is opened once. A fixed set bounds the memory that tokio's growing pool of
//! blocking threads would not (a verifier per blocking thread reached 750 MB at 64 clients).

use crossbeam_channel::Sender;
use ibert_oracle::WorkerPool;
use ibert_verify::Verifier;
use tokio::sync::oneshot;

use crate::errors::ApiError;

type Job = Box<dyn FnOnce(&mut Verifier<'static>) + Send>;

pub struct VerificationThreads {
    sender: Sender<Job>,
}

impl VerificationThreads {
    pub fn start(pool: &'static WorkerPool, threads: usize) -> VerificationThreads {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("ibert-verify-{index}"))
                .spawn(move || {
                    let mut verifier = Verifier::on_default_fixtures(pool);
                    for job in receiver {
                        job(&mut verifier);
                    }
                })
                .expect("a verification thread");
        }
        VerificationThreads { sender }
    }

    /// Runs `work` on the next free verifier and waits for it.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Verifier<'static>) -> T + Send + 'static) -> Result<T, ApiError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |verifier| {
            let _ = done.send(work(verifier));
        });
        self.sender.send(job).map_err(|_| ApiError::internal("the verification threads have stopped"))?;
        result.await.map_err(|_| ApiError::internal("a verification thread failed"))
    }
}
