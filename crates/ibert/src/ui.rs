//! Terminal output: progress on stderr (hidden when stderr is not a terminal), tables on stdout.

use std::time::Duration;

use ibert_datagen::progress::{Counter, Progress};
use indicatif::{ProgressBar, ProgressStyle};

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
    bar
}

/// A bar for a download of `total` bytes.
pub fn byte_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{spinner}} {what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{msg}} ({{bytes_per_sec}}, eta {{eta}})");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
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
