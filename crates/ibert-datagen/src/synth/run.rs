//! A synthesis run in a folder, cut into chunks of consecutive queries and spread over shards.
//!
//! Chunk `k` holds queries `k*size .. (k+1)*size`; shard `I/N` makes the chunks with
//! `k % N == I`. What a chunk holds depends only on the run's settings and `k`, so any number
//! of shards, on one machine or many, make the same chunks as one unsharded run. The folder:
//!
//! | file | what |
//! | --- | --- |
//! | `synth.json` | the run's settings; every shard writing to the folder must have the same |
//! | `chunks/NNNNNN.jsonl` | the verified sql_to_ibis pairs of chunk N |
//! | `chunks/NNNNNN.derived.jsonl` | the other tasks derived from them (when derivation is on) |
//! | `chunks/NNNNNN.rejects.jsonl` | every query not kept, with its reason |
//! | `chunks/NNNNNN.done.json` | the chunk's completion marker: settings, counts, sha256s |
//! | `shard-I-of-N.done.json` | a finished shard: its chunks and their counts |
//!
//! Every file is written to a temporary file and renamed into place, and a chunk's marker comes
//! last, so a shard killed at any point leaves complete chunks and nothing else that counts; a
//! re-run skips the complete chunks (same settings, same sha256s) and redoes the rest.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ibert_oracle::WorkerPool;
use ibert_records::{Example, JsonlWriter, Meta, RecordError, RejectRecord};
use ibert_verify::{Timings, fixtures_for_seed};
use serde::{Deserialize, Serialize};

use super::{Refused, Synthesizer};
use crate::multitask::{MultitaskOptions, derive};
use crate::progress::Progress;
use crate::records::{reject_record, verified_example};
use crate::steps::StepError;
use crate::steps::marker::{sha256, write_json};
use crate::{Candidate, PipelineError, PipelineOptions, verify_candidates};

