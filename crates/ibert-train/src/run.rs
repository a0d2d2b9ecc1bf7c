//! A training run: the steps, validation, checkpoints and the step log, resumable.
//!
//! A run lives in a folder (`ADAPTER_DIR.run/`): `train_log.jsonl` (one line per step) and
//! `checkpoints/`. Started again with the same settings, it resumes from the newest whole
//! checkpoint: the factors, the optimizer's moments, the step, and (since the order of examples
//! and the dropout masks follow from the seed and the step) the same data, so it ends with the
//! adapter an uninterrupted run ends with.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ibert_model::adapter::{BaseModel, LoraAdapter};
use ibert_model::architecture::Projection;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointError, CheckpointState, Checkpoints};
use crate::data::{Corpus, Schedule, pack};
use crate::network::{Batch, Dropout, Network, split_mix};
use crate::optimizer::{AdamW, Hyperparameters, zeros_like};

pub const LOG_FILE: &str = "train_log.jsonl";

/// Everything that decides a run's result; a resume with other settings is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub base: BaseModel,
    pub rank: usize,
    pub alpha: f32,
    pub dropout: f32,
    pub targets: Vec<String>,
    pub first_block: usize,
    pub optimizer: Hyperparameters,
    /// Examples per optimizer step (packed into micro-batches, their gradients accumulated).
    pub batch_examples: usize,
    pub micro_batch_tokens: usize,
    pub max_tokens: usize,
    pub task_weights: BTreeMap<String, f64>,
    pub seed: u64,
    pub frozen: String,
    pub validation_every: u64,
    /// sha256 of the training and validation split files.
    pub data_sha256: String,
}

/// When a run stops early.
pub struct Limits {
    /// Training time over all sessions of the run.
    pub max_minutes: Option<f64>,
    pub checkpoint_every: u64,
    /// Set by Ctrl-C: the run checkpoints and stops.
    pub stop: Arc<AtomicBool>,
}

/// One line of the step log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u64,
    /// Mean loss per answer token (nats).
    pub loss: f64,
    pub learning_rate: f32,
    pub gradient_norm: f32,
    /// Tokens run through the network this step (prompts and answers).
    pub tokens: usize,
    pub answer_tokens: usize,
    pub tokens_per_second: f64,
    /// Training seconds so far, over all sessions.
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
}

/// What the caller shows as the run goes.
pub trait Observer {
    fn begin(&mut self, total_steps: u64, resumed_from: Option<u64>);
    fn step(&mut self, record: &StepRecord);
    fn note(&mut self, text: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Finished,
    TimeLimit,
    Interrupted,
}

pub struct Outcome {
    pub ending: Ending,
    pub adapter: LoraAdapter,
    pub log: Vec<StepRecord>,
    pub resumed_from: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "{dir} holds a run with other settings ({difference})\nhint: resume it with its own settings, or train into another --output (or pass --restart to start over)"
    )]
    OtherRun { dir: PathBuf, difference: String },
    #[error(
        "the loss diverged at step {step} ({what}); the last good checkpoint is {checkpoint}\nhint: lower --learning-rate or raise --warmup-steps, and run again (it resumes from that checkpoint)"
    )]
    Diverged { step: u64, what: String, checkpoint: String },
    #[error("every task of the training records has the weight 0\nhint: give one a weight above 0 with --task-weight TASK=W")]
    NoTasks,
    #[error("training failed: {0}")]
    Network(#[from] ibert_model::EngineError),
}

/// A fresh adapter as PEFT initializes one: `A` uniform in `±1/sqrt(input)` (Kaiming's with
/// `a = sqrt(5)`), `B` zero, so training starts from the base's own answers.
pub fn initial_adapter(network: &Network, settings: &Settings, targets: &[Projection]) -> LoraAdapter {
    let architecture = network.weights().architecture;
    let mut adapter = LoraAdapter::zeros(architecture, network.shape(), settings.rank, settings.alpha, targets, settings.first_block);
    adapter.dropout = settings.dropout;
    adapter.base = settings.base.clone();
    for (index, (_, _, factors)) in adapter.iter_mut().enumerate() {
        let bound = 1.0 / (factors.input as f32).sqrt();
        let seed = split_mix(settings.seed ^ 0xa0a0_0000 ^ ((index as u64) << 32));
        for (i, value) in factors.a.iter_mut().enumerate() {
            let unit = (split_mix(seed ^ i as u64) >> 40) as f32 / (1u64 << 24) as f32;
            *value = bound * (2.0 * unit - 1.0);
        }
    }
    adapter
}

