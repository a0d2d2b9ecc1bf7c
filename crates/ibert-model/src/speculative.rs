//! Speculative decoding: a cheap guess at the next tokens, checked by the model in one batched
//! pass. Generating one token reads every weight of the network; checking eight guessed tokens
//! reads them once too, so every guess the model agrees with is a token for (almost) nothing.
//!
//! The guesses ([`Drafter`]) come from the text itself ([`prompt_lookup`]: the tokens that
//! followed the last few tokens where they appeared before, which is how a fixed program repeats
//! the broken one and a translation reuses the query's names) or from a small [`DraftModel`] of
//! the same tokenizer. [`crate::decoder::generate`] samples the model's own token at every
//! checked position exactly as plain decoding would and keeps the guesses up to the first one it
//! disagrees with, so the answer is the one plain decoding gives (token for token when greedy,
//! and with the same distribution and the same random draws when sampling: a guess is accepted
//! with the probability the model gives it, the standard rule for a deterministic draft).

use std::fmt;
use std::str::FromStr;

use tokenizers::Tokenizer;

use crate::decoder::{CachedTokens, Forward};
use crate::engine::EngineError;

/// How tokens are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoding {
    /// One token per pass of the model.
    #[default]
    Plain,
    /// Drafts from earlier text (the prompt and the answer so far).
    PromptLookup,
    /// Drafts from the draft model.
    DraftModel,
    /// Drafts from earlier text where it has one, else from the draft model.
    LookupThenDraft,
}

impl Decoding {
    pub const NAMES: &'static str = "plain, lookup, draft, lookup+draft";

    pub fn name(self) -> &'static str {
        match self {
            Decoding::Plain => "plain",
            Decoding::PromptLookup => "lookup",
            Decoding::DraftModel => "draft",
            Decoding::LookupThenDraft => "lookup+draft",
        }
    }

    pub fn needs_draft_model(self) -> bool {
        matches!(self, Decoding::DraftModel | Decoding::LookupThenDraft)
    }
}

impl fmt::Display for Decoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Decoding {
    type Err = String;

    fn from_str(text: &str) -> Result<Decoding, String> {
        match text {
            "plain" => Ok(Decoding::Plain),
            "lookup" => Ok(Decoding::PromptLookup),
            "draft" => Ok(Decoding::DraftModel),
            "lookup+draft" => Ok(Decoding::LookupThenDraft),
            other => Err(format!("decoding `{other}`: use one of {}", Decoding::NAMES)),
        }
    }
}

/// How one generation was decoded, and how well the drafts did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodingReport {
    /// What ran (plain when the backend cannot check drafts in one pass).
    pub decoding: Decoding,
    /// Drafted tokens the model checked, and those it agreed with.
    pub drafted: usize,
    pub accepted: usize,
    /// Passes of the model that checked a draft.
    pub checks: usize,
    /// Why decoding fell back to something plainer than asked, if it did.
    pub note: Option<String>,
}

impl DecodingReport {
    /// The share of drafted tokens the model kept (`None` when nothing was drafted).
    pub fn acceptance(&self) -> Option<f64> {
        (self.drafted > 0).then(|| self.accepted as f64 / self.drafted as f64)
    }
}

/// The longest n-gram [`prompt_lookup`] matches, and the shortest.
const LOOKUP_LONGEST: usize = 4;
const LOOKUP_SHORTEST: usize = 1;

/// Up to `max` tokens that followed the last tokens of `context` where they appeared before:
/// the longest suffix (of [`LOOKUP_LONGEST`] tokens down to [`LOOKUP_SHORTEST`]) that occurs
/// earlier, at its latest occurrence. Empty when no suffix recurs.
pub fn prompt_lookup(context: &[u32], max: usize) -> Vec<u32> {
    lookup_in(context, true, context, LOOKUP_SHORTEST, max).0
}

