//! Dataset generation: YAML templates expanded into (SQL, Ibis) candidates, verified in parallel
//! by execution, and written as JSONL with a rejects file that gives each reject's reason.
//!
//! * [`template`] reads and checks templates; [`expand`] turns them into [`Candidate`]s.
//! * [`pipeline`] verifies candidates on N threads against one oracle pool and keeps counters.
//! * [`summary`] counts outcomes per reason, template and feature.
//! * [`multitask`] derives the other five tasks from verified examples, checked by real Ibis.
//! * [`steps`] is the whole pipeline of `ibert data all` as resumable steps.

pub mod augment;
pub mod dataset;
pub mod expand;
pub mod mining;
pub mod multitask;
pub mod parallel;
pub mod pipeline;
pub mod progress;
pub mod python_tokens;
pub mod records;
pub mod stable_hash;
pub mod steps;
pub mod summary;
pub mod synth;
pub mod table;
pub mod template;
pub mod transpiled;
pub mod verified;

pub use expand::{Candidate, expand_template};
pub use pipeline::{Outcome, PipelineError, PipelineOptions, PipelineReport, verify_candidates};
pub use summary::Summary;
pub use template::{Template, TemplateError, load_embedded_templates, load_templates_dir, parse_template};
