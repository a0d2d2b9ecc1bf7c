//! Time limits that count the CPU time a program used, not the time it waited for a core.
//!
//! A wall-clock limit makes a verdict depend on the load: on a busy machine (a test suite, a
//! second job) a query that needs 3 s of CPU can take 12 s, time out, and become a reject that
//! an idle run keeps. Counting CPU time (read from `/proc`, where Linux reports it in 1/100 s)
//! gives the same verdict under any load. A wall-clock backstop still ends what uses no CPU at
//! all (a process that blocks), and where `/proc` cannot be read the limit is wall time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A CPU-time limit holds for at most this many times its length in wall time.
pub const WALL_BACKSTOP_FACTOR: u32 = 4;

/// The CPU time (user and system) of one process or thread, read from its `/proc` stat file.
#[derive(Debug, Clone)]
pub struct CpuClock {
    stat: PathBuf,
}

impl CpuClock {
    /// The clock of a process (all its threads).
    pub fn of_process(pid: u32) -> CpuClock {
        CpuClock { stat: PathBuf::from(format!("/proc/{pid}/stat")) }
    }

    /// The clock of the calling thread, readable from any thread; `None` without `/proc`.
    pub fn of_current_thread() -> Option<CpuClock> {
        // `/proc/thread-self` links to `PID/task/TID` for the thread that reads it.
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        Some(CpuClock { stat: PathBuf::from("/proc").join(link).join("stat") })
    }

    /// CPU time used so far; `None` when the stat file cannot be read (the process is gone).
    pub fn used(&self) -> Option<Duration> {
        parse_stat(&std::fs::read_to_string(&self.stat).ok()?)
    }
}

/// User plus system time of a `/proc/.../stat` line, in the kernel's fixed 100 ticks a second.
fn parse_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// A limit started now: reached when `limit` of CPU time is used, or when
/// [`WALL_BACKSTOP_FACTOR`] times `limit` of wall time has passed (or `limit` of wall time,
/// for a limit without a clock).
#[derive(Debug, Clone)]
pub struct CpuDeadline {
    clock: Option<(CpuClock, Duration)>,
    started: Instant,
    limit: Duration,
}

impl CpuDeadline {
    /// A limit on what `clock` counts from now; wall time when the clock cannot be read.
    pub fn start(clock: Option<CpuClock>, limit: Duration) -> CpuDeadline {
        let clock = clock.and_then(|clock| clock.used().map(|used| (clock, used)));
        CpuDeadline { clock, started: Instant::now(), limit }
    }

    /// A limit on wall time alone.
    pub fn wall(limit: Duration) -> CpuDeadline {
        CpuDeadline { clock: None, started: Instant::now(), limit }
    }

    /// How long to wait before looking again; `None` once the limit is reached.
    pub fn time_left(&self) -> Option<Duration> {
        let wall = self.started.elapsed();
        let left = match &self.clock {
            None => self.limit.saturating_sub(wall),
            Some((clock, at_start)) => {
                let backstop = self.limit * WALL_BACKSTOP_FACTOR;
                // A clock that stops reading (the process ended) leaves the wall backstop.
                let used = clock.used().map_or(Duration::ZERO, |now| now.saturating_sub(*at_start));
                // CPU time grows no faster than wall time for one thread: the earliest the
                // limit can be reached is `limit - used` from now.
                if used >= self.limit { Duration::ZERO } else { (self.limit - used).min(backstop.saturating_sub(wall)) }
            }
        };
        (!left.is_zero()).then_some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_plus_system_time() {
        // Fields 14 and 15 (utime, stime) are 250 and 50 ticks; the name holds a space and a ')'.
        let line = "4242 (py thon) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 1000 0 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3000)));
        assert_eq!(parse_stat("4242 (short"), None);
    }

    #[test]
    fn the_clock_of_this_thread_counts_its_work_and_not_its_sleep() {
        let clock = CpuClock::of_current_thread().expect("/proc on Linux");
        let before = clock.used().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let slept = clock.used().unwrap() - before;
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let worked = clock.used().unwrap() - before - slept;
        assert!(slept < Duration::from_millis(100), "sleeping used {slept:?}");
        assert!(worked >= Duration::from_millis(100), "300 ms of spinning counted {worked:?}");
    }

    #[test]
    fn a_deadline_on_a_sleeping_thread_waits_for_the_backstop() {
        let limit = Duration::from_millis(100);
        let deadline = CpuDeadline::start(CpuClock::of_current_thread(), limit);
        std::thread::sleep(Duration::from_millis(150));
        // Past the limit in wall time, but without using CPU: not reached.
        assert!(deadline.time_left().is_some());
        std::thread::sleep(limit * WALL_BACKSTOP_FACTOR);
        assert!(deadline.time_left().is_none());
        let wall = CpuDeadline::wall(limit);
        std::thread::sleep(Duration::from_millis(150));
        assert!(wall.time_left().is_none());
    }
}
