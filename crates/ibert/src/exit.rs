//! The exit statuses of `ibert`, one meaning each across commands (the README lists them), so a
//! script can tell a verified answer from one that could not be checked, one the check
//! rejected, and an error.

use std::process::ExitCode;

use ibert_verify::RejectReason;

/// Done; for checked commands, the answer was verified.
pub const SUCCESS: u8 = 0;
/// An error: bad input (SQL that does not parse, a malformed schema or file), a missing
/// Python, a failed download. Also argument errors.
pub const ERROR: u8 = 1;
/// An answer was printed, but could not be checked: the SQL returns no rows on any fixture
/// (vacuous), its result depends on storage order, a time limit was hit, or `--no-verify`.
pub const UNVERIFIED: u8 = 2;
/// An answer was printed, and the check rejected it (other results, other types, an Ibis
/// error when executed); `--strict` prints nothing then.
pub const REJECTED: u8 = 3;
/// `to-sql`: the SQL printed is that of the model's repair of the program, not of the input.
pub const REPAIRED: u8 = 4;
/// Stopped by Ctrl-C; nothing partial was written.
pub const INTERRUPTED: u8 = 130;

/// The status of an answer the verifier did not accept, by why.
pub fn for_reject(reason: RejectReason) -> ExitCode {
    ExitCode::from(if reason.is_inconclusive() { UNVERIFIED } else { REJECTED })
}

/// How standard error words a reject: could not be checked, or rejected by the check.
pub fn reject_phrase(reason: RejectReason) -> &'static str {
    if reason.is_inconclusive() { "could not be checked" } else { "rejected by the check" }
}
