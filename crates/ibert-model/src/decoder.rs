//! The generation loop every backend shares: tokenize, run the prompt, then sample token by
//! token with the request's settings, stream the text, and stop at an end token, a stop text or
//! the length limit. A backend only supplies [`Forward`].

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::Tokenizer;

use crate::engine::{EngineError, Generation, GenerationOptions, StopReason};

/// A network with a key/value cache: logits for the next token.
pub trait Forward: Send {
    /// Empties the cache; the next call starts at position 0.
    fn reset(&mut self);

    /// Runs `tokens` (at `position` onwards, after what the cache holds) and returns the logits
    /// that follow the last of them.
    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError>;
}

/// What the loop needs besides the network.
pub struct Vocabulary<'a> {
    pub tokenizer: &'a Tokenizer,
    /// Tokens that end the answer (end of turn, end of text).
    pub end_tokens: &'a [u32],
    pub context_length: usize,
}

pub fn generate(
    network: &mut dyn Forward,
    vocabulary: &Vocabulary,
    prompt: &str,
    options: &GenerationOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, EngineError> {
    let inference = |error: candle_core::Error| EngineError::Inference(error.to_string());
    let tokenizer = vocabulary.tokenizer;
    let encoding = tokenizer.encode(prompt, false).map_err(|error| EngineError::Inference(format!("tokenizing the prompt: {error}")))?;
    let prompt_ids = encoding.get_ids().to_vec();
    if prompt_ids.is_empty() {
        return Err(EngineError::Inference("the prompt is empty".to_string()));
    }
    if prompt_ids.len() + options.max_tokens > vocabulary.context_length {
        return Err(EngineError::Context { prompt: prompt_ids.len(), max: options.max_tokens, context: vocabulary.context_length });
    }
    network.reset();
    let mut sampler = LogitsProcessor::from_sampling(options.seed, sampling(options));
    let started = Instant::now();
    let mut logits = network.logits(&prompt_ids, 0)?;
    let prompt_time = started.elapsed();
    let started = Instant::now();
    let mut generated: Vec<u32> = Vec::new();
    let mut text = String::new();
    let mut emitted = 0;
    let mut stop_reason = StopReason::Length;
    let holdback = options.stop.iter().map(|s| s.len().saturating_sub(1)).max().unwrap_or(0);
    while generated.len() < options.max_tokens {
        let context: Vec<u32> = prompt_ids.iter().chain(&generated).copied().collect();
        let size = logits.len();
        let mut scores = Tensor::from_vec(std::mem::take(&mut logits), size, &Device::Cpu).map_err(inference)?;
        if options.repetition_penalty != 1.0 {
            let recent = &context[context.len().saturating_sub(options.repeat_last_n)..];
            scores = candle_transformers::utils::apply_repeat_penalty(&scores, options.repetition_penalty, recent).map_err(inference)?;
        }
        let next = sampler.sample(&scores).map_err(inference)?;
        if vocabulary.end_tokens.contains(&next) {
            stop_reason = StopReason::EndOfText;
            break;
        }
        generated.push(next);
        text = tokenizer.decode(&generated, true).map_err(|error| EngineError::Inference(format!("decoding: {error}")))?;
        if let Some(at) = options.stop.iter().filter_map(|stop| text.find(stop.as_str())).min() {
            text.truncate(at);
            if let Some(rest) = text.get(emitted..at).filter(|r| !r.is_empty()) {
                on_text(rest);
            }
            emitted = text.len();
            stop_reason = StopReason::StopText;
            break;
        }
        // Hold back what could still become a stop text, or an unfinished character.
        let mut safe = text.len().saturating_sub(holdback).max(emitted);
        while !text.is_char_boundary(safe) {
            safe -= 1;
        }
        if safe > emitted && !text[..safe].ends_with('\u{fffd}') {
            // A decode that rewrote earlier text (some tokenizers do) streams nothing more here.
            if let Some(piece) = text.get(emitted..safe) {
                on_text(piece);
            }
            emitted = safe;
        }
        if generated.len() < options.max_tokens {
            logits = network.logits(&[next], context.len())?;
        }
    }
    if let Some(rest) = text.get(emitted..).filter(|r| !r.is_empty()) {
        on_text(rest);
    }
    Ok(Generation { text, prompt_tokens: prompt_ids.len(), generated_tokens: generated.len(), prompt_time, generation_time: started.elapsed(), stop_reason })
}

fn sampling(options: &GenerationOptions) -> Sampling {
    if options.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = options.temperature;
    match (options.top_k, options.top_p) {
        (None, None) => Sampling::All { temperature },
        (Some(k), None) => Sampling::TopK { k, temperature },
        (None, Some(p)) => Sampling::TopP { p, temperature },
        (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
    }
}
