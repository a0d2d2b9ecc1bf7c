//! Completion markers: `<output>/.steps/<step>.json`, written once a step has put every output in
//! place. A marker records what the outputs were made from (the sha256 of each input file, the
//! seed, the Ibis version, the step's settings and the running program) and the sha256 of each
//! output. A step is complete when its marker reads back, what it would be made from now is the
//! same, and every output still has its recorded digest; anything else runs it again.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Step, StepContext, StepError, StepReport};

/// What a step's outputs are made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeFrom {
    pub program: String,
    pub settings: Vec<String>,
    /// Each input (relative to the output folder when it is in it) and its sha256, or `missing`.
    pub inputs: Vec<(String, String)>,
}

impl MadeFrom {
    pub fn of(step: &dyn Step, context: &StepContext) -> Result<MadeFrom, StepError> {
        let mut settings = vec![format!("seed {}", context.seed), format!("ibis {}", context.pool.hello().ibis)];
        settings.extend(step.settings());
        let inputs = digests(&step.inputs(context), context.dir)?;
        Ok(MadeFrom { program: context.program.clone(), settings, inputs })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    step: String,
    made_from: MadeFrom,
    /// Each output, relative to the output folder, and its sha256.
    outputs: Vec<(String, String)>,
    report: StepReport,
}

/// The marker of the step `name` in the output folder `dir`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(".steps").join(format!("{}.json", name.replace(' ', "-")))
}

/// The recorded report when the marker at `marker` shows the outputs complete and made from
/// `made_from`; `None` when the step has to run.
pub fn complete(marker: &Path, made_from: &MadeFrom, dir: &Path) -> Result<Option<StepReport>, StepError> {
    let Ok(text) = std::fs::read_to_string(marker) else { return Ok(None) };
    let Ok(recorded) = serde_json::from_str::<Marker>(&text) else { return Ok(None) };
    if recorded.made_from != *made_from {
        return Ok(None);
    }
    for (output, digest) in &recorded.outputs {
        if sha256(&dir.join(output))? != *digest {
            return Ok(None);
        }
    }
    Ok(Some(recorded.report))
}

/// Removes the marker before its step runs (no marker is not an error).
pub fn remove(marker: &Path) -> Result<(), StepError> {
    match std::fs::remove_file(marker) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(StepError::Io { action: "removing", path: marker.to_path_buf(), source }),
        _ => Ok(()),
    }
}

/// Writes the marker of a step whose `outputs` are all in place, through a temporary file.
pub fn write(marker: &Path, made_from: MadeFrom, outputs: &[PathBuf], dir: &Path, report: &StepReport) -> Result<(), StepError> {
    let step = marker.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let recorded = Marker { step, made_from, outputs: digests(outputs, dir)?, report: report.clone() };
    write_json(marker, &recorded)
}

/// Writes `value` as pretty JSON to `path` through a temporary file in its folder, so that a
/// reader finds the old file, the new one, or none, never half of one.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StepError> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io_error = |action, source| StepError::Io { action, path: path.to_path_buf(), source };
    std::fs::create_dir_all(folder).map_err(|e| io_error("creating the folder of", e))?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut temp = builder.tempfile_in(folder).map_err(|e| io_error("creating a temporary file for", e))?;
    let text = serde_json::to_string_pretty(value).map_err(|e| io_error("writing", std::io::Error::other(e)))?;
    temp.write_all(text.as_bytes()).map_err(|e| io_error("writing", e))?;
    temp.persist(path).map_err(|e| io_error("renaming into place", e.error))?;
    Ok(())
}

/// The running executable's version and sha256: a rebuilt or upgraded program runs every step
/// again; the same program under another file name (a copy, a link) does not.
pub fn running_program() -> Result<String, StepError> {
    let exe = std::env::current_exe().map_err(|source| StepError::Io { action: "locating", path: PathBuf::from("the running program"), source })?;
    Ok(format!("ibert {} (sha256 {})", env!("CARGO_PKG_VERSION"), sha256(&exe)?))
}

pub(crate) fn digests(paths: &[PathBuf], dir: &Path) -> Result<Vec<(String, String)>, StepError> {
    paths.iter().map(|path| Ok((path.strip_prefix(dir).unwrap_or(path).display().to_string(), sha256(path)?))).collect()
}

/// The sha256 of a file in hex; `missing` when there is no such file.
pub(crate) fn sha256(path: &Path) -> Result<String, StepError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok("missing".into()),
        Err(source) => return Err(StepError::Io { action: "reading", path: path.to_path_buf(), source }),
    };
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| StepError::Io { action: "reading", path: path.to_path_buf(), source })?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made_from(input: &str) -> MadeFrom {
        MadeFrom { program: "ibert".into(), settings: vec!["seed 0".into()], inputs: vec![("in.jsonl".into(), input.into())] }
    }

    #[test]
    fn a_marker_holds_while_inputs_and_outputs_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out/train.jsonl");
        std::fs::create_dir_all(output.parent().unwrap()).unwrap();
        std::fs::write(&output, "{}\n").unwrap();
        let marker = path(dir.path(), "multi-task");
        assert_eq!(marker, dir.path().join(".steps/multi-task.json"));
        assert_eq!(complete(&marker, &made_from("a"), dir.path()).unwrap(), None, "no marker yet");

        let report = StepReport { line: "1 example".into(), summary: Some("table".into()) };
        write(&marker, made_from("a"), std::slice::from_ref(&output), dir.path(), &report).unwrap();
        assert_eq!(complete(&marker, &made_from("a"), dir.path()).unwrap(), Some(report));
        assert_eq!(complete(&marker, &made_from("b"), dir.path()).unwrap(), None, "another input");

        std::fs::write(&output, "{}\n{}\n").unwrap();
        assert_eq!(complete(&marker, &made_from("a"), dir.path()).unwrap(), None, "an output changed since");
        remove(&marker).unwrap();
        remove(&marker).unwrap();
        assert!(!marker.exists());
    }

    #[test]
    fn a_missing_file_has_a_digest_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(sha256(&dir.path().join("none")).unwrap(), "missing");
        let file = dir.path().join("x");
        std::fs::write(&file, "abc").unwrap();
        assert_eq!(sha256(&file).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(digests(std::slice::from_ref(&file), dir.path()).unwrap()[0].0, "x", "named relative to the output folder");
    }
}
