//! One loop for every checked task: ask the model, read the answer into candidate programs,
//! check them, and when none passes, ask again with the real error of the first, up to a
//! number of attempts.

use ibert_model::{ChatMessage, Engine, EngineError, Generation, GenerationOptions, StopReason};
use ibert_oracle::OracleError;

use crate::Prompt;

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Oracle(#[from] OracleError),
}

/// The last answer and what the check said of it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The program the last answer stands for (the accepted one, or the first candidate).
    pub program: String,
    /// 1-based number of the last answer.
    pub attempt: u32,
    /// The check's report on the accepted program; `None` when no answer passed.
    pub accepted: Option<String>,
    /// Why the last answer failed, as fed back to the model.
    pub last_error: String,
    /// Every generation, for speed and latency figures.
    pub generations: Vec<Generation>,
}

/// How to run the loop.
pub struct RetryOptions<'a> {
    pub attempts: u32,
    pub generation: &'a GenerationOptions,
    /// Called with each piece of text as it is generated (streaming), and with the number of
    /// each new answer.
    pub on_text: Option<&'a mut dyn FnMut(&str)>,
}

/// A check of one program: `Ok(Ok(report))` when it is accepted, `Ok(Err(why))` when not (`why`
/// reads after "That program"), `Err` when the check itself could not run.
pub type CheckProgram<'a> = dyn FnMut(&str) -> Result<Result<String, String>, OracleError> + 'a;

/// Asks the model up to `options.attempts` times. `read` turns an answer into the programs it
/// may stand for (most likely first); `check` says of one program `Ok(report)` or `Err(why)`,
/// where `why` reads after "That program" (`does not compile: ...`).
pub fn answer_until_accepted(
    engine: &mut dyn Engine,
    prompt: Prompt,
    options: RetryOptions,
    read: &dyn Fn(&str) -> Vec<String>,
    check: &mut CheckProgram<'_>,
) -> Result<Outcome, RetryError> {
    let RetryOptions { attempts, generation: generation_options, mut on_text } = options;
    let mut messages = prompt.messages;
    let mut outcome = Outcome { program: String::new(), attempt: 0, accepted: None, last_error: String::new(), generations: Vec::new() };
    for attempt in 1..=attempts.max(1) {
        let chat = engine.chat_prompt(&messages)?;
        let generation = match on_text.as_mut() {
            Some(callback) => engine.generate(&chat, generation_options, &mut **callback)?,
            None => engine.generate(&chat, generation_options, &mut |_| {})?,
        };
        outcome.attempt = attempt;
        if generation.stop_reason == StopReason::Cancelled {
            outcome.last_error = "was cut short: the request was cancelled".to_string();
            outcome.generations.push(generation);
            return Ok(outcome);
        }
        let candidates = read(&generation.text);
        outcome.program = candidates.first().cloned().unwrap_or_default();
        let mut first_error = None;
        for candidate in &candidates {
            match check(candidate)? {
                Ok(report) => {
                    outcome.program = candidate.clone();
                    outcome.accepted = Some(report);
                    outcome.generations.push(generation);
                    return Ok(outcome);
                }
                Err(why) => {
                    first_error.get_or_insert(why);
                }
            }
        }
        let why = first_error.unwrap_or_else(|| "is empty".to_string());
        messages.push(ChatMessage::new("assistant", &generation.text));
        messages.push(ChatMessage::new("user", &format!("That program {why}\nReply with the corrected complete program in one ```python block.")));
        outcome.last_error = why;
        outcome.generations.push(generation);
    }
    Ok(outcome)
}
