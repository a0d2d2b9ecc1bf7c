//! A time limit for DuckDB queries: one thread per verifier that interrupts the query in flight
//! once its deadline passes (a recursive CTE that never ends, a cross join that explodes).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duckdb::InterruptHandle;

#[derive(Default)]
struct State {
    armed: Option<(Arc<InterruptHandle>, Instant)>,
    fired: bool,
    shutdown: bool,
}

pub(crate) struct Watchdog {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn new() -> Self {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let watched = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let (lock, condvar) = &*watched;
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if state.shutdown {
                    return;
                }
                let deadline = state.armed.as_ref().map(|(_, deadline)| *deadline);
                match deadline {
                    None => state = condvar.wait(state).unwrap_or_else(|p| p.into_inner()),
                    Some(deadline) if Instant::now() >= deadline => {
                        if let Some((handle, _)) = state.armed.take() {
                            handle.interrupt();
                            state.fired = true;
                        }
                    }
                    Some(deadline) => {
                        let wait = deadline.saturating_duration_since(Instant::now());
                        state = condvar.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0;
                    }
                }
            }
        });
        Watchdog { shared, thread: Some(thread) }
    }

    /// Runs `work` (a query on the connection behind `handle`); returns its result and whether
    /// the deadline passed and the query was interrupted.
    pub(crate) fn run<T>(&self, handle: Arc<InterruptHandle>, timeout: Duration, work: impl FnOnce() -> T) -> (T, bool) {
        let (lock, condvar) = &*self.shared;
        {
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            state.armed = Some((handle, Instant::now() + timeout));
            state.fired = false;
        }
        condvar.notify_one();
        let result = work();
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        state.armed = None;
        let fired = std::mem::take(&mut state.fired);
        (result, fired)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, condvar) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).shutdown = true;
        condvar.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result_set::run_query;

    #[test]
    fn endless_query_is_interrupted_and_quick_ones_are_not() {
        let connection = duckdb::Connection::open_in_memory().unwrap();
        let watchdog = Watchdog::new();
        let endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT COUNT(*) FROM r";
        let (result, fired) = watchdog.run(connection.interrupt_handle(), Duration::from_millis(300), || run_query(&connection, endless));
        assert!(fired);
        assert!(result.is_err());
        let (result, fired) = watchdog.run(connection.interrupt_handle(), Duration::from_secs(5), || run_query(&connection, "SELECT 1"));
        assert!(!fired);
        assert!(result.is_ok());
    }
}
