//! Training examples from the split files of `ibert data all`: each record's stored `messages`
//! (the task library's prompt, so training and inference cannot drift) and its verified answer
//! (the task library's assistant message), tokenized as the model will see them at inference,
//! with the loss on the answer's tokens only; then the order of a run, drawn from a seed.

use std::collections::BTreeMap;
use std::path::Path;

use ibert_model::{ChatMessage, Engine, LocalModel};
use ibert_records::{Example, JsonlReader, Task};

use crate::network::{Batch, split_mix};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{path}, line {line}: the record has no `messages` (the prompt); regenerate the splits with `ibert data all`")]
    NoMessages { path: String, line: usize },
    #[error("{path}: no records to train on{detail}\nhint: run `ibert data all` first, or check --task")]
    Empty { path: String, detail: String },
    #[error("tokenizing {id}: {detail}")]
    Tokenize { id: String, detail: String },
}

/// One record, tokenized: the prompt then the answer (ending with the end-of-turn token).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub task: Task,
    pub tokens: Vec<u32>,
    /// Where the answer starts: the loss is on `tokens[answer..]`.
    pub answer: usize,
}

/// What reading a split kept and dropped.
#[derive(Debug, Default, Clone)]
pub struct Corpus {
    pub examples: Vec<Encoded>,
    /// Records longer than the token limit, left out.
    pub too_long: usize,
    /// Records of tasks not asked for.
    pub other_tasks: usize,
}

impl Corpus {
    pub fn per_task(&self) -> BTreeMap<Task, usize> {
        let mut counts = BTreeMap::new();
        for example in &self.examples {
            *counts.entry(example.task).or_insert(0) += 1;
        }
        counts
    }

    pub fn answer_tokens(&self) -> usize {
        self.examples.iter().map(|e| e.tokens.len() - e.answer).sum()
    }
}

/// The prompt and answer of `example` as token ids: the prompt exactly as inference renders it
/// (the chat template with the assistant's turn opened), then the rest of the conversation with
/// the answer, up to and including the first end-of-turn token.
pub fn encode(model: &LocalModel, example: &Example) -> Result<Encoded, String> {
    let messages = example.messages.as_ref().ok_or("no messages")?;
    let answer = ibert_tasks::prompt::assistant_message(example);
    let prompt = model.chat_prompt(messages).map_err(|e| e.to_string())?;
    let mut conversation = messages.clone();
    conversation.push(ChatMessage::new("assistant", &answer));
    let whole = model.conversation_text(&conversation).map_err(|e| e.to_string())?;
    // A template that renders the turns differently when an answer follows: the answer alone.
    let rest = whole.strip_prefix(&prompt).map(str::to_string).unwrap_or(answer);
    let tokenize = |text: &str| model.tokenizer().encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| e.to_string());
    let mut tokens = tokenize(&prompt)?;
    let answer_at = tokens.len();
    if answer_at == 0 {
        return Err("the prompt renders to no tokens".to_string());
    }
    let mut rest = tokenize(&rest)?;
    let end_tokens = model.end_tokens();
    match rest.iter().position(|t| end_tokens.contains(t)) {
        Some(end) => rest.truncate(end + 1),
        None => rest.extend(end_tokens.first()),
    }
    if rest.is_empty() {
        return Err("the answer is empty".to_string());
    }
    tokens.extend(rest);
    Ok(Encoded { task: example.task(), tokens, answer: answer_at })
}

