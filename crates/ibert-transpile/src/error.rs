use sqlparser::ast::Spanned;
use sqlparser::tokenizer::Span;

/// Why a query was not translated. Every variant names the construct and, where the parser
/// knows it, the line and column in the SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranspileError {
    #[error("cannot parse the SQL: {0}")]
    Parse(String),
    #[error("{construct} is not supported by the transpiler{}", position(*line, *column))]
    Unsupported { construct: String, line: u64, column: u64 },
    #[error("{message}{}", position(*line, *column))]
    Resolve { message: String, line: u64, column: u64 },
}

impl TranspileError {
    pub fn unsupported_at(construct: &str, node: &impl Spanned) -> TranspileError {
        let start = node.span().start;
        TranspileError::Unsupported { construct: construct.to_string(), line: start.line, column: start.column }
    }

    pub fn resolve_at(message: String, node: &impl Spanned) -> TranspileError {
        TranspileError::resolve_in(message, node.span())
    }

    pub fn resolve_in(message: String, span: Span) -> TranspileError {
        TranspileError::Resolve { message, line: span.start.line, column: span.start.column }
    }

    /// The construct or problem without the position, for grouping failures in reports.
    pub fn construct(&self) -> &str {
        match self {
            TranspileError::Parse(_) => "parse error",
            TranspileError::Unsupported { construct, .. } => construct,
            TranspileError::Resolve { message, .. } => message,
        }
    }
}

/// ` (line L, column C)`, or nothing where the parser recorded no position (line 0).
fn position(line: u64, column: u64) -> String {
    if line == 0 { String::new() } else { format!(" (line {line}, column {column})") }
}
