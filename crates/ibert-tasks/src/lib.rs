//! The six tasks as a library, keyed by the records' [`Task`]: for each task the prompt
//! rendered from an input ([`prompt`]), how an answer is read ([`answer`]), and how it is
//! checked by execution ([`check`]); one retry loop that feeds the real error back ([`retry`]);
//! few-shot examples retrieved from the train split ([`shots`]); and the scoring of a held-out
//! record for `ibert eval` ([`eval`]); the checked answers of the model-backed tasks, shared by
//! the commands and the server ([`checked`]).
//!
//! Everything that talks to a model goes through here: the task commands, `ibert eval`, and
//! `ibert data all`, which stores the exact messages with each record, so that the prompts a
//! model is trained on and the prompts it answers cannot drift apart.

pub mod answer;
pub mod check;
pub mod checked;
pub mod eval;
pub mod goal;
pub mod prompt;
pub mod repair;
pub mod retry;
pub mod shots;
pub mod snippet;

pub use ibert_records::Task;
pub use prompt::{Prompt, TaskInput};