/// The records of the split file `path` of the tasks `tasks` (all when empty), tokenized, those
/// over `max_tokens` left out.
pub fn read_split(path: &Path, model: &LocalModel, tasks: &[Task], max_tokens: usize) -> Result<Corpus, DataError> {
    let name = path.display().to_string();
    let reader = JsonlReader::<Example>::open(path).map_err(|error| DataError::Read { path: name.clone(), detail: error.to_string() })?;
    let mut corpus = Corpus::default();
    for record in reader {
        let (line, example) = record.map_err(|error| DataError::Read { path: name.clone(), detail: error.to_string() })?;
        if !tasks.is_empty() && !tasks.contains(&example.task()) {
            corpus.other_tasks += 1;
            continue;
        }
        if example.messages.is_none() {
            return Err(DataError::NoMessages { path: name, line });
        }
        let encoded = encode(model, &example).map_err(|detail| DataError::Tokenize { id: example.id.clone(), detail })?;
        if encoded.tokens.len() > max_tokens {
            corpus.too_long += 1;
        } else {
            corpus.examples.push(encoded);
        }
    }
    if corpus.examples.is_empty() {
        let detail = if corpus.too_long > 0 { format!(" ({} records are over the token limit)", corpus.too_long) } else { String::new() };
        return Err(DataError::Empty { path: name, detail });
    }
    Ok(corpus)
}

/// How often each task is drawn, relative to the others.
pub fn default_weight(task: Task) -> f64 {
    match task {
        // The checked tasks, where a better answer is measured.
        Task::SqlToIbis => 3.0,
        Task::CodeCompletion | Task::ErrorResolution => 2.0,
        Task::IbisToSql => 1.0,
        Task::Qa | Task::Documentation => 0.5,
    }
}

/// The examples of every step of a run: tasks drawn by weight, and within a task the examples in
/// an order shuffled anew at each pass over them. Everything follows from the seed, so a resumed
/// run replays the steps it already took and goes on with the same ones an uninterrupted run
/// takes.
pub struct Schedule {
    /// Per task: its weight and its examples' indices.
    tasks: Vec<(f64, Vec<usize>)>,
    seed: u64,
    /// Per task: the shuffled order of the current pass, and how far into it.
    passes: Vec<(Vec<usize>, usize, u64)>,
    draws: u64,
}

impl Schedule {
    pub fn new(corpus: &Corpus, weights: &BTreeMap<Task, f64>, seed: u64) -> Schedule {
        let mut by_task: BTreeMap<Task, Vec<usize>> = BTreeMap::new();
        for (index, example) in corpus.examples.iter().enumerate() {
            by_task.entry(example.task).or_default().push(index);
        }
        let tasks: Vec<(f64, Vec<usize>)> = by_task
            .into_iter()
            .map(|(task, indices)| (weights.get(&task).copied().unwrap_or_else(|| default_weight(task)), indices))
            .filter(|(w, _)| *w > 0.0)
            .collect();
        let passes = tasks.iter().map(|_| (Vec::new(), 0, 0)).collect();
        Schedule { tasks, seed, passes, draws: 0 }
    }

    /// Whether any task has examples and a weight above zero (else no step can be drawn).
    pub fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The next example's index (of a schedule that [`Schedule::has_tasks`]).
    pub fn next_example(&mut self) -> usize {
        self.draws += 1;
        let total: f64 = self.tasks.iter().map(|(w, _)| w).sum();
        let mut pick = unit(split_mix(self.seed ^ 0x5eed_0000_0000 ^ self.draws)) * total;
        let mut task = self.tasks.len() - 1;
        for (index, (weight, _)) in self.tasks.iter().enumerate() {
            if pick < *weight {
                task = index;
                break;
            }
            pick -= weight;
        }
        let (order, at, pass) = &mut self.passes[task];
        if *at >= order.len() {
            *pass += 1;
            *order = self.tasks[task].1.clone();
            shuffle(order, split_mix(self.seed ^ ((task as u64) << 40) ^ *pass));
            *at = 0;
        }
        *at += 1;
        order[*at - 1]
    }

    /// The examples of the next step.
    pub fn next_step(&mut self, examples: usize) -> Vec<usize> {
        (0..examples).map(|_| self.next_example()).collect()
    }
}

fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Fisher-Yates with a split-mix stream.
fn shuffle(values: &mut [usize], seed: u64) {
    for i in (1..values.len()).rev() {
        let j = (split_mix(seed ^ i as u64) % (i as u64 + 1)) as usize;
        values.swap(i, j);
    }
}

