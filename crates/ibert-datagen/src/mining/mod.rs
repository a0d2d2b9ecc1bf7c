//! Mining: examples taken from real code and documentation, with provenance (source, commit,
//! path, line) and the level each was checked to.
//!
//! * Python files are read by Python's own parser in the oracle (nothing runs): functions with
//!   Google or NumPy docstrings become `documentation` examples; in the installed Ibis package,
//!   public functions also become `qa` examples from their documentation; the `>>>` programs of
//!   docstrings are compiled by real Ibis (through the sandbox) and those that compile become
//!   `ibis_to_sql` examples.
//! * Markdown, Quarto and notebooks: Python blocks that compile become `ibis_to_sql` examples; a
//!   SQL block followed by a Python block that parses is a `sql_to_ibis` pair (level `parsed`:
//!   nothing knows their tables, so nothing checks that the two agree).
//! * A broken notebook, a binary, huge or non-UTF-8 file, or Python that does not parse is
//!   skipped with its reason counted.

pub mod blocks;
pub mod docstrings;
pub mod files;
pub mod pypi;
pub mod sources;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use ibert_oracle::{CompileRequest, OracleError, WorkerPool};
use ibert_records::{
    Context, DocumentationInput, DocumentationTarget, Example, IbisToSqlInput, IbisToSqlTarget, Meta, Payload, Provenance, QaInput, QaTarget, SqlToIbisInput,
    SqlToIbisTarget, VerificationLevel,
};

use crate::multitask::checked_by;
use crate::parallel::map_in_order;
use blocks::{CodeBlock, Language};
use files::{FileKind, SourceFile};
pub use sources::{MineSource, SourceError, installed_ibis, read_source_list, resolve};

/// The most docstring programs compiled per function (later ones repeat the earlier ones).
const PROGRAMS_PER_DOCSTRING: usize = 4;

/// What mining found, kept and skipped.
#[derive(Debug, Default)]
pub struct MineReport {
    pub examples: Vec<Example>,
    /// Files read, per kind (`python`, `markdown`, `quarto`, `notebook`).
    pub files: BTreeMap<String, usize>,
    /// Files skipped, per reason.
    pub skipped: BTreeMap<String, usize>,
    /// What was found: documented functions, docstring programs, code blocks, SQL strings, pairs.
    pub found: BTreeMap<String, usize>,
    /// Outcomes of compiling mined programs with real Ibis: `compiled`, or the failure kind.
    pub checks: BTreeMap<String, usize>,
    pub cancelled: bool,
}

impl MineReport {
    /// Adds another source's report to this one.
    pub fn merge(&mut self, other: MineReport) {
        self.examples.extend(other.examples);
        for (into, from) in
            [(&mut self.files, other.files), (&mut self.skipped, other.skipped), (&mut self.found, other.found), (&mut self.checks, other.checks)]
        {
            for (key, n) in from {
                *into.entry(key).or_default() += n;
            }
        }
        self.cancelled |= other.cancelled;
    }

    fn absorb(&mut self, other: FileYield) {
        self.examples.extend(other.examples);
        for (map, counts) in [(&mut self.found, other.found), (&mut self.checks, other.checks)] {
            for (key, n) in counts {
                *map.entry(key).or_default() += n;
            }
        }
        *self.files.entry(other.kind.to_string()).or_default() += usize::from(other.skipped.is_none());
        if let Some(reason) = other.skipped {
            *self.skipped.entry(reason).or_default() += 1;
        }
    }
}

#[derive(Default)]
struct FileYield {
    kind: &'static str,
    examples: Vec<Example>,
    skipped: Option<String>,
    found: BTreeMap<String, usize>,
    checks: BTreeMap<String, usize>,
}

impl FileYield {
    fn count(&mut self, what: &str) {
        *self.found.entry(what.to_string()).or_default() += 1;
    }
}

/// Mines every file of `source`; `progress` is called per file.
pub fn mine(source: &MineSource, pool: &WorkerPool, progress: &(dyn Fn() + Sync), cancel: &AtomicBool) -> Result<MineReport, OracleError> {
    let (files, unreadable) = files::walk(&source.root);
    let mut report = mine_files(source, &files, pool, progress, cancel)?;
    if unreadable > 0 {
        report.skipped.insert("folders: unreadable".to_string(), unreadable);
    }
    Ok(report)
}

/// The files `mine` would read, for a progress bar's length.
pub fn count_files(source: &MineSource) -> usize {
    files::walk(&source.root).0.len()
}

