//! `data merge`: the chunks of synthesis runs or shards ([`crate::synth::run`]) combined into
//! one dataset: every chunk checked before anything is written, duplicates removed across
//! chunks and shards (the first copy, in run and chunk order, kept), splits by structure, the
//! prompt a model sees on every record.

use std::path::{Path, PathBuf};

use ibert_records::{ChatMessage, Example, JsonlWriter};

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
    for example in &mut merged.examples {
        let messages = prompt(example);
        example.system_prompt = messages.first().map(|message| message.content.clone());
        example.messages = Some(messages);
    }
    assign_splits(&mut merged.examples);
    // Every file is written in full beside its place first and the files are renamed into
    // place together at the end, so an interrupted merge leaves the previous files.
    let mut files = vec![out.join("train_complete.jsonl")];
    let mut writers = vec![JsonlWriter::create(&files[0])?];
    for example in &merged.examples {
        writers[0].write(example)?;
    }
    for split in SPLITS {
        let path = out.join(format!("splits/{split}.jsonl"));
        let mut writer = JsonlWriter::create(&path)?;
        for example in merged.examples.iter().filter(|example| example.meta.split.as_deref() == Some(split)) {
            writer.write(example)?;
        }
        writers.push(writer);
        files.push(path);
    }
    let stats = Stats::of(&merged.examples);
    for writer in writers {
        writer.commit()?;
    }
    let path = out.join("stats.json");
    stats.write_json(&path).map_err(|source| crate::steps::StepError::Io { action: "writing", path: path.clone(), source })?;
    files.push(path);
    Ok(MergeReport { merged, stats, files })
}
