//! The engine's own times for an answer, in one shape for the task API and the OpenAI-style
//! endpoints: llama.cpp's server's names (`prompt_n`, `cache_n`, `prompt_ms`, `predicted_n`,
//! `predicted_ms`), so that tools reading those servers read ours, and a client's wait can be
//! compared with the engine's. A checked task may generate several answers; their times add up.
//! `total_ms` is the whole request's time on the server, where the handler knows it.

use std::time::{Duration, Instant};

use ibert_model::Generation;
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub prompt_n: usize,
    /// Prompt tokens whose keys and values were reused from the previous request.
    pub cache_n: usize,
    pub prompt_ms: f64,
    pub predicted_n: usize,
    pub predicted_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Timings {
    pub fn of(generations: &[Generation]) -> Timings {
        Timings {
            prompt_n: generations.iter().map(|g| g.prompt_tokens).sum(),
            cache_n: generations.iter().map(|g| g.reused_prompt_tokens).sum(),
            prompt_ms: milliseconds(generations.iter().map(|g| g.prompt_time).sum()),
            predicted_n: generations.iter().map(|g| g.generated_tokens).sum(),
            predicted_ms: milliseconds(generations.iter().map(|g| g.generation_time).sum()),
            total_ms: None,
        }
    }

    /// With the request's whole time, from `started` until now.
    pub fn since(started: Instant, generations: &[Generation]) -> Timings {
        Timings { total_ms: Some(milliseconds(started.elapsed())), ..Timings::of(generations) }
    }
}
