//! The SQL corpus translated by the deterministic transpiler and verified:
//! `transpiled/train.jsonl` and its rejects (both empty when the corpus folder does not exist).

use std::path::{Path, PathBuf};

use ibert_transpile::corpus::Corpus;

use super::{Step, StepContext, StepError, StepReport, verify_into};
use crate::transpiled::transpile_corpus;
use crate::verified::{Outputs, write_outcomes};

/// The verified translations and the rejects, in the output folder.
pub fn outputs(dir: &Path) -> Outputs {
    Outputs::in_folder(&dir.join("transpiled"))
}

pub struct Transpilation {
    /// The folder of corpus YAML files.
    pub corpus: PathBuf,
}

impl Step for Transpilation {
    fn name(&self) -> &str {
        "transpiled corpus"
    }

    fn title(&self) -> &str {
        "transpiled SQL corpus"
    }

    /// The corpus files, or the folder itself (recorded as missing) when it does not exist.
    fn inputs(&self, _: &StepContext) -> Vec<PathBuf> {
        Corpus::files(&self.corpus).unwrap_or_else(|_| vec![self.corpus.clone()])
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        let outputs = outputs(context.dir);
        vec![outputs.train, outputs.rejects]
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        if !self.corpus.is_dir() {
            context.progress.note(&format!("{} does not exist: skipped", self.corpus.display()));
            write_outcomes(&[], "transpiler", &outputs(context.dir))?;
            return Ok(Some(StepReport::line(format!("skipped ({} not found)", self.corpus.display()))));
        }
        let mut candidates = Vec::new();
        let mut refused = 0;
        for corpus in Corpus::load_dir(&self.corpus)? {
            let transpiled = transpile_corpus(&corpus);
            refused += transpiled.refused.len();
            candidates.extend(transpiled.candidates);
        }
        context.progress.note(&format!("{} corpus queries translated ({refused} refused by the transpiler)", candidates.len()));
        let Some(written) = verify_into(candidates, "transpiler", &outputs(context.dir), context)? else {
            return Ok(None);
        };
        Ok(Some(StepReport::line(format!("{} verified, {} rejected, {refused} refused", written.examples.len(), written.rejected))))
    }
}
