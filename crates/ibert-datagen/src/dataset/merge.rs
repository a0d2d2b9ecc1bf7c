//! `data merge`: the chunks of synthesis runs or shards ([`crate::synth::run`]) combined into
//! one dataset: every chunk checked before anything is written, duplicates removed across
//! chunks and shards (the first copy, in run and chunk order, kept), splits by structure, the
//! prompt a model sees on every record.

use std::path::{Path, PathBuf};

use ibert_records::{ChatMessage, Example, JsonlWriter, RecordError};

use crate::dataset::concat::{Merged, Source, concat};
use crate::dataset::split::{SPLITS, assign_splits};
use crate::dataset::stats::Stats;
use crate::synth::run::{RunError, read_runs};

/// What a merge wrote.
pub struct MergeReport {
    pub merged: Merged,
    pub stats: Stats,
    pub files: Vec<PathBuf>,
}

/// Merges the runs in `inputs` into `out`: `train_complete.jsonl`, `splits/{split}.jsonl` and
/// `stats.json`, each complete or not at all; nothing is written when an input is incomplete.
pub fn merge_runs(inputs: &[PathBuf], out: &Path, prompt: &(dyn Fn(&Example) -> Vec<ChatMessage> + Sync)) -> Result<MergeReport, RunError> {
    let sources = read_runs(inputs)?.into_iter().map(|(label, examples)| Source { label, examples }).collect();
    let mut merged = concat(sources);
    let mut files = write_dataset(&mut merged.examples, out, prompt)?;
    let stats = Stats::of(&merged.examples);
    let path = out.join("stats.json");
    stats.write_json(&path).map_err(|source| crate::steps::StepError::Io { action: "writing", path: path.clone(), source })?;
    files.push(path);
    Ok(MergeReport { merged, stats, files })
}

/// The whole dataset in the folder `dir`.
pub fn complete_file(dir: &Path) -> PathBuf {
    dir.join("train_complete.jsonl")
}

/// The records of one split in the folder `dir`.
pub fn split_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("splits/{split}.jsonl"))
}

/// Gives every record the prompt a model sees for it (`messages`, `system_prompt`) and its split,
/// and writes `out/train_complete.jsonl` and `out/splits/{split}.jsonl`. Every file is written in
/// full beside its place first and they are renamed into place together at the end, so an
/// interrupted run leaves the previous files. The files, in that order.
pub fn write_dataset(examples: &mut [Example], out: &Path, prompt: &(dyn Fn(&Example) -> Vec<ChatMessage> + Sync)) -> Result<Vec<PathBuf>, RecordError> {
    for example in examples.iter_mut() {
        let messages = prompt(example);
        example.system_prompt = messages.first().map(|message| message.content.clone());
        example.messages = Some(messages);
    }
    assign_splits(examples);
    let mut files = vec![complete_file(out)];
    let mut writers = vec![JsonlWriter::create(&files[0])?];
    for example in examples.iter() {
        writers[0].write(example)?;
    }
    for split in SPLITS {
        let path = split_file(out, split);
        let mut writer = JsonlWriter::create(&path)?;
        for example in examples.iter().filter(|example| example.meta.split.as_deref() == Some(split)) {
            writer.write(example)?;
        }
        writers.push(writer);
        files.push(path);
    }
    for writer in writers {
        writer.commit()?;
    }
    Ok(files)
}
