//! Synthesized schemas and queries ([`crate::synth`]), verified, with the other tasks derived
//! from them: a run of `data synth` in `synth/run/` (resumable chunk by chunk), gathered into
//! `synth/train.jsonl` (the pairs), `synth/derived.jsonl` and `synth/rejects.jsonl`.

use std::path::{Path, PathBuf};

use ibert_records::{Example, RejectRecord, read_jsonl, write_jsonl};

use super::{Step, StepContext, StepError, StepReport};
use crate::synth::run::{CHUNK_FILES, Manifest, RunOptions, Shard, chunk_file, run_shard};
use crate::synth::{SynthSpec, Synthesizer};

/// The gathered files, in the output folder: (pairs, derived records, rejects).
pub fn outputs(dir: &Path) -> [PathBuf; 3] {
    let folder = dir.join("synth");
    [folder.join("train.jsonl"), folder.join("derived.jsonl"), folder.join("rejects.jsonl")]
}

pub struct Synthesis {
    /// Queries to synthesize; 0 skips the step (its files are written empty).
    pub count: u64,
    /// The dialects of the derived ibis_to_sql targets.
    pub dialects: Vec<String>,
}

/// Queries per chunk in `data all`: small enough that an interruption loses little.
const CHUNK_SIZE: u64 = 100;

impl Step for Synthesis {
    fn name(&self) -> &str {
        "synthesis"
    }

    fn title(&self) -> &str {
        "synthesized schemas and queries"
    }

    fn inputs(&self, _: &StepContext) -> Vec<PathBuf> {
        Vec::new()
    }

    fn settings(&self) -> Vec<String> {
        let mut settings = vec![format!("count {}", self.count), format!("dialects {}", self.dialects.join(","))];
        settings.extend(SynthSpec::default().settings());
        settings
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        outputs(context.dir).to_vec()
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let [pairs_path, derived_path, rejects_path] = outputs(context.dir);
        if self.count == 0 {
            write_jsonl::<Example>(&pairs_path, &[])?;
            write_jsonl::<Example>(&derived_path, &[])?;
            write_jsonl::<RejectRecord>(&rejects_path, &[])?;
            return Ok(Some(StepReport::line("skipped (--synth-count 0)".into())));
        }
        let synthesizer = Synthesizer::new(context.seed, SynthSpec::default());
        let options = RunOptions {
            synthesizer: &synthesizer,
            count: self.count,
            chunk_size: CHUNK_SIZE,
            shard: Shard::WHOLE,
            derive_dialects: Some(self.dialects.clone()),
            program: context.program.clone(),
        };
        let run_dir = context.dir.join("synth/run");
        // The run folder is this step's own: one made with other settings (another build, count,
        // seed or dialects) is replaced, as the step's outputs are.
        let manifest = options.manifest(&context.pool.hello().ibis);
        if Manifest::read(&run_dir).is_ok_and(|existing| existing != manifest) {
            context.progress.note(&format!("{} was made with other settings: made again", run_dir.display()));
            std::fs::remove_dir_all(&run_dir).map_err(|source| StepError::Io { action: "removing", path: run_dir.clone(), source })?;
        }
        let report =
            run_shard(&run_dir, &options, context.pool, context.progress, context.interrupted).map_err(|error| StepError::Synthesis(Box::new(error)))?;
        if report.interrupted {
            context.progress.note("interrupted: the finished chunks are kept in synth/run and reused by the next run");
            return Ok(None);
        }
        let chunks = manifest.chunks();
        let [pairs_suffix, derived_suffix, rejects_suffix] = CHUNK_FILES;
        let mut pairs: Vec<Example> = Vec::new();
        let mut derived: Vec<Example> = Vec::new();
        let mut rejects: Vec<RejectRecord> = Vec::new();
        for n in 0..chunks {
            pairs.extend(read_jsonl::<Example>(&chunk_file(&run_dir, n, pairs_suffix))?);
            derived.extend(read_jsonl::<Example>(&chunk_file(&run_dir, n, derived_suffix))?);
            rejects.extend(read_jsonl::<RejectRecord>(&chunk_file(&run_dir, n, rejects_suffix))?);
        }
        write_jsonl(&pairs_path, &pairs)?;
        write_jsonl(&derived_path, &derived)?;
        write_jsonl(&rejects_path, &rejects)?;
        Ok(Some(StepReport::line(format!("{} of {} queries verified, {} derived records, {} not kept", pairs.len(), self.count, derived.len(), rejects.len()))))
    }
}