/// The mean loss per answer token over `batches`.
pub fn mean_loss(network: &Network, adapter: Option<&LoraAdapter>, batches: &[Batch]) -> Result<f64, TrainError> {
    let (mut loss, mut targets) = (0.0, 0usize);
    for batch in batches {
        loss += network.loss(adapter, batch)?;
        targets += batch.targets.len();
    }
    Ok(loss / targets.max(1) as f64)
}

/// The log lines of steps up to `step` (a line cut short by a kill is dropped).
fn read_log(path: &Path, step: u64) -> Vec<StepRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|line| serde_json::from_str::<StepRecord>(line).ok()).filter(|record| record.step <= step).collect()
}

struct Log {
    path: PathBuf,
    file: std::fs::File,
}

impl Log {
    /// The log holding `records` (rewritten, so lines past the checkpoint go).
    fn start(path: &Path, records: &[StepRecord]) -> Result<Log, TrainError> {
        let io = |action| {
            let path = path.to_path_buf();
            move |source| TrainError::Io { action, path, source }
        };
        let text: String = records.iter().map(|r| serde_json::to_string(r).expect("a step record is JSON") + "\n").collect();
        ibert_model::tensor_file::write_atomically(path, text.as_bytes()).map_err(|error| TrainError::Io {
            action: "writing",
            path: path.to_path_buf(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let file = std::fs::OpenOptions::new().append(true).open(path).map_err(io("opening"))?;
        Ok(Log { path: path.to_path_buf(), file })
    }

    fn append(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        let line = serde_json::to_string(record).expect("a step record is JSON") + "\n";
        self.file.write_all(line.as_bytes()).map_err(|source| TrainError::Io { action: "writing", path: self.path.clone(), source })
    }
}

/// What a run trains on: the network, the records and the adapted projections.
pub struct Inputs<'a> {
    pub network: &'a Network,
    pub corpus: &'a Corpus,
    pub validation: &'a [Batch],
    pub targets: &'a [Projection],
}

/// Runs (or resumes) the run in `run_dir` until its last step, its time limit or a stop.
pub fn train(inputs: &Inputs, settings: &Settings, run_dir: &Path, limits: &Limits, observer: &mut dyn Observer) -> Result<Outcome, TrainError> {
    let Inputs { network, corpus, validation, targets } = *inputs;
    let checkpoints = Checkpoints::new(&run_dir.join("checkpoints"));
    let settings_json = serde_json::to_value(settings).expect("settings are JSON");
    let mut adapter = initial_adapter(network, settings, targets);
    let mut optimizer = AdamW::new(&adapter);
    let mut state = CheckpointState { step: 0, tokens: 0, seconds: 0.0, settings: settings_json.clone(), tensors_sha256: String::new() };
    let mut resumed_from = None;
    for step in checkpoints.steps() {
        // The settings first: a checkpoint of other settings (another rank) is another run, to
        // be refused, not a damaged one to pass over (which would start this one over it).
        if let Ok(recorded) = checkpoints.state(step) {
            // Compared as settings, not as JSON text: an f32 read back from JSON is the same
            // f32, though its f64 spelling may differ in the last digit.
            let parsed = serde_json::from_value::<Settings>(recorded.settings.clone()).ok();
            if parsed.as_ref() != Some(settings) {
                let old = parsed.map_or(recorded.settings, |s| serde_json::to_value(s).expect("settings are JSON"));
                return Err(TrainError::OtherRun { dir: run_dir.to_path_buf(), difference: difference(&old, &settings_json) });
            }
        }
        match checkpoints.load(step, &mut adapter, &mut optimizer) {
            Ok(loaded) => {
                state = loaded;
                resumed_from = Some(step);
                break;
            }
            Err(error) => {
                observer.note(&format!("{error}; trying the checkpoint before it"));
                adapter = initial_adapter(network, settings, targets);
                optimizer = AdamW::new(&adapter);
            }
        }
    }
    let log_path = run_dir.join(LOG_FILE);
    let mut records = if resumed_from.is_some() { read_log(&log_path, state.step) } else { Vec::new() };
    let mut log = Log::start(&log_path, &records)?;

    let weights: BTreeMap<ibert_records::Task, f64> = ibert_records::Task::ALL
        .iter()
        .map(|task| (*task, settings.task_weights.get(task.as_str()).copied().unwrap_or_else(|| crate::data::default_weight(*task))))
        .collect();
    let mut schedule = Schedule::new(corpus, &weights, settings.seed);
    if !schedule.has_tasks() {
        return Err(TrainError::NoTasks);
    }
    // The steps already taken: their draws replayed, so the next step gets what it would have.
    for _ in 0..state.step {
        schedule.next_step(settings.batch_examples);
    }
    let total = settings.optimizer.total_steps;
    observer.begin(total, resumed_from);
    let session = Instant::now();
    let seconds_before = state.seconds;
    let mut gradients = zeros_like(&adapter);
    let mut ending = Ending::Finished;
    let mut first_loss = records.first().map(|r| r.loss);
    while state.step < total {
        if limits.stop.load(Ordering::SeqCst) {
            ending = Ending::Interrupted;
            break;
        }
        if limits.max_minutes.is_some_and(|minutes| state.seconds >= minutes * 60.0) {
            ending = Ending::TimeLimit;
            break;
        }
        let step = state.step + 1;
        let started = Instant::now();
        let batches = pack(corpus, &schedule.next_step(settings.batch_examples), settings.micro_batch_tokens);
        let answer_tokens: usize = batches.iter().map(|b| b.targets.len()).sum();
        let tokens: usize = batches.iter().map(|b| b.tokens.len()).sum();
        gradients.iter_mut().for_each(|(_, _, f)| {
            f.a.fill(0.0);
            f.b.fill(0.0);
        });
        let mut loss = 0.0;
        for (index, batch) in batches.iter().enumerate() {
            let dropout = Dropout { rate: settings.dropout, seed: split_mix(settings.seed ^ (step << 20) ^ index as u64) };
            loss += network.train_step(&adapter, batch, Some(dropout), 1.0 / answer_tokens.max(1) as f32, &mut gradients)?;
        }
        let loss = loss / answer_tokens.max(1) as f64;
        let reference = *first_loss.get_or_insert(loss);
        let last_good = || {
            checkpoints.steps().first().map(|s| checkpoints.dir().join(format!("step-{s}")).display().to_string()).unwrap_or("none (start over)".to_string())
        };
        if !loss.is_finite() || loss > 4.0 * reference + 5.0 {
            return Err(TrainError::Diverged { step, what: format!("loss {loss:.3}, from {reference:.3} at the start"), checkpoint: last_good() });
        }
        let learning_rate = settings.optimizer.rate(step);
        let gradient_norm = optimizer.update(&mut adapter, &gradients, step, &settings.optimizer);
        if !gradient_norm.is_finite() {
            return Err(TrainError::Diverged { step, what: format!("gradient norm {gradient_norm}"), checkpoint: last_good() });
        }
        let elapsed = started.elapsed().as_secs_f64();
        state.step = step;
        state.tokens += tokens as u64;
        state.seconds = seconds_before + session.elapsed().as_secs_f64();
        let validation_loss =
            if step.is_multiple_of(settings.validation_every.max(1)) || step == total { Some(mean_loss(network, Some(&adapter), validation)?) } else { None };
        let record = StepRecord {
            step,
            loss,
            learning_rate,
            gradient_norm,
            tokens,
            answer_tokens,
            tokens_per_second: tokens as f64 / elapsed.max(1e-9),
            seconds: state.seconds,
            validation_loss,
        };
        log.append(&record)?;
        observer.step(&record);
        records.push(record);
        if step.is_multiple_of(limits.checkpoint_every.max(1)) {
            checkpoints.save(&adapter, &optimizer, state.clone())?;
        }
    }
    // A run stopped early is measured where it stopped, for its card (the run's own log keeps
    // one line per step).
    if let Some(last) = records.last_mut().filter(|last| last.validation_loss.is_none()) {
        last.validation_loss = Some(mean_loss(network, Some(&adapter), validation)?);
    }
    if checkpoints.steps().first() != Some(&state.step) && state.step > 0 {
        checkpoints.save(&adapter, &optimizer, state.clone())?;
    }
    Ok(Outcome { ending, adapter, log: records, resumed_from })
}

/// The settings that differ, for the refusal message.
fn difference(old: &serde_json::Value, new: &serde_json::Value) -> String {
    match (old.as_object(), new.as_object()) {
        (Some(old), Some(new)) => {
            let keys: Vec<String> = new
                .keys()
                .filter(|k| old.get(*k) != new.get(*k))
                .map(|k| format!("{k}: {} then, {} now", old.get(k).unwrap_or(&serde_json::Value::Null), new[k]))
                .collect();
            if keys.is_empty() { "the settings' format".to_string() } else { keys.join("; ") }
        }
        _ => "the settings' format".to_string(),
    }
}
