//! Edits of the SQL text before parsing that keep every position: what `sqlparser` does not
//! read is blanked out with spaces, so errors still point at the user's line and column.

use sqlparser::tokenizer::Location;

/// The SQL with `length` characters blanked at each location.
pub(crate) fn blank_at(sql: &str, spans: &[(Location, usize)]) -> String {
    let mut out = String::with_capacity(sql.len());
    for (number, line) in sql.split_inclusive('\n').enumerate() {
        let mut chars: Vec<char> = line.chars().collect();
        for (at, length) in spans.iter().filter(|(at, _)| at.line == number as u64 + 1) {
            let start = at.column as usize - 1;
            for c in chars.iter_mut().skip(start).take(*length) {
                *c = ' ';
            }
        }
        out.extend(chars);
    }
    out
}
