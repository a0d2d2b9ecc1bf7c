//! The finished adapter: a PEFT folder (bf16 factors) with the run's step log, its loss curves
//! and a card that says how it was made, written whole or not at all.

use std::path::Path;

use ibert_model::adapter::LoraAdapter;
use ibert_model::adapter::peft::write_peft;
use ibert_model::architecture::Shape;
use ibert_model::tensor_file::Precision;

use crate::plot::{Curves, write_png};
use crate::run::{Settings, StepRecord};

pub const CARD_FILE: &str = "README.md";
pub const LOSS_PLOT: &str = "loss.png";

/// What the card reports beside the settings.
pub struct Report<'a> {
    pub command: &'a str,
    pub log: &'a [StepRecord],
    /// The validation loss of the base alone, and of the adapter at the end.
    pub base_validation: Option<f64>,
    pub final_validation: Option<f64>,
    /// Training records per task.
    pub records: &'a [(String, usize)],
}

/// `(step, loss)` points of a curve.
pub type Points = Vec<(u64, f64)>;

/// The training and validation curves of a step log.
pub fn loss_curves(log: &[StepRecord]) -> (Points, Points) {
    let training = log.iter().map(|r| (r.step, r.loss)).collect();
    let validation = log.iter().filter_map(|r| r.validation_loss.map(|v| (r.step, v))).collect();
    (training, validation)
}

/// Writes the adapter folder `dir`.
pub fn write_adapter(dir: &Path, adapter: &LoraAdapter, shape: &Shape, settings: &Settings, report: &Report) -> Result<(), String> {
    let staging = tempfile::tempdir().map_err(|error| format!("a temporary folder for the loss curves: {error}"))?;
    let (training, validation) = loss_curves(report.log);
    let plot = staging.path().join(LOSS_PLOT);
    let title = format!("LoRA r{} on {}", settings.rank, settings.base.name);
    write_png(&Curves { training: &training, validation: &validation, title: &title }, &plot)?;
    let plot = std::fs::read(&plot).map_err(|error| format!("reading the loss curves back: {error}"))?;
    let log: String = report.log.iter().map(|r| serde_json::to_string(r).expect("a step record is JSON") + "\n").collect();
    let extra = [(CARD_FILE, card(adapter, settings, report).into_bytes()), (crate::run::LOG_FILE, log.into_bytes()), (LOSS_PLOT, plot)];
    write_peft(adapter, shape, dir, Precision::Bf16, &extra).map_err(|error| error.to_string())
}

fn card(adapter: &LoraAdapter, settings: &Settings, report: &Report) -> String {
    let last = report.log.last();
    let seconds = last.map_or(0.0, |r| r.seconds);
    let tokens: usize = report.log.iter().map(|r| r.tokens).sum();
    let mean = |records: &[StepRecord]| records.iter().map(|r| r.loss).sum::<f64>() / records.len().max(1) as f64;
    let head = &report.log[..report.log.len().min(10)];
    let tail = &report.log[report.log.len().saturating_sub(10)..];
    let validation = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let records: String = report.records.iter().map(|(task, n)| format!("| {task} | {n} |\n")).collect();
    let o = &settings.optimizer;
    format!(
        "# LoRA adapter for {base}\n\n\
         Trained by `ibert train` on the verified corpus of `ibert data all` (loss on the answers only).\n\n\
         - base: `{base}`, sha256 `{sha}`\n\
         - data: the train and validation splits, sha256 `{data}`\n\
         - command: `{command}`\n\
         - seed {seed}; rank {rank}, alpha {alpha}, dropout {dropout}, targets {targets}, blocks {first}..\n\
         - AdamW: peak rate {lr}, warm-up {warmup} steps, cosine to {fraction} of the peak over {total} steps, weight decay {decay}, clip {clip}\n\
         - {batch} records a step, micro-batches of {micro} tokens, records up to {max} tokens; frozen base: {frozen}\n\
         - {parameters} trainable parameters; {steps} steps, {tokens} tokens in {minutes:.1} minutes ({rate:.0} tokens/s)\n\n\
         | loss | value |\n|---|---|\n\
         | training, first 10 steps | {first_loss:.4} |\n\
         | training, last 10 steps | {last_loss:.4} |\n\
         | validation, base alone | {base_validation} |\n\
         | validation, with the adapter | {final_validation} |\n\n\
         | task | training records |\n|---|---|\n{records}\n\
         The step log is `train_log.jsonl`, the curves `loss.png`.\n",
        base = settings.base.name,
        sha = settings.base.sha256.as_deref().unwrap_or("unknown"),
        data = settings.data_sha256,
        command = report.command,
        seed = settings.seed,
        rank = settings.rank,
        alpha = settings.alpha,
        dropout = settings.dropout,
        targets = settings.targets.join(", "),
        first = settings.first_block,
        lr = o.learning_rate,
        warmup = o.warmup_steps,
        fraction = o.final_fraction,
        total = o.total_steps,
        decay = o.weight_decay,
        clip = o.clip_norm,
        batch = settings.batch_examples,
        micro = settings.micro_batch_tokens,
        max = settings.max_tokens,
        frozen = settings.frozen,
        parameters = adapter.parameters(),
        steps = last.map_or(0, |r| r.step),
        minutes = seconds / 60.0,
        rate = tokens as f64 / seconds.max(1e-9),
        first_loss = mean(head),
        last_loss = mean(tail),
        base_validation = validation(report.base_validation),
        final_validation = validation(report.final_validation),
    )
}
