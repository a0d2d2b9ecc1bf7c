//! Terminal output: progress on stderr, tables on stdout. Off a terminal (a log file, CI) the
//! bars are not drawn; each prints a line every few seconds instead.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use ibert_datagen::progress::{Counter, Progress};
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a bar off a terminal prints its line.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{per_sec}}, eta {{eta}})");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(200));
    logged(bar, what)
}

/// Off a terminal, the bar draws nothing and a thread prints `what: pos/len (rate/s, about N
/// left)` every [`LOG_EVERY`] until the bar finishes or is dropped.
fn logged(bar: ProgressBar, what: &str) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        return bar;
    }
    bar.set_draw_target(ProgressDrawTarget::hidden());
    let weak = bar.downgrade();
    let what = what.to_string();
    let started = Instant::now();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(LOG_EVERY);
            let Some(bar) = weak.upgrade() else { break };
            if bar.is_finished() {
                break;
            }
            eprintln!("{}", log_line(&what, bar.position(), bar.length(), started.elapsed()));
        }
    });
    bar
}

/// `evaluating: 40/100 (2.0/s, about 30s left)`.
fn log_line(what: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let Some(total) = total else { return format!("{what}: {done} ({rate:.1}/s)") };
    let left =
        if done == 0 { String::new() } else { format!(", about {} left", HumanDuration(elapsed.mul_f64(total.saturating_sub(done) as f64 / done as f64))) };
    format!("{what}: {done}/{total} ({rate:.1}/s{left})")
}

/// A bar for a download of `total` bytes.
pub fn byte_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{spinner}} {what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{msg}} ({{bytes_per_sec}}, eta {{eta}})");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(200));
    logged(bar, what)
}

/// Plain text tables, as the library's summaries draw them.
pub use ibert_datagen::table::table;

/// Progress on a terminal: counters as progress bars, remarks on standard error.
pub struct Terminal;

impl Progress for Terminal {
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }

    fn counter(&self, total: u64, what: &str, detail: &str) -> Box<dyn Counter + '_> {
        let bar = progress_bar(total, what);
        if !detail.is_empty() {
            bar.set_message(detail.to_string());
        }
        Box::new(Bar(bar))
    }
}

/// A progress bar, cleared when dropped.
struct Bar(ProgressBar);

impl Counter for Bar {
    fn tick(&self) {
        self.0.inc(1);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A byte bar for a model fetch, drawn once the fetch starts (a cached model shows none).
#[derive(Default)]
pub struct FetchBar(std::sync::Mutex<Option<ProgressBar>>);

impl ibert_catalog::FetchObserver for FetchBar {
    fn started(&self, what: &str, bytes: u64) {
        eprintln!("{what}");
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(byte_bar(bytes, "fetching"));
    }

    fn progress(&self, done: u64, detail: &str) {
        if let Some(bar) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.set_position(done);
            bar.set_message(detail.to_string());
        }
    }

    fn finished(&self) {
        if let Some(bar) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_say_how_far_how_fast_and_how_long_is_left() {
        assert_eq!(log_line("evaluating", 40, Some(100), Duration::from_secs(20)), "evaluating: 40/100 (2.0/s, about 30 seconds left)");
        assert_eq!(log_line("verifying", 0, Some(10), Duration::from_secs(5)), "verifying: 0/10 (0.0/s)");
        assert_eq!(log_line("mining", 7, None, Duration::from_secs(7)), "mining: 7 (1.0/s)");
    }
}
