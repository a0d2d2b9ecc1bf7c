//! A time limit for DuckDB queries: one thread per verifier that interrupts the query in flight
//! once it has used its CPU time (a recursive CTE that never ends, a cross join that explodes).
//! The connections run with one DuckDB thread, so a query runs on the thread that asked for it,
//! and that thread's CPU time is what counts: a verdict does not depend on the machine's load.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ibert_oracle::cpu_clock::{CpuClock, CpuDeadline};

use duckdb::InterruptHandle;

#[derive(Default)]
struct State {
    armed: Option<(Arc<InterruptHandle>, CpuDeadline)>,
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
                match state.armed.as_ref().map(|(_, deadline)| deadline.time_left()) {
                    None => state = condvar.wait(state).unwrap_or_else(|p| p.into_inner()),
                    Some(None) => {
                        if let Some((handle, _)) = state.armed.take() {
                            handle.interrupt();
                            state.fired = true;
                        }
                    }
                    Some(Some(wait)) => state = condvar.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0,
                }
            }
        });
        Watchdog { shared, thread: Some(thread) }
    }

    /// Runs `work` (a query on the connection behind `handle`) on this thread; returns its
    /// result and whether it used `limit` of CPU time (see [`CpuDeadline`]) and was interrupted.
    pub(crate) fn run<T>(&self, handle: Arc<InterruptHandle>, limit: Duration, work: impl FnOnce() -> T) -> (T, bool) {
        let (lock, condvar) = &*self.shared;
        {
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            state.armed = Some((handle, CpuDeadline::start(CpuClock::of_current_thread(), limit)));
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
        connection.execute_batch("SET threads = 1").unwrap();
        let watchdog = Watchdog::new();
        let endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT COUNT(*) FROM r";
        let clock = CpuClock::of_current_thread().unwrap();
        let before = clock.used().unwrap();
        let (result, fired) = watchdog.run(connection.interrupt_handle(), Duration::from_millis(300), || run_query(&connection, endless));
        assert!(fired);
        assert!(result.is_err());
        // Interrupted for the CPU time it used on this thread, not by the wall-clock backstop.
        let used = clock.used().unwrap() - before;
        assert!(used >= Duration::from_millis(290), "the query used {used:?} of this thread's CPU");
        let (result, fired) = watchdog.run(connection.interrupt_handle(), Duration::from_secs(5), || run_query(&connection, "SELECT 1"));
        assert!(!fired);
        assert!(result.is_ok());
    }

    #[test]
    fn time_spent_waiting_does_not_count() {
        let connection = duckdb::Connection::open_in_memory().unwrap();
        let watchdog = Watchdog::new();
        // Past the limit in wall time, as a query waiting for a core on a busy machine is.
        let (_, fired) = watchdog.run(connection.interrupt_handle(), Duration::from_millis(100), || std::thread::sleep(Duration::from_millis(250)));
        assert!(!fired);
    }
}