/// The continuation in `text` of the longest suffix of `context` (of [`LOOKUP_LONGEST`] tokens
/// down to `shortest`) found in it, at the latest place, and that suffix's length. When `text`
/// is `context` itself (`text_is_context`), the suffix's own place does not count.
fn lookup_in(text: &[u32], text_is_context: bool, context: &[u32], shortest: usize, max: usize) -> (Vec<u32>, usize) {
    if max == 0 || context.is_empty() {
        return (Vec::new(), 0);
    }
    let itself = usize::from(text_is_context);
    for n in (shortest.max(1)..=LOOKUP_LONGEST.min(context.len() - itself)).rev() {
        let suffix = &context[context.len() - n..];
        let Some(last_start) = (text.len() + 1).checked_sub(n + itself) else { continue };
        // Latest first: what followed most recently is the likeliest to follow again.
        if let Some(start) = (0..last_start).rev().find(|&start| &text[start..start + n] == suffix) {
            let follows = &text[start + n..];
            // A short match predicts little: its draft stays short.
            let trusted = if n >= LOOKUP_LONGEST { max } else { max.min(n) };
            return (follows[..follows.len().min(trusted)].to_vec(), n);
        }
    }
    (Vec::new(), 0)
}

/// The tokens of a model's last answers (the newest last, at most [`AnswerHistory::TOKENS`]):
/// answers to similar requests repeat their phrasing ("Here's the corrected program"), which
/// lookup drafts from when the request itself has no match.
#[derive(Debug, Default)]
pub struct AnswerHistory(Vec<u32>);

impl AnswerHistory {
    pub const TOKENS: usize = 8192;

    pub fn remember(&mut self, answer: &[u32]) {
        self.0.extend_from_slice(answer);
        let excess = self.0.len().saturating_sub(AnswerHistory::TOKENS);
        self.0.drain(..excess);
    }
}

/// A small model of the same tokenizer that guesses the next tokens greedily.
pub struct DraftModel {
    name: String,
    network: Box<dyn Forward>,
    cached: CachedTokens,
    context_length: usize,
    end_tokens: Vec<u32>,
}

impl DraftModel {
    /// `network` with its tokenizer, checked against the target's: the drafts are token ids,
    /// which mean the same only under the same vocabulary.
    pub fn new(
        name: &str,
        network: Box<dyn Forward>,
        tokenizer: &Tokenizer,
        context_length: usize,
        end_tokens: Vec<u32>,
        target: &Tokenizer,
    ) -> Result<DraftModel, EngineError> {
        if let Some(difference) = vocabulary_difference(tokenizer, target) {
            return Err(EngineError::Load(format!(
                "the draft model {name} has another vocabulary than the model ({difference}): speculative decoding needs a draft of the same tokenizer (Qwen2.5-Coder-0.5B for the 1.5B)"
            )));
        }
        Ok(DraftModel { name: name.to_string(), network, cached: CachedTokens::default(), context_length, end_tokens })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `max` greedy tokens after `context`, running only what its cache does not hold.
    fn propose(&mut self, context: &[u32], max: usize) -> Result<Vec<u32>, EngineError> {
        let max = max.min(self.context_length.saturating_sub(context.len()));
        if max == 0 {
            return Ok(Vec::new());
        }
        let reused = self.cached.reuse(self.network.as_mut(), context);
        let mut logits = self.cached.run(self.network.as_mut(), &context[reused..])?;
        let mut draft = Vec::with_capacity(max);
        while draft.len() < max {
            let next = argmax(&logits);
            draft.push(next);
            if self.end_tokens.contains(&next) || draft.len() == max {
                break;
            }
            logits = self.cached.run(self.network.as_mut(), &[next])?;
        }
        Ok(draft)
    }
}

/// Where a vocabulary differs from another's, if it does.
fn vocabulary_difference(draft: &Tokenizer, target: &Tokenizer) -> Option<String> {
    let (ours, theirs) = (draft.get_vocab(true), target.get_vocab(true));
    if ours.len() != theirs.len() {
        return Some(format!("{} tokens against {}", ours.len(), theirs.len()));
    }
    let mut differing: Vec<&String> = ours.iter().filter(|(text, id)| theirs.get(*text) != Some(id)).map(|(text, _)| text).collect();
    differing.sort();
    differing.first().map(|text| format!("token {text:?} has id {} against {:?}", ours[*text], theirs.get(*text)))
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, value) in logits.iter().enumerate() {
        if *value > logits[best] {
            best = index;
        }
    }
    best as u32
}

