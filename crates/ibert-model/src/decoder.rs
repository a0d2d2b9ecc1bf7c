//! The generation loop every backend shares: tokenize, run the prompt, then sample token by
//! token with the request's settings, stream the text, and stop at an end token, a stop text or
//! the length limit. A backend only supplies [`Forward`].

use std::collections::VecDeque;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::Tokenizer;

use crate::engine::{EngineError, Generation, GenerationOptions, StopReason};
use crate::speculative::{Decoding, DecodingReport, Drafter};

/// A network with a key/value cache: logits for the next token.
pub trait Forward: Send {
    /// Empties the cache; the next call starts at position 0.
    fn reset(&mut self);

    /// Keeps the first `positions` positions of the cache and forgets the rest, so that a prompt
    /// that shares them with the previous one (a retry adds to the conversation) runs only its
    /// new tokens. `false` when the backend cannot; the caller then resets.
    fn truncate(&mut self, positions: usize) -> bool {
        let _ = positions;
        false
    }

    /// Runs `tokens` (at `position` onwards, after what the cache holds) and returns the logits
    /// that follow the last of them.
    fn logits(&mut self, tokens: &[u32], position: usize) -> Result<Vec<f32>, EngineError>;

    /// Runs `tokens` like [`Forward::logits`] and returns the logits after each of the last
    /// `rows` of them, in order: what checking a draft of `rows - 1` tokens needs. This default
    /// runs those tokens one at a time.
    fn logits_rows(&mut self, tokens: &[u32], position: usize, rows: usize) -> Result<Vec<Vec<f32>>, EngineError> {
        let rows = rows.clamp(1, tokens.len());
        let first = tokens.len() - rows + 1;
        let mut out = vec![self.logits(&tokens[..first], position)?];
        for (offset, token) in tokens[first..].iter().enumerate() {
            out.push(self.logits(&[*token], position + first + offset)?);
        }
        Ok(out)
    }

    /// Whether [`Forward::logits_rows`] runs its tokens in one batched pass (so that checking a
    /// draft costs much less than generating it) and [`Forward::truncate`] rolls the cache back:
    /// what speculative decoding needs to pay off.
    fn checks_drafts_in_one_pass(&self) -> bool {
        false
    }

    /// Applies a LoRA adapter from now on; `Err(why)` when this backend cannot or the adapter
    /// does not fit.
    fn set_adapter(&mut self, adapter: &crate::adapter::LoraAdapter) -> Result<(), String> {
        let _ = adapter;
        Err("LoRA adapters run on the native backend (GGUF files of llama or qwen2, or folders with --load-in-8bit)".to_string())
    }
}

/// What the loop needs besides the network.
pub struct Vocabulary<'a> {
    pub tokenizer: &'a Tokenizer,
    /// Tokens that end the answer (end of turn, end of text).
    pub end_tokens: &'a [u32],
    pub context_length: usize,
}

/// The tokens a network's cache holds, in order: what [`generate`] may reuse.
#[derive(Debug, Default)]
pub struct CachedTokens(Vec<u32>);

impl CachedTokens {
    /// Brings the cache to the longest prefix it shares with `prompt` (leaving at least one token
    /// to run, whose logits come next) and says where the prompt's new tokens start.
    pub(crate) fn reuse(&mut self, network: &mut dyn Forward, prompt: &[u32]) -> usize {
        let shared = self.0.iter().zip(prompt).take_while(|(a, b)| a == b).count().min(prompt.len() - 1);
        if shared > 0 && network.truncate(shared) {
            self.0.truncate(shared);
            return shared;
        }
        network.reset();
        self.0.clear();
        0
    }

    /// Runs `tokens` after what the cache holds and remembers them.
    pub(crate) fn run(&mut self, network: &mut dyn Forward, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        Ok(self.run_rows(network, tokens, 1)?.pop().unwrap_or_default())
    }

    /// Runs `tokens` like [`CachedTokens::run`] and returns the logits after each of the last
    /// `rows` of them.
    fn run_rows(&mut self, network: &mut dyn Forward, tokens: &[u32], rows: usize) -> Result<Vec<Vec<f32>>, EngineError> {
        match network.logits_rows(tokens, self.0.len(), rows) {
            Ok(logits) => {
                self.0.extend_from_slice(tokens);
                Ok(logits)
            }
            Err(error) => {
                // The cache may hold part of the run: start afresh next time.
                network.reset();
                self.0.clear();
                Err(error)
            }
        }
    }

