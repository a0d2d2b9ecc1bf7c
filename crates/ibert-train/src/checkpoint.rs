//! Checkpoints of a run: `checkpoints/step-N/` holds the adapter's factors and the optimizer's
//! moments (`state.safetensors`, f32) and `state.json` (the step, the run's settings, the
//! tensors file's sha256). A checkpoint is written into a temporary folder and renamed into
//! place, so a kill at any moment leaves the previous one whole; the two newest are kept.
//! Reading one checks the sha256 and every tensor's shape, so a damaged checkpoint is named and
//! passed over for the one before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ibert_model::adapter::LoraAdapter;
use ibert_model::tensor_file::{Precision, Tensor, read_tensors, write_tensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::optimizer::AdamW;

const TENSORS: &str = "state.safetensors";
const STATE: &str = "state.json";
const KEEP: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the checkpoint {path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },
}

/// What `state.json` records beside the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps done.
    pub step: u64,
    /// Training tokens processed so far.
    pub tokens: u64,
    /// Seconds spent training so far (over every session of the run).
    pub seconds: f64,
    /// The run's settings, as JSON: a resume with other settings is refused.
    pub settings: serde_json::Value,
    pub tensors_sha256: String,
}

/// A run's checkpoints folder.
pub struct Checkpoints {
    dir: PathBuf,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io { action, path, source }
}

fn tensor_names(prefix: &str, adapter: &LoraAdapter) -> Vec<(String, String)> {
    adapter
        .iter()
        .map(|(block, projection, _)| (format!("{prefix}.{block}.{}.a", projection.module()), format!("{prefix}.{block}.{}.b", projection.module())))
        .collect()
}

fn put(tensors: &mut BTreeMap<String, Tensor>, prefix: &str, adapter: &LoraAdapter) {
    for ((a, b), (_, _, factors)) in tensor_names(prefix, adapter).into_iter().zip(adapter.iter()) {
        tensors.insert(a, Tensor { shape: vec![factors.rank, factors.input], values: factors.a.clone() });
        tensors.insert(b, Tensor { shape: vec![factors.output, factors.rank], values: factors.b.clone() });
    }
}

/// Fills `adapter`'s factors from `tensors`, each of the size the adapter expects.
fn take(tensors: &mut BTreeMap<String, Tensor>, prefix: &str, adapter: &mut LoraAdapter) -> Result<(), String> {
    let names = tensor_names(prefix, adapter);
    for ((a, b), (_, _, factors)) in names.into_iter().zip(adapter.iter_mut()) {
        for (name, into) in [(a, &mut factors.a), (b, &mut factors.b)] {
            let tensor = tensors.remove(&name).ok_or_else(|| format!("no tensor {name}"))?;
            if tensor.values.len() != into.len() {
                return Err(format!("{name} has {} values, the adapter {}", tensor.values.len(), into.len()));
            }
            *into = tensor.values;
        }
    }
    Ok(())
}

fn sha256_of(path: &Path) -> Result<String, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io("reading", path))?;
    Ok(ibert_fetch::hex(&Sha256::digest(&bytes)))
}

