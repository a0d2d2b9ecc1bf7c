//! How long work shows where it is: the binary draws progress bars and prints remarks on
//! standard error; tests and other callers pass [`Quiet`].

/// Where the remarks and counters of a run go.
pub trait Progress: Sync {
    /// A remark for the person running the work (a count, a skipped stage, an interruption).
    fn note(&self, line: &str);
    /// A counter of `total` units of work named `what`, with `detail` beside it (a source's
    /// label); it is finished when dropped.
    fn counter(&self, total: u64, what: &str, detail: &str) -> Box<dyn Counter + '_>;
}

/// Counts units of work as they finish, from any thread.
pub trait Counter: Sync {
    fn tick(&self);
}

/// Shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn note(&self, _: &str) {}

    fn counter(&self, _: u64, _: &str, _: &str) -> Box<dyn Counter + '_> {
        Box::new(Quiet)
    }
}

impl Counter for Quiet {
    fn tick(&self) {}
}