/// Which part of the work one process does: shard `index` of `count`, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Reads `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("a shard is written I/N with 0 <= I < N (shard 0/4 is the first of four), found `{text}`");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (index.trim().parse().map_err(|_| bad())?, count.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard a batch scheduler gave this process: Kubernetes' `JOB_COMPLETION_INDEX` with
    /// `count` shards; Slurm's `SLURM_ARRAY_TASK_ID` with `count` shards (the task id is the
    /// shard, so that `sbatch --array=5` resubmits shard 5), or without `count`, less
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`. `None` when neither is set; the
    /// variable it came from beside it.
    pub fn from_environment(count: Option<u64>, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<(Shard, &'static str)>, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name).map(|value| value.trim().parse::<u64>().map_err(|_| format!("{name} must be a whole number, found `{value}`"))).transpose()
        };
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = count.ok_or("JOB_COMPLETION_INDEX is set: pass --shards N, the Job's completions, to say how many shards there are")?;
            return Shard::parse(&format!("{index}/{count}")).map(|shard| Some((shard, "JOB_COMPLETION_INDEX")));
        }
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            if let Some(count) = count {
                return Shard::parse(&format!("{id}/{count}")).map(|shard| Some((shard, "SLURM_ARRAY_TASK_ID")));
            }
            let total = number("SLURM_ARRAY_TASK_COUNT")?.ok_or("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT: pass --shards N")?;
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id.checked_sub(min).ok_or(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))?;
            return Shard::parse(&format!("{index}/{total}")).map(|shard| Some((shard, "SLURM_ARRAY_TASK_ID")));
        }
        Ok(None)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The settings of a run: what every chunk is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub seed: u64,
    pub count: u64,
    pub chunk_size: u64,
    /// The spec's settings, the derivation's dialects, the Ibis version and the program.
    pub settings: Vec<String>,
}

impl Manifest {
    pub fn chunks(&self) -> u64 {
        self.count.div_ceil(self.chunk_size)
    }

    fn path(dir: &Path) -> PathBuf {
        dir.join("synth.json")
    }

    /// The manifest of the run in `dir`; an error naming the folder when there is none or it
    /// does not read.
    pub fn read(dir: &Path) -> Result<Manifest, RunError> {
        let path = Manifest::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => RunError::NotARun(dir.to_path_buf()),
            _ => RunError::Step(StepError::Io { action: "reading", path: path.clone(), source }),
        })?;
        serde_json::from_str(&text).map_err(|error| RunError::Corrupt { path, message: error.to_string() })
    }
}

/// A complete chunk's marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMarker {
    pub chunk: u64,
    pub manifest: Manifest,
    pub queries: u64,
    pub verified: u64,
    pub derived: u64,
    /// Reason -> count, `refused` (by the transpiler) and `duplicate` included.
    pub rejected: BTreeMap<String, u64>,
    /// File name (in `chunks/`) -> sha256.
    pub files: Vec<(String, String)>,
}

/// A finished shard's marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMarker {
    pub shard: String,
    pub manifest: Manifest,
    pub chunks: Vec<u64>,
    pub verified: u64,
    pub derived: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0} is not a synthesis folder (it has no synth.json); give the -o folder of `ibert data synth`")]
    NotARun(PathBuf),
    #[error("{path} is damaged ({message}); remove it and run `ibert data synth` again")]
    Corrupt { path: PathBuf, message: String },
    #[error("{dir} holds a synthesis run with other settings ({differs}); use another folder, or run it with the settings it was made with")]
    OtherRun { dir: PathBuf, differs: String },
    #[error("{dirs}: chunk {chunk} is not complete{why}; run the same `ibert data synth` (or its shard) again to finish it")]
    Incomplete { dirs: String, chunk: u64, why: String },
    #[error(transparent)]
    Step(#[from] StepError),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Oracle(#[from] ibert_oracle::OracleError),
}

/// What a run (of one shard) is asked to do.
pub struct RunOptions<'a> {
    pub synthesizer: &'a Synthesizer,
    pub count: u64,
    pub chunk_size: u64,
    pub shard: Shard,
    /// The dialects of the derived ibis_to_sql targets; `None`: no derived tasks.
    pub derive_dialects: Option<Vec<String>>,
    /// The running program and the Ibis version, recorded in the manifest.
    pub program: String,
}

impl RunOptions<'_> {
    pub fn manifest(&self, ibis_version: &str) -> Manifest {
        let mut settings = self.synthesizer.spec.settings();
        settings.push(match &self.derive_dialects {
            Some(dialects) => format!("derive {}", dialects.join(",")),
            None => "derive none".into(),
        });
        settings.push(format!("ibis {ibis_version}"));
        settings.push(self.program.clone());
        Manifest { seed: self.synthesizer.seed, count: self.count, chunk_size: self.chunk_size, settings }
    }
}

/// Where a shard's time went.
#[derive(Debug, Clone, Default)]
pub struct StageTimes {
    /// Drawing queries and translating them (the transpiler).
    pub synthesis: Duration,
    /// Verification, wall time; `timings` splits it (summed over threads).
    pub verification: Duration,
    pub timings: Timings,
    pub derivation: Duration,
    pub writing: Duration,
}

/// What a shard did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub chunks_made: u64,
    pub chunks_skipped: u64,
    pub queries: u64,
    pub verified: u64,
    /// Verified pairs of the chunks made now (for throughput).
    pub verified_made: u64,
    pub derived: u64,
    /// Reason -> count over the chunks made and skipped.
    pub rejected: BTreeMap<String, u64>,
    /// Task -> count of derived records, over the chunks made now.
    pub derived_per_task: BTreeMap<String, u64>,
    /// Feature -> verified pairs using it, over the chunks made now.
    pub features: BTreeMap<String, u64>,
    pub times: StageTimes,
    pub wall: Duration,
    pub interrupted: bool,
}

/// Runs one shard into `dir`: every chunk of the shard not complete already.
pub fn run_shard(dir: &Path, options: &RunOptions, pool: &WorkerPool, progress: &dyn Progress, interrupted: &AtomicBool) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let manifest = options.manifest(&pool.hello().ibis);
    claim_folder(dir, &manifest)?;
    let chunks: Vec<u64> = (0..manifest.chunks()).filter(|chunk| chunk % options.shard.count == options.shard.index).collect();
    let mut report = RunReport::default();
    let mut pending = Vec::new();
    for &chunk in &chunks {
        match complete_chunk(dir, chunk, &manifest)? {
            Some(marker) => {
                report.chunks_skipped += 1;
                add_counts(&mut report, &marker);
            }
            None => pending.push(chunk),
        }
    }
    if report.chunks_skipped > 0 {
        progress.note(&format!("{} of {} chunks of shard {} are complete already: skipped", report.chunks_skipped, chunks.len(), options.shard));
    }
    let queries: u64 = pending.iter().map(|&chunk| chunk_range(&manifest, chunk).count() as u64).sum();
    let counter = progress.counter(queries, "synthesizing and verifying", &format!("shard {}", options.shard));
    for chunk in pending {
        let Some(marker) = make_chunk(dir, chunk, &manifest, options, pool, &mut report, &|| counter.tick(), interrupted)? else {
            report.interrupted = true;
            break;
        };
        report.chunks_made += 1;
        report.verified_made += marker.verified;
        add_counts(&mut report, &marker);
    }
    drop(counter);
    if !report.interrupted {
        let verified = report.verified;
        write_json(
            &dir.join(format!("shard-{}-of-{}.done.json", options.shard.index, options.shard.count)),
            &ShardMarker { shard: options.shard.to_string(), manifest, chunks, verified, derived: report.derived },
        )?;
    }
    report.wall = started.elapsed();
    Ok(report)
}

fn add_counts(report: &mut RunReport, marker: &ChunkMarker) {
    report.queries += marker.queries;
    report.verified += marker.verified;
    report.derived += marker.derived;
    for (reason, count) in &marker.rejected {
        *report.rejected.entry(reason.clone()).or_default() += count;
    }
}

/// Writes the manifest into a new folder, or checks that the folder's is the same.
fn claim_folder(dir: &Path, manifest: &Manifest) -> Result<(), RunError> {
    if !Manifest::path(dir).exists() {
        return Ok(write_json(&Manifest::path(dir), manifest)?);
    }
    let existing = Manifest::read(dir)?;
    if existing == *manifest {
        return Ok(());
    }
    let mut differs = Vec::new();
    if existing.seed != manifest.seed {
        differs.push(format!("seed {} there, {} now", existing.seed, manifest.seed));
    }
    if existing.count != manifest.count {
        differs.push(format!("count {} there, {} now", existing.count, manifest.count));
    }
    if existing.chunk_size != manifest.chunk_size {
        differs.push(format!("chunk size {} there, {} now", existing.chunk_size, manifest.chunk_size));
    }
    let only = |a: &[String], b: &[String]| a.iter().filter(|s| !b.contains(s)).cloned().collect::<Vec<_>>().join("; ");
    let (there, now) = (only(&existing.settings, &manifest.settings), only(&manifest.settings, &existing.settings));
    if !there.is_empty() || !now.is_empty() {
        differs.push(format!("there: {}; now: {}", if there.is_empty() { "-" } else { &there }, if now.is_empty() { "-" } else { &now }));
    }
    let tool_only = |settings: &[String]| settings.iter().filter(|s| !s.starts_with("ibert") && !s.starts_with("ibis ")).cloned().collect::<Vec<_>>();
    if differs.len() == 1 && tool_only(&existing.settings) == tool_only(&manifest.settings) {
        differs.push("only the program or the Ibis version differs: another build makes other records, so finish the run with the binary that began it".into());
    }
    Err(RunError::OtherRun { dir: dir.to_path_buf(), differs: differs.join(", ") })
}

fn chunk_range(manifest: &Manifest, chunk: u64) -> std::ops::Range<u64> {
    chunk.saturating_mul(manifest.chunk_size)..chunk.saturating_add(1).saturating_mul(manifest.chunk_size).min(manifest.count)
}

/// A file of chunk `chunk` of the run in `dir`: `suffix` is one of [`CHUNK_FILES`].
pub fn chunk_file(dir: &Path, chunk: u64, suffix: &str) -> PathBuf {
    dir.join("chunks").join(format!("{chunk:06}{suffix}"))
}

/// A chunk's files: the verified pairs, the records derived from them, the rejects.
pub const CHUNK_FILES: [&str; 3] = [".jsonl", ".derived.jsonl", ".rejects.jsonl"];

/// The marker of chunk `chunk` when it is complete: made with `manifest`, every file with its
/// recorded sha256. `None` when it has to be made (again).
pub fn complete_chunk(dir: &Path, chunk: u64, manifest: &Manifest) -> Result<Option<ChunkMarker>, RunError> {
    Ok(check_chunk(dir, chunk, manifest)?.ok())
}

/// The chunk's marker, or why it is not complete.
fn check_chunk(dir: &Path, chunk: u64, manifest: &Manifest) -> Result<Result<ChunkMarker, String>, RunError> {
    let path = chunk_file(dir, chunk, ".done.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Err(String::new())) };
    let Ok(marker) = serde_json::from_str::<ChunkMarker>(&text) else { return Ok(Err(format!(" ({} does not read)", path.display()))) };
    if marker.manifest != *manifest || marker.chunk != chunk {
        return Ok(Err(" (made with other settings)".into()));
    }
    for (name, digest) in &marker.files {
        let file = dir.join("chunks").join(name);
        if sha256(&file)? != *digest {
            return Ok(Err(format!(" ({} changed since it was written)", file.display())));
        }
    }
    Ok(Ok(marker))
}

/// Makes one chunk: synthesis, verification, derivation, files, marker. `None` when
/// interrupted, with nothing of the chunk written.
#[allow(clippy::too_many_arguments)]
fn make_chunk(
    dir: &Path,
    chunk: u64,
    manifest: &Manifest,
    options: &RunOptions,
    pool: &WorkerPool,
    report: &mut RunReport,
    tick: &(dyn Fn() + Sync),
    interrupted: &AtomicBool,
) -> Result<Option<ChunkMarker>, RunError> {
    let started = Instant::now();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut not_kept: Vec<RejectRecord> = Vec::new();
    let mut seen = HashSet::new();
    let range = chunk_range(manifest, chunk);
    let queries = range.end - range.start;
    for made in options.synthesizer.candidates(range) {
        match made {
            Ok(candidate) => {
                // The same SQL over the same tables is one pair; the first query keeps it.
                if seen.insert((candidate.template.clone(), candidate.sql.clone())) {
                    candidates.push(candidate);
                } else {
                    not_kept.push(dropped(
                        &candidate.id,
                        "duplicate",
                        "the same SQL as an earlier query over the same schema".into(),
                        &candidate.sql,
                        &candidate.features,
                    ));
                    tick();
                }
            }
            Err(Refused { id, sql, features, reason }) => {
                not_kept.push(dropped(&id, "refused", reason, &sql, &features));
                tick();
            }
        }
    }
    report.times.synthesis += started.elapsed();

    let started = Instant::now();
    let pipeline = PipelineOptions::new(pool.size(), fixtures_for_seed(manifest.seed));
    let verified_run = verify_candidates(candidates, pool, &pipeline, &|_| tick(), interrupted)?;
    report.times.verification += started.elapsed();
    report.times.timings += &verified_run.timings;
    if verified_run.cancelled {
        return Ok(None);
    }
    let mut verified: Vec<Example> = Vec::new();
    for outcome in &verified_run.outcomes {
        match verified_example(outcome, "synth") {
            Some(example) => verified.push(example),
            None => not_kept.extend(reject_record(outcome, "synth")),
        }
    }
    for example in &verified {
        for feature in &example.meta.features {
            *report.features.entry(feature.clone()).or_default() += 1;
        }
    }

    let started = Instant::now();
    let mut derived = Vec::new();
    if let Some(dialects) = &options.derive_dialects {
        let multitask = MultitaskOptions { dialects: dialects.clone(), threads: pool.size(), descriptions: BTreeMap::new() };
        let made = derive(&verified, pool, &multitask, &|| {}, interrupted)?;
        if made.cancelled {
            return Ok(None);
        }
        for example in &made.examples {
            *report.derived_per_task.entry(example.task().to_string()).or_default() += 1;
        }
        derived = made.examples;
    }
    report.times.derivation += started.elapsed();

    let started = Instant::now();
    not_kept.sort_by(|a, b| a.id.cmp(&b.id));
    let mut rejected = BTreeMap::new();
    for record in &not_kept {
        *rejected.entry(record.reason.clone()).or_default() += 1;
    }
    let paths: Vec<PathBuf> = CHUNK_FILES.iter().map(|suffix| chunk_file(dir, chunk, suffix)).collect();
    write_records(&paths[0], &verified)?;
    write_records(&paths[1], &derived)?;
    write_records(&paths[2], &not_kept)?;
    let mut files = Vec::new();
    for path in &paths {
        let name = path.file_name().expect("a chunk file name").to_string_lossy().into_owned();
        files.push((name, sha256(path)?));
    }
    let marker = ChunkMarker { chunk, manifest: manifest.clone(), queries, verified: verified.len() as u64, derived: derived.len() as u64, rejected, files };
    write_json(&chunk_file(dir, chunk, ".done.json"), &marker)?;
    report.times.writing += started.elapsed();
    Ok(Some(marker))
}

fn write_records<T: Serialize>(path: &Path, records: &[T]) -> Result<(), RecordError> {
    let mut writer = JsonlWriter::create(path)?;
    for record in records {
        writer.write(record)?;
    }
    writer.commit()?;
    Ok(())
}

fn dropped(id: &str, reason: &str, detail: String, sql: &str, features: &[String]) -> RejectRecord {
    RejectRecord {
        id: id.to_string(),
        reason: reason.to_string(),
        detail,
        error: None,
        sql: Some(sql.to_string()),
        ibis: None,
        meta: Meta { source: "synth".into(), features: features.to_vec(), ..Meta::default() },
    }
}

/// The records of every chunk of the runs in `dirs`, in run order then chunk order (verified
/// pairs, then what was derived from them). Folders with the same settings are shards of one run
/// (or copies of it): together they must hold every chunk, each read from the first folder that
/// has it complete. An error, before anything is read, when a folder is not a run, a chunk is
/// in none of its run's folders, or a file changed since it was written.
pub fn read_runs(dirs: &[PathBuf]) -> Result<Vec<(String, Vec<Example>)>, RunError> {
    let mut runs: Vec<(Manifest, Vec<PathBuf>)> = Vec::new();
    for dir in dirs {
        let manifest = Manifest::read(dir)?;
        match runs.iter_mut().find(|(existing, _)| *existing == manifest) {
            Some((_, folders)) => folders.push(dir.clone()),
            None => runs.push((manifest, vec![dir.clone()])),
        }
    }
    let mut chunks = Vec::new();
    for (manifest, folders) in &runs {
        for chunk in 0..manifest.chunks() {
            let mut why = String::new();
            let mut found = None;
            for dir in folders {
                match check_chunk(dir, chunk, manifest)? {
                    Ok(_) => {
                        found = Some(dir);
                        break;
                    }
                    Err(reason) if why.is_empty() => why = reason,
                    Err(_) => {}
                }
            }
            let Some(dir) = found else {
                let dirs = folders.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(", ");
                return Err(RunError::Incomplete { dirs, chunk, why });
            };
            chunks.push((dir.clone(), chunk));
        }
    }
    let mut sources = Vec::new();
    for (dir, chunk) in chunks {
        for suffix in &CHUNK_FILES[..2] {
            let path = chunk_file(&dir, chunk, suffix);
            sources.push((path.display().to_string(), ibert_records::read_jsonl::<Example>(&path)?));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["5/4", "4/4", "0/0", "1", "a/b", "-1/3", ""] {
            let error = Shard::parse(bad).unwrap_err();
            assert!(error.contains("0 <= I < N"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_scheduler_index_becomes_a_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        assert_eq!(Shard::from_environment(None, &env(&[])), Ok(None));
        assert_eq!(Shard::from_environment(Some(8), &env(&[("JOB_COMPLETION_INDEX", "3")])), Ok(Some((Shard { index: 3, count: 8 }, "JOB_COMPLETION_INDEX"))));
        assert!(Shard::from_environment(None, &env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap_err().contains("--shards"));
        assert!(Shard::from_environment(Some(2), &env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap_err().contains("0 <= I < N"));
        let slurm = env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "6")]);
        assert_eq!(Shard::from_environment(None, &slurm), Ok(Some((Shard { index: 4, count: 6 }, "SLURM_ARRAY_TASK_ID"))));
        // `sbatch --array=5` of a 64-shard script with --shards 64: shard 5, not the whole run.
        let resubmitted = env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "1")]);
        assert_eq!(Shard::from_environment(Some(64), &resubmitted), Ok(Some((Shard { index: 5, count: 64 }, "SLURM_ARRAY_TASK_ID"))));
        assert!(Shard::from_environment(None, &env(&[("SLURM_ARRAY_TASK_ID", "x")])).unwrap_err().contains("whole number"));
    }

    fn manifest() -> Manifest {
        Manifest { seed: 1, count: 10, chunk_size: 4, settings: vec!["a".into()] }
    }

    #[test]
    fn a_folder_belongs_to_one_run() {
        let dir = tempfile::tempdir().unwrap();
        claim_folder(dir.path(), &manifest()).unwrap();
        claim_folder(dir.path(), &manifest()).unwrap();
        let other = Manifest { seed: 2, ..manifest() };
        let error = claim_folder(dir.path(), &other).unwrap_err().to_string();
        assert!(error.contains("seed 1 there, 2 now"), "{error}");
        let fewer = claim_folder(dir.path(), &Manifest { settings: Vec::new(), ..manifest() }).unwrap_err().to_string();
        assert!(fewer.contains("there: a; now: -"), "{fewer}");
        assert_eq!(manifest().chunks(), 3);
        assert_eq!(chunk_range(&manifest(), 2), 8..10);
    }

    #[test]
    fn a_chunk_counts_only_with_its_marker_and_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest();
        assert!(complete_chunk(dir.path(), 0, &manifest).unwrap().is_none());
        let paths: Vec<PathBuf> = CHUNK_FILES.iter().map(|suffix| chunk_file(dir.path(), 0, suffix)).collect();
        std::fs::create_dir_all(dir.path().join("chunks")).unwrap();
        for path in &paths {
            std::fs::write(path, "").unwrap();
        }
        let files = paths.iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), sha256(p).unwrap())).collect();
        let marker = ChunkMarker { chunk: 0, manifest: manifest.clone(), queries: 4, verified: 0, derived: 0, rejected: BTreeMap::new(), files };
        write_json(&chunk_file(dir.path(), 0, ".done.json"), &marker).unwrap();
        assert_eq!(complete_chunk(dir.path(), 0, &manifest).unwrap(), Some(marker));
        assert!(complete_chunk(dir.path(), 0, &Manifest { count: 11, ..manifest.clone() }).unwrap().is_none(), "other settings");
        std::fs::write(&paths[0], "{}\n").unwrap();
        assert!(check_chunk(dir.path(), 0, &manifest).unwrap().unwrap_err().contains("changed since"));
        let error = read_runs(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(error.contains("is not a synthesis folder"), "{error}");
    }
}
