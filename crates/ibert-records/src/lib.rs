//! iBERT's dataset records: one [`Example`] per JSONL line, for the six tasks.
//!
//! Field names follow the reference dataset format so existing consumers keep working; every
//! field is documented in `docs/records.md`. Reading reports `file:line` for a bad line, and
//! writing goes through a temporary file that is renamed into place only when complete.

mod example;
mod jsonl;
mod message;
mod reject;

pub use example::{
    CodeCompletionInput, CodeCompletionTarget, Context, DocStyle, DocumentationInput, DocumentationTarget, ErrorResolutionInput, ErrorResolutionTarget,
    Example, IbisToSqlInput, IbisToSqlTarget, Meta, Payload, Provenance, QaInput, QaTarget, SqlToIbisInput, SqlToIbisTarget, TableContext, TableSchemas, Task,
    Verification, VerificationLevel,
};
pub use jsonl::{JsonlReader, JsonlWriter, RecordError, read_jsonl, write_jsonl};
pub use message::ChatMessage;
pub use reject::{RejectRecord, RejectedError};
