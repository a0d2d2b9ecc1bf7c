//! Code-completion prefixes: a verified program cut where a person typing it would pause: before
//! a method of the chain, just inside a call's parentheses, or at the start of a statement.
//! The target is always the whole verified program.

use crate::python_tokens::{Kind, tokenize};

/// The most prefixes taken from one program.
pub const MAX_CUTS: usize = 3;

/// Byte offsets at which `code` may be cut, spread over the program (at most [`MAX_CUTS`]).
pub fn cut_points(code: &str) -> Vec<usize> {
    let Some(tokens) = tokenize(code) else { return Vec::new() };
    let text = |i: usize| tokens.get(i).map_or("", |t: &crate::python_tokens::Token| t.text(code));
    let mut cuts = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        // Before `.method(` that continues a chain.
        let method = text(i) == "." && tokens.get(i + 1).is_some_and(|t| t.kind == Kind::Name) && text(i + 2) == "(" && i > 0;
        // Inside a call that has arguments: `filter(` | `_.a > 1)`.
        let inside_call = text(i) == "(" && i > 0 && tokens[i - 1].kind == Kind::Name && text(i + 1) != ")";
        // The start of a statement after the first.
        let statement = token.kind == Kind::Newline && i + 1 < tokens.len();
        let at = if inside_call || statement {
            token.end
        } else if method {
            token.start
        } else {
            continue;
        };
        // Some code must be left to complete, and some given.
        if code[at..].trim().len() >= 4 && code[..at].trim().len() >= 4 {
            cuts.push(at);
        }
    }
    cuts.dedup();
    if cuts.len() <= MAX_CUTS {
        return cuts;
    }
    // Evenly spread: the first quarter, the middle, the last quarter.
    (0..MAX_CUTS).map(|k| cuts[(2 * k + 1) * cuts.len() / (2 * MAX_CUTS)]).collect()
}

/// The prefix of `code` at `cut`, without trailing spaces (a newline is kept: it says "go on with
/// a new statement").
pub fn prefix(code: &str, cut: usize) -> String {
    let prefix = &code[..cut];
    let trimmed = prefix.trim_end_matches([' ', '\t']);
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_before_methods_inside_calls_and_between_statements() {
        let code = "joined = customers.join(orders, orders.customer_id == customers.id)\nexpr = joined.filter(_.amount > 10).select(\"id\")";
        let prefixes: Vec<String> = cut_points(code).into_iter().map(|cut| prefix(code, cut)).collect();
        assert_eq!(prefixes.len(), MAX_CUTS, "{prefixes:?}");
        for prefix in &prefixes {
            assert!(code.starts_with(prefix.as_str()) && prefix.len() < code.len());
            let next = &code[prefix.len()..];
            assert!(next.starts_with('.') || next.starts_with('\n') || prefix.ends_with('(') || prefix.ends_with('\n'), "cut at a boundary: {prefix:?}");
        }
    }

    #[test]
    fn a_tiny_program_has_no_cut() {
        assert!(cut_points("t.a").is_empty());
    }
}