/// The most tokens one check drafts, and the fewest a draft starts at after a rejection.
const LONGEST_DRAFT: usize = 16;
const SHORTEST_DRAFT: usize = 1;

/// The drafts of one generation, with a draft length that follows how many were accepted: it
/// grows while the model agrees and falls back to just past the last agreement.
pub struct Drafter<'a> {
    decoding: Decoding,
    draft_model: Option<&'a mut DraftModel>,
    history: Option<&'a mut AnswerHistory>,
    length: usize,
    /// Why the draft model stopped drafting, if it did.
    note: Option<String>,
}

impl<'a> Drafter<'a> {
    pub fn new(decoding: Decoding, draft_model: Option<&'a mut DraftModel>, history: Option<&'a mut AnswerHistory>) -> Drafter<'a> {
        let length = if decoding == Decoding::DraftModel { 4 } else { 8 };
        Drafter { decoding, draft_model, history, length, note: None }
    }

    /// Keeps a finished answer for later lookups.
    pub fn remember(&mut self, answer: &[u32]) {
        if let Some(history) = self.history.as_deref_mut() {
            history.remember(answer);
        }
    }

    /// Why drafting fell back to plainer decoding, if it did.
    pub fn note(&self) -> Option<String> {
        self.note.clone()
    }

    pub fn decoding(&self) -> Decoding {
        self.decoding
    }

    /// A draft of the tokens after `context`, at most `max` (and at most the current length).
    pub fn propose(&mut self, context: &[u32], max: usize) -> Result<Vec<u32>, EngineError> {
        let max = max.min(self.length);
        let lookup = match self.decoding {
            Decoding::Plain => return Ok(Vec::new()),
            Decoding::PromptLookup | Decoding::LookupThenDraft => self.lookup(context, max),
            Decoding::DraftModel => Vec::new(),
        };
        if !lookup.is_empty() || self.decoding == Decoding::PromptLookup {
            return Ok(lookup);
        }
        match self.draft_model.as_deref_mut() {
            Some(model) if context.len() < model.context_length => model.propose(context, max),
            Some(model) => {
                self.note = Some(format!("the answer outgrew the draft model's context of {} tokens; decoding went on without it", model.context_length));
                Ok(Vec::new())
            }
            None => Ok(Vec::new()),
        }
    }

    /// A draft from the request and the answer so far, else from earlier answers (where a
    /// single recurring token is too weak a match to draft from).
    fn lookup(&self, context: &[u32], max: usize) -> Vec<u32> {
        let draft = prompt_lookup(context, max);
        match &self.history {
            Some(history) if draft.is_empty() => lookup_in(&history.0, false, context, 2, max).0,
            _ => draft,
        }
    }

    /// Learns from a check: `accepted` of `drafted` tokens were kept.
    pub fn checked(&mut self, drafted: usize, accepted: usize) {
        self.length = if accepted == drafted { (self.length + 2).min(LONGEST_DRAFT) } else { (accepted + 1).clamp(SHORTEST_DRAFT, LONGEST_DRAFT) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_continues_the_latest_occurrence_of_the_longest_recurring_suffix() {
        // "1 2 3" occurs at 0 (followed by 4 5) and the suffix "2 3" also at 6 (followed by 9).
        let context = [1, 2, 3, 4, 5, 7, 2, 3, 9, 1, 2, 3];
        assert_eq!(prompt_lookup(&context, 2), vec![4, 5]);
        // Only "3" recurs: its latest earlier occurrence is followed by 9 (a match of n < 4
        // tokens drafts n tokens at most).
        assert_eq!(prompt_lookup(&[3, 9, 8, 3], 5), vec![9]);
        assert_eq!(prompt_lookup(&[3, 4, 9, 8, 7, 3, 4], 5), vec![9, 8]);
        // A four-token match drafts as far as asked.
        let long = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4];
        assert_eq!(prompt_lookup(&long, 5), vec![5, 6, 7, 8, 9]);
        assert_eq!(prompt_lookup(&[1, 2, 3], 4), Vec::<u32>::new());
        assert_eq!(prompt_lookup(&[5, 5], 0), Vec::<u32>::new());
        assert_eq!(prompt_lookup(&[5], 3), Vec::<u32>::new());
    }

    #[test]
    fn lookup_falls_back_to_earlier_answers_on_matches_of_two_tokens_or_more() {
        let mut history = AnswerHistory::default();
        history.remember(&[50, 51, 52, 53, 54]);
        let mut drafter = Drafter::new(Decoding::PromptLookup, None, Some(&mut history));
        // The request has no recurring suffix; the history has "51 52".
        assert_eq!(drafter.propose(&[7, 8, 51, 52], 8).unwrap(), vec![53, 54]);
        // A single token is not enough to draft from the history...
        assert!(drafter.propose(&[7, 8, 52], 8).unwrap().is_empty());
        // ...and the request's own match comes first.
        assert_eq!(drafter.propose(&[52, 9, 51, 52], 8).unwrap(), vec![9]);
        drafter.remember(&vec![0; AnswerHistory::TOKENS]);
        assert_eq!(history.0.len(), AnswerHistory::TOKENS, "the history keeps its newest tokens only");
        assert_eq!(history.0[0], 0);
    }

    #[test]
    fn draft_length_grows_with_agreement_and_falls_back_after_a_rejection() {
        let mut drafter = Drafter::new(Decoding::PromptLookup, None, None);
        let context: Vec<u32> = (1..=20).chain(1..=4).collect();
        assert_eq!(drafter.propose(&context, 100).unwrap().len(), 8);
        drafter.checked(8, 8);
        assert_eq!(drafter.propose(&context, 100).unwrap().len(), 10);
        assert_eq!(drafter.propose(&context, 3).unwrap().len(), 3, "never beyond what the caller allows");
        drafter.checked(10, 4);
        assert_eq!(drafter.propose(&context, 100).unwrap().len(), 5);
        drafter.checked(5, 0);
        assert_eq!(drafter.propose(&context, 100).unwrap().len(), SHORTEST_DRAFT);
        assert!(Drafter::new(Decoding::Plain, None, None).propose(&context, 100).unwrap().is_empty());
    }

    fn word_tokenizer(words: &[&str]) -> Tokenizer {
        let vocab = words.iter().enumerate().map(|(id, word)| (word.to_string(), id as u32)).collect();
        Tokenizer::new(tokenizers::models::wordlevel::WordLevel::builder().vocab(vocab).unk_token("[UNK]".to_string()).build().unwrap())
    }

    #[test]
    fn a_vocabulary_that_differs_in_size_or_in_one_id_is_found_out() {
        let target = word_tokenizer(&["[UNK]", "expr", "=", "orders"]);
        assert_eq!(vocabulary_difference(&word_tokenizer(&["[UNK]", "expr", "=", "orders"]), &target), None);
        assert_eq!(vocabulary_difference(&word_tokenizer(&["[UNK]", "expr", "="]), &target).as_deref(), Some("3 tokens against 4"));
        let swapped = vocabulary_difference(&word_tokenizer(&["[UNK]", "expr", "orders", "="]), &target).unwrap();
        assert!(swapped.contains("has id 3 against Some(2)"), "{swapped}");
    }

    #[test]
    fn decoding_names_parse_back() {
        for decoding in [Decoding::Plain, Decoding::PromptLookup, Decoding::DraftModel, Decoding::LookupThenDraft] {
            assert_eq!(decoding.name().parse::<Decoding>(), Ok(decoding));
        }
        assert!("fast".parse::<Decoding>().unwrap_err().contains("lookup+draft"));
    }
}
