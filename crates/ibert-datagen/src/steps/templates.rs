//! The built-in templates, expanded and verified: `sql2ibis/train.jsonl` and its rejects.

use std::path::{Path, PathBuf};

use super::{Step, StepContext, StepError, StepReport, verified_line, verify_into};
use crate::progress::Progress;
use crate::verified::Outputs;
use crate::{Candidate, TemplateError, expand_template, load_embedded_templates, load_templates_dir};

/// The verified examples and the rejects, in the output folder.
pub fn outputs(dir: &Path) -> Outputs {
    Outputs::in_folder(&dir.join("sql2ibis"))
}

/// The expansions of the templates in `dir` (the built-in ones without it), or of those named
/// in `only`; an unknown name is an error.
pub fn candidates(dir: Option<&Path>, only: &[String], progress: &dyn Progress) -> Result<Vec<Candidate>, TemplateError> {
    let templates = match dir {
        Some(dir) => load_templates_dir(dir)?,
        None => load_embedded_templates()?,
    };
    let unknown: Vec<String> = only.iter().filter(|name| !templates.iter().any(|t| &t.name == *name)).map(|name| format!("`{name}`")).collect();
    if !unknown.is_empty() {
        return Err(TemplateError::Unknown(unknown.join(", ")));
    }
    let templates: Vec<_> = templates.into_iter().filter(|t| only.is_empty() || only.contains(&t.name)).collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    for template in &templates {
        candidates.extend(expand_template(template)?);
    }
    progress.note(&format!("{} templates expanded to {} candidate examples", templates.len(), candidates.len()));
    Ok(candidates)
}

pub struct Templates;

impl Step for Templates {
    fn name(&self) -> &str {
        "templates"
    }

    fn title(&self) -> &str {
        "templates"
    }

    /// None but the templates built into the program, which its digest covers.
    fn inputs(&self, _: &StepContext) -> Vec<PathBuf> {
        Vec::new()
    }

    fn outputs(&self, context: &StepContext) -> Vec<PathBuf> {
        let outputs = outputs(context.dir);
        vec![outputs.train, outputs.rejects]
    }

    fn run(&self, context: &StepContext) -> Result<Option<StepReport>, StepError> {
        let candidates = candidates(None, &[], context.progress)?;
        let written = verify_into(candidates, "template", &outputs(context.dir), context)?;
        Ok(written.map(|written| StepReport::line(verified_line(&written))))
    }
}