fn mine_files(
    source: &MineSource,
    files: &[SourceFile],
    pool: &WorkerPool,
    progress: &(dyn Fn() + Sync),
    cancel: &AtomicBool,
) -> Result<MineReport, OracleError> {
    let miner = Miner { source, pool, ibis_version: pool.hello().ibis.clone() };
    let work = |_: usize, file: &SourceFile| {
        let result = miner.file(file);
        progress();
        result
    };
    let mut report = MineReport::default();
    match map_in_order(files, pool.size(), cancel, &work)? {
        Some(yields) => yields.into_iter().for_each(|y| report.absorb(y)),
        None => report.cancelled = true,
    }
    Ok(report)
}

struct Miner<'a> {
    source: &'a MineSource,
    pool: &'a WorkerPool,
    ibis_version: String,
}

impl Miner<'_> {
    fn file(&self, file: &SourceFile) -> Result<FileYield, OracleError> {
        let kind = match file.kind {
            FileKind::Python => "python",
            FileKind::Markdown => "markdown",
            FileKind::Quarto => "quarto",
            FileKind::Notebook => "notebook",
        };
        let mut out = FileYield { kind, ..FileYield::default() };
        let text = match files::read_text(&self.source.root.join(&file.relative)) {
            Ok(text) => text,
            Err(reason) => {
                out.skipped = Some(format!("{kind}: {reason}"));
                return Ok(out);
            }
        };
        match file.kind {
            FileKind::Python => self.python(file, &text, &mut out)?,
            FileKind::Markdown | FileKind::Quarto => self.blocks(file, &blocks::markdown_blocks(&text), &mut out)?,
            FileKind::Notebook => match blocks::notebook_blocks(&text) {
                Ok(cells) => self.blocks(file, &cells, &mut out)?,
                Err(reason) => out.skipped = Some(format!("notebook: broken ({reason})")),
            },
        }
        Ok(out)
    }

    fn python(&self, file: &SourceFile, text: &str, out: &mut FileYield) -> Result<(), OracleError> {
        let outline = match self.pool.outline(text)? {
            Ok(outline) => outline,
            Err(failure) => {
                out.skipped = Some(format!("python: {}", failure.error_type));
                return Ok(());
            }
        };
        for _ in &outline.sql_calls {
            out.count("sql strings in .sql() calls");
        }
        for function in &outline.functions {
            out.count("documented functions");
            let line = u64::from(function.line);
            if let Some(style) = docstrings::style(&function.docstring) {
                let payload = Payload::Documentation {
                    input: DocumentationInput { code: function.code.clone(), style },
                    target: DocumentationTarget { docstring: function.docstring.clone() },
                };
                out.examples.push(self.example(file, line, "documentation", payload, VerificationLevel::Parsed, "docstring"));
            }
            let mut compiled_example = None;
            for program in docstrings::examples(&function.docstring).into_iter().take(PROGRAMS_PER_DOCSTRING) {
                out.count("docstring programs");
                if let Some(sql) = self.compile(&program, out)? {
                    let payload =
                        Payload::IbisToSql { input: IbisToSqlInput { ibis: program.clone(), dialect: "duckdb".into() }, target: IbisToSqlTarget { sql } };
                    out.examples.push(self.example(file, line, "ibis_to_sql", payload, VerificationLevel::Compiled, "docstring_example"));
                    compiled_example.get_or_insert(program);
                }
            }
            let public = !function.qualname.split('.').any(|part| part.starts_with('_'));
            let summary = docstrings::summary(&function.docstring);
            if self.source.ibis_package && public && !summary.is_empty() {
                let question = format!("What does `{}` do in Ibis?", function.qualname);
                let signature = format!("`{}({})`", function.qualname, function.args.iter().filter(|a| *a != "self").cloned().collect::<Vec<_>>().join(", "));
                let mut answer = format!("{signature}: {summary}");
                if let Some(program) = &compiled_example {
                    answer.push_str(&format!("\n\nFor example:\n\n```python\n{program}\n```"));
                }
                let level = if compiled_example.is_some() { VerificationLevel::Compiled } else { VerificationLevel::Parsed };
                let payload = Payload::Qa { input: QaInput { question }, target: QaTarget { answer, code_example: compiled_example } };
                out.examples.push(self.example(file, line, "qa", payload, level, "api_docs"));
            }
        }
        Ok(())
    }

    fn blocks(&self, file: &SourceFile, blocks: &[CodeBlock], out: &mut FileYield) -> Result<(), OracleError> {
        for (index, block) in blocks.iter().enumerate() {
            out.count(match block.language {
                Language::Python => "python blocks",
                Language::Sql => "sql blocks",
            });
            if block.language != Language::Python {
                continue;
            }
            let compiled = self.compile(&block.code, out)?;
            if let Some(sql) = &compiled {
                let payload = Payload::IbisToSql {
                    input: IbisToSqlInput { ibis: block.code.clone(), dialect: "duckdb".into() },
                    target: IbisToSqlTarget { sql: sql.clone() },
                };
                out.examples.push(self.example(file, block.line, "ibis_to_sql", payload, VerificationLevel::Compiled, "code_block"));
            }
            // SQL right before Ibis: the documentation's own translation. Nothing checks that the
            // two compute the same (their tables are unknown), so the pair is only `parsed`.
            let Some(previous) = index.checked_sub(1).map(|i| &blocks[i]) else { continue };
            if previous.language != Language::Sql {
                continue;
            }
            out.count("sql/ibis pairs");
            if compiled.is_none() && self.pool.outline(&block.code)?.is_err() {
                continue;
            }
            let payload = Payload::SqlToIbis {
                input: SqlToIbisInput { sql: previous.code.clone() },
                target: SqlToIbisTarget { ibis: block.code.clone(), expr_name: result_name(&block.code) },
            };
            out.examples.push(self.example(file, previous.line, "sql_to_ibis", payload, VerificationLevel::Parsed, "sql_ibis_pair"));
        }
        Ok(())
    }

    /// The DuckDB SQL of a self-contained mined program, through the sandbox; `None` (counted by
    /// failure kind) when it does not compile.
    fn compile(&self, program: &str, out: &mut FileYield) -> Result<Option<String>, OracleError> {
        let request = CompileRequest { code: program.to_string(), tables: Default::default(), dialect: "duckdb".into(), expr_name: None };
        let outcome = self.pool.compile(&request)?;
        // A program whose SQL changes from one compilation to the next (an unnamed table gets a
        // generated name) has no fixed target.
        let outcome = match outcome {
            Ok(compiled) if self.pool.compile(&request)?.is_ok_and(|again| again.sql != compiled.sql) => {
                *out.checks.entry("compiled, but to different SQL each time".to_string()).or_default() += 1;
                return Ok(None);
            }
            other => other,
        };
        let key = match &outcome {
            Ok(_) => "compiled".to_string(),
            Err(failure) => format!("not compiled: {}", failure.kind),
        };
        *out.checks.entry(key).or_default() += 1;
        Ok(outcome.ok().map(|compiled| compiled.sql))
    }

    fn example(&self, file: &SourceFile, line: u64, task: &str, payload: Payload, level: VerificationLevel, feature: &str) -> Example {
        let path = file.relative.display().to_string();
        Example {
            id: format!("mined:{}:{path}:{line}:{task}:{}", self.source.label, payload_fingerprint(&payload)),
            payload,
            dialect: "duckdb".into(),
            backend: "duckdb".into(),
            ibis_version: self.ibis_version.clone(),
            system_prompt: None,
            messages: None,
            context: Context::default(),
            meta: Meta {
                template: None,
                variation: None,
                source: "mined".into(),
                features: vec!["mined".into(), feature.into()],
                difficulty: None,
                provenance: Some(Provenance {
                    source: self.source.label.clone(),
                    commit: self.source.commit.clone(),
                    path: Some(path),
                    line: Some(line),
                    license: self.source.license.clone(),
                }),
                derived_from: None,
                split: None,
            },
            verification: Some(checked_by(level, &self.ibis_version)),
        }
    }
}

/// The variable holding a program's result: `expr` when assigned, else the last variable
/// assigned at the top level, else `expr`.
fn result_name(code: &str) -> String {
    let tokens = crate::python_tokens::tokenize(code).unwrap_or_default();
    let assigned: Vec<&str> = tokens
        .windows(2)
        .enumerate()
        .filter(|(i, pair)| {
            let starts_statement = *i == 0 || tokens[i - 1].kind == crate::python_tokens::Kind::Newline;
            starts_statement && pair[0].depth == 0 && pair[0].kind == crate::python_tokens::Kind::Name && pair[1].text(code) == "="
        })
        .map(|(_, pair)| pair[0].text(code))
        .collect();
    if assigned.contains(&"expr") { "expr".to_string() } else { assigned.last().map_or("expr".to_string(), |name| name.to_string()) }
}

/// Eight hex digits that tell apart examples from the same line.
fn payload_fingerprint(payload: &Payload) -> String {
    format!("{:08x}", fingerprint(&serde_json::to_string(payload).unwrap_or_default()) as u32)
}

/// A stable short name for a text (clone folders, example ids).
fn fingerprint(text: &str) -> u64 {
    crate::stable_hash::fnv1a(text.as_bytes())
}