impl Checkpoints {
    pub fn new(dir: &Path) -> Checkpoints {
        Checkpoints { dir: dir.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn step_dir(&self, step: u64) -> PathBuf {
        self.dir.join(format!("step-{step}"))
    }

    /// The steps of the checkpoints present, newest first.
    pub fn steps(&self) -> Vec<u64> {
        let mut steps: Vec<u64> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
            .collect();
        steps.sort_unstable_by(|a, b| b.cmp(a));
        steps
    }

    /// Writes the checkpoint of `state.step` and removes all but the newest two.
    pub fn save(&self, adapter: &LoraAdapter, optimizer: &AdamW, mut state: CheckpointState) -> Result<PathBuf, CheckpointError> {
        std::fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        let staging = tempfile::Builder::new().prefix(".step-").tempdir_in(&self.dir).map_err(io("writing in", &self.dir))?;
        let mut tensors = BTreeMap::new();
        put(&mut tensors, "adapter", adapter);
        put(&mut tensors, "first", &optimizer.first);
        put(&mut tensors, "second", &optimizer.second);
        let tensors_path = staging.path().join(TENSORS);
        write_tensors(&tensors_path, &tensors, Precision::F32, &[])
            .map_err(|error| CheckpointError::Damaged { path: tensors_path.clone(), detail: error.to_string() })?;
        state.tensors_sha256 = sha256_of(&tensors_path)?;
        let state_path = staging.path().join(STATE);
        let text = serde_json::to_string_pretty(&state).expect("a checkpoint's state is JSON") + "\n";
        ibert_model::tensor_file::write_atomically(&state_path, text.as_bytes())
            .map_err(|error| CheckpointError::Damaged { path: state_path.clone(), detail: error.to_string() })?;
        let target = self.step_dir(state.step);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(io("replacing", &target))?;
        }
        std::fs::rename(staging.keep(), &target).map_err(io("renaming into", &target))?;
        for old in self.steps().into_iter().skip(KEEP) {
            let _ = std::fs::remove_dir_all(self.step_dir(old));
        }
        Ok(target)
    }

    /// The `state.json` of the checkpoint of `step` (its settings, before its tensors are read).
    pub fn state(&self, step: u64) -> Result<CheckpointState, CheckpointError> {
        let dir = self.step_dir(step);
        let state_path = dir.join(STATE);
        let text = std::fs::read_to_string(&state_path).map_err(io("reading", &state_path))?;
        serde_json::from_str(&text).map_err(|error| CheckpointError::Damaged { path: dir.clone(), detail: format!("{STATE}: {error}") })
    }

    /// Reads the checkpoint of `step` into `adapter` and `optimizer` (shaped as the run's).
    pub fn load(&self, step: u64, adapter: &mut LoraAdapter, optimizer: &mut AdamW) -> Result<CheckpointState, CheckpointError> {
        let dir = self.step_dir(step);
        let damaged = |detail: String| CheckpointError::Damaged { path: dir.clone(), detail };
        let state = self.state(step)?;
        let tensors_path = dir.join(TENSORS);
        let found = sha256_of(&tensors_path)?;
        if found != state.tensors_sha256 {
            return Err(damaged(format!("{TENSORS} has the sha256 {found}, {STATE} records {}", state.tensors_sha256)));
        }
        let mut tensors = read_tensors(&tensors_path).map_err(|error| damaged(error.to_string()))?;
        take(&mut tensors, "adapter", adapter).map_err(&damaged)?;
        take(&mut tensors, "first", &mut optimizer.first).map_err(&damaged)?;
        take(&mut tensors, "second", &mut optimizer.second).map_err(&damaged)?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use ibert_model::architecture::{Architecture, Projection};

    use super::*;

    fn adapter(seed: f32) -> LoraAdapter {
        let mut adapter = LoraAdapter::zeros(Architecture::Qwen2, &crate::synthetic::shape(2), 2, 4.0, &[Projection::Query, Projection::Down], 0);
        for (i, (_, _, f)) in adapter.iter_mut().enumerate() {
            f.a = crate::synthetic::wavy(f.a.len(), seed + i as f32, 1.0);
            f.b = crate::synthetic::wavy(f.b.len(), seed + 50.0 + i as f32, 1.0);
        }
        adapter
    }

    fn state(step: u64) -> CheckpointState {
        CheckpointState { step, tokens: step * 100, seconds: 1.5, settings: serde_json::json!({"rank": 2}), tensors_sha256: String::new() }
    }

    #[test]
    fn a_checkpoint_comes_back_whole_and_only_the_newest_two_stay() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::new(dir.path());
        let optimizer = AdamW { first: adapter(10.0), second: adapter(20.0) };
        for step in [5, 10, 15] {
            checkpoints.save(&adapter(step as f32), &optimizer, state(step)).unwrap();
        }
        assert_eq!(checkpoints.steps(), vec![15, 10]);
        let (mut read, mut moments) = (adapter(0.0), AdamW::new(&adapter(0.0)));
        let loaded = checkpoints.load(15, &mut read, &mut moments).unwrap();
        assert_eq!((loaded.step, loaded.tokens), (15, 1500));
        assert_eq!(read, adapter(15.0));
        assert_eq!(moments, optimizer);
    }

    #[test]
    fn a_damaged_checkpoint_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::new(dir.path());
        let path = checkpoints.save(&adapter(1.0), &AdamW::new(&adapter(1.0)), state(3)).unwrap();
        let tensors = path.join(TENSORS);
        let bytes = std::fs::read(&tensors).unwrap();
        std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();
        let (mut read, mut moments) = (adapter(0.0), AdamW::new(&adapter(0.0)));
        let error = checkpoints.load(3, &mut read, &mut moments).unwrap_err().to_string();
        assert!(error.contains("step-3") && error.contains("sha256"), "{error}");
    }
}
