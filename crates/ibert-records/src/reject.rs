use serde::{Deserialize, Serialize};

use crate::Meta;

/// One line of a rejects file: a candidate that did not verify, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectRecord {
    pub id: String,
    /// `ibis_error`, `sql_error`, `mismatch`, `timeout`, `vacuous`, `nondeterministic`, `sandbox`,
    /// `schema`, or `malformed` for a line that is not a valid record.
    pub reason: String,
    /// A human-readable explanation: the exception, the DuckDB error, or a short diff.
    pub detail: String,
    /// The real exception (type, message, line) when Ibis or the sandbox raised one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RejectedError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ibis: Option<String>,
    #[serde(default)]
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedError {
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}