/// Packs the examples `indices` into micro-batches of at most `budget` tokens (an example longer
/// than that alone), longest first so batches fill evenly.
pub fn pack(corpus: &Corpus, indices: &[usize], budget: usize) -> Vec<Batch> {
    let mut sorted = indices.to_vec();
    sorted.sort_by_key(|i| std::cmp::Reverse(corpus.examples[*i].tokens.len()));
    let mut batches: Vec<Batch> = Vec::new();
    for index in sorted {
        let example = &corpus.examples[index];
        let fits = batches.iter().position(|b| b.tokens.len() + example.tokens.len() <= budget);
        let batch = match fits {
            Some(at) => &mut batches[at],
            None => {
                batches.push(Batch::default());
                batches.last_mut().expect("just pushed")
            }
        };
        let start = batch.tokens.len();
        batch.tokens.extend(&example.tokens);
        batch.sequences.push(start..batch.tokens.len());
        // Row r predicts token r + 1: the answer's tokens are predicted from the row before each.
        batch.targets.extend((example.answer..example.tokens.len()).map(|at| (start + at - 1, example.tokens[at])));
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Corpus {
        let example = |task, length: usize| Encoded { task, tokens: (0..length as u32).collect(), answer: length / 2 };
        let mut examples = Vec::new();
        for i in 0..30 {
            examples.push(example(Task::SqlToIbis, 4 + i % 5));
        }
        for i in 0..10 {
            examples.push(example(Task::Qa, 6 + i % 3));
        }
        Corpus { examples, ..Corpus::default() }
    }

    #[test]
    fn a_schedule_is_fixed_by_its_seed_and_follows_the_weights() {
        let corpus = corpus();
        let weights = BTreeMap::from([(Task::SqlToIbis, 3.0), (Task::Qa, 1.0)]);
        let draw = |seed| {
            let mut schedule = Schedule::new(&corpus, &weights, seed);
            (0..400).map(|_| schedule.next_example()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        let sql = draw(1).iter().filter(|i| corpus.examples[**i].task == Task::SqlToIbis).count();
        assert!((270..330).contains(&sql), "{sql} of 400 drawn from the task of weight 3 of 4");
        // Within a pass over a task, every example once.
        let first_pass: Vec<usize> = draw(1).into_iter().filter(|i| *i >= 30).take(10).collect();
        let mut sorted = first_pass.clone();
        sorted.sort();
        assert_eq!(sorted, (30..40).collect::<Vec<_>>());
        let zero = BTreeMap::from([(Task::SqlToIbis, 1.0), (Task::Qa, 0.0)]);
        let mut schedule = Schedule::new(&corpus, &zero, 3);
        assert!((0..100).all(|_| schedule.next_example() < 30));
    }

    #[test]
    fn packing_keeps_sequences_apart_and_targets_the_answers() {
        let corpus = corpus();
        let indices: Vec<usize> = (0..12).collect();
        let batches = pack(&corpus, &indices, 16);
        let packed: usize = batches.iter().flat_map(|b| &b.sequences).count();
        assert_eq!(packed, 12);
        for batch in &batches {
            assert!(batch.tokens.len() <= 16);
            let ends: usize = batch.sequences.iter().map(|s| s.len()).sum();
            assert_eq!(ends, batch.tokens.len());
            for (row, next) in &batch.targets {
                let sequence = batch.sequences.iter().find(|s| s.contains(row)).unwrap();
                assert!(row + 1 < sequence.end, "a target row predicts a token of its own sequence");
                assert_eq!(batch.tokens[row + 1], *next);
            }
        }
        let targets: usize = batches.iter().map(|b| b.targets.len()).sum();
        let answers: usize = indices.iter().map(|i| corpus.examples[*i].tokens.len() - corpus.examples[*i].answer).sum();
        assert_eq!(targets, answers);
    }
}