    /// Forgets the last `count` tokens (a draft the model did not agree with).
    fn forget_last(&mut self, network: &mut dyn Forward, count: usize) {
        let keep = self.0.len().saturating_sub(count);
        if network.truncate(keep) {
            self.0.truncate(keep);
        } else {
            network.reset();
            self.0.clear();
        }
    }
}

/// Generates the answer to `prompt`. With a [`Drafter`] (and a network that checks drafts in one
/// pass) the model checks drafted tokens in batches; its own choice at every position is made
/// exactly as in plain decoding, so the text is the same either way.
pub fn generate(
    network: &mut dyn Forward,
    cached: &mut CachedTokens,
    vocabulary: &Vocabulary,
    prompt: &str,
    options: &GenerationOptions,
    drafter: &mut Drafter,
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
    let mut report = DecodingReport { decoding: drafter.decoding(), ..DecodingReport::default() };
    let speculate = drafter.decoding() != Decoding::Plain && network.checks_drafts_in_one_pass();
    if !speculate && drafter.decoding() != Decoding::Plain {
        report.note = Some(format!("{} decoding needs the native backend; decoding plainly", drafter.decoding()));
        report.decoding = Decoding::Plain;
    }
    let mut sampler = LogitsProcessor::from_sampling(options.seed, sampling(options));
    let started = Instant::now();
    let reused = cached.reuse(network, &prompt_ids);
    // Logits still to sample from, each with the drafted token it checks (none after the
    // last drafted token, or in plain decoding).
    let mut rows: VecDeque<(Vec<f32>, Option<u32>)> = VecDeque::from([(cached.run(network, &prompt_ids[reused..])?, None)]);
    let prompt_time = started.elapsed();
    let started = Instant::now();
    let mut context = prompt_ids.clone();
    let mut generated: Vec<u32> = Vec::new();
    let mut text = String::new();
    let mut emitted = 0;
    let mut stop_reason = StopReason::Length;
    let holdback = options.stop.iter().map(|s| s.len().saturating_sub(1)).max().unwrap_or(0);
    // The draft being checked: its length, and how many of its tokens the model agreed with.
    let mut check = (0, 0);
    while generated.len() < options.max_tokens {
        if options.cancel.is_cancelled() {
            stop_reason = StopReason::Cancelled;
            break;
        }
        let Some((logits, drafted)) = rows.pop_front() else { break };
        let size = logits.len();
        let mut scores = Tensor::from_vec(logits, size, &Device::Cpu).map_err(inference)?;
        if options.repetition_penalty != 1.0 {
            let recent = &context[context.len().saturating_sub(options.repeat_last_n)..];
            scores = candle_transformers::utils::apply_repeat_penalty(&scores, options.repetition_penalty, recent).map_err(inference)?;
        }
        let next = sampler.sample(&scores).map_err(inference)?;
        match drafted {
            Some(token) if token == next => check.1 += 1,
            Some(_) => {
                // The rest of the draft is in the cache but not in the answer.
                cached.forget_last(network, rows.len());
                rows.clear();
            }
            None => {}
        }
        if rows.is_empty() && check.0 > 0 {
            drafter.checked(check.0, check.1);
            (report.drafted, report.accepted, report.checks) = (report.drafted + check.0, report.accepted + check.1, report.checks + 1);
            check = (0, 0);
        }
        if vocabulary.end_tokens.contains(&next) {
            stop_reason = StopReason::EndOfText;
            break;
        }
        generated.push(next);
        context.push(next);
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
        let left = options.max_tokens - generated.len();
        if rows.is_empty() && left > 0 {
            // `next` is not in the cache yet: run it, with a draft of what follows it (one
            // token fewer than are left, since the last row yields a token of its own).
            let draft = if speculate { drafter.propose(&context, left - 1)? } else { Vec::new() };
            let run: Vec<u32> = std::iter::once(next).chain(draft.iter().copied()).collect();
            let logits = cached.run_rows(network, &run, run.len())?;
            rows.extend(logits.into_iter().zip(draft.iter().map(|t| Some(*t)).chain([None])));
            check = (draft.len(), 0);
        }
    }
    if let Some(rest) = text.get(emitted..).filter(|r| !r.is_empty()) {
        on_text(rest);
    }
    // A draft cut short by the end of the answer counts the tokens that were compared.
    (report.drafted, report.accepted) = (report.drafted + check.1, report.accepted + check.1);
    report.note = report.note.or_else(|| drafter.note());
    drafter.remember(&generated);
    Ok(Generation {
        text,
        prompt_tokens: prompt_ids.len(),
        reused_prompt_tokens: reused,
        generated_tokens: generated.len(),
        prompt_time,
        generation_time: started.elapsed(),
        stop_reason,
        decoding: report,
    })
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
