//! A small Python tokenizer for programs that are already known to be valid (verified Ibis
//! code): names, numbers, strings, operators and line ends, with byte spans and bracket depth.
//! It is enough to find call boundaries and to rewrite one token; Python itself (in the oracle)
//! remains the judge of every program written from it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Name,
    Number,
    String,
    /// Operators and punctuation: `.`, `(`, `==`, `&`, ...
    Op,
    /// The end of a logical line (outside brackets).
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// Bracket depth before this token (an opening bracket has the outer depth).
    pub depth: usize,
}

impl Token {
    pub fn text<'a>(&self, code: &'a str) -> &'a str {
        &code[self.start..self.end]
    }
}

/// Operators of two or three characters, longest first.
const OPERATORS: [&str; 14] = ["**=", "//=", "==", "!=", "<=", ">=", "**", "//", "->", "+=", "-=", "*=", "&&", "||"];

/// Tokens of `code`; `None` if the text is not one this tokenizer understands (an unterminated
/// string or unbalanced brackets), in which case callers leave the program alone.
pub fn tokenize(code: &str) -> Option<Vec<Token>> {
    let bytes = code.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        let start = at;
        if c == b'#' {
            while at < bytes.len() && bytes[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        if c == b'\n' {
            at += 1;
            if depth == 0 && tokens.last().is_some_and(|t: &Token| t.kind != Kind::Newline && !(t.kind == Kind::Op && t.text(code) == "\\")) {
                tokens.push(Token { kind: Kind::Newline, start, end: at, depth });
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        if let Some(end) = string_end(bytes, at) {
            tokens.push(Token { kind: Kind::String, start, end, depth });
            at = end;
            continue;
        }
        if c == b'"' || c == b'\'' {
            return None;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at] >= 0x80) {
                at += 1;
            }
            tokens.push(Token { kind: Kind::Name, start, end: at, depth });
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit)) {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'.' || bytes[at] == b'_') {
                at += 1;
            }
            tokens.push(Token { kind: Kind::Number, start, end: at, depth });
            continue;
        }
        if let Some(op) = OPERATORS.iter().find(|op| code[at..].starts_with(**op)) {
            at += op.len();
            tokens.push(Token { kind: Kind::Op, start, end: at, depth });
            continue;
        }
        match c {
            b'(' | b'[' | b'{' => {
                tokens.push(Token { kind: Kind::Op, start, end: at + 1, depth });
                depth += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                tokens.push(Token { kind: Kind::Op, start, end: at + 1, depth });
            }
            _ => {
                let width = code[at..].chars().next().map_or(1, char::len_utf8);
                tokens.push(Token { kind: Kind::Op, start, end: at + width, depth });
                at += width - 1;
            }
        }
        at += 1;
    }
    (depth == 0).then_some(tokens)
}

/// The end of a string literal starting at `at` (with any `rb`, `f`, ... prefix), if one does.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut quote_at = at;
    while quote_at < bytes.len() && quote_at - at < 2 && b"rRbBuUfF".contains(&bytes[quote_at]) {
        quote_at += 1;
    }
    let quote = *bytes.get(quote_at)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    if quote_at > at && at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
        return None;
    }
    let triple = bytes.get(quote_at..quote_at + 3).is_some_and(|q| q.iter().all(|b| *b == quote));
    let mut i = quote_at + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' if !triple => return None,
            b if b == quote => {
                if !triple {
                    return Some(i + 1);
                }
                if bytes.get(i..i + 3).is_some_and(|q| q.iter().all(|b| *b == quote)) {
                    return Some(i + 3);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The index of the bracket that closes the one at `open`.
pub fn closing(tokens: &[Token], code: &str, open: usize) -> Option<usize> {
    let depth = tokens[open].depth;
    tokens.iter().enumerate().skip(open + 1).find(|(_, t)| t.depth == depth && matches!(t.text(code), ")" | "]" | "}")).map(|(i, _)| i)
}

/// The content of a simple string literal (no prefix, no escapes), for matching column names.
pub fn string_content<'a>(token: &Token, code: &'a str) -> Option<&'a str> {
    let text = token.text(code);
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))?;
    (!inner.contains('\\') && !inner.contains(['"', '\''])).then_some(inner)
}

/// Whether an operator token's text is one of Python's comparison operators.
pub fn is_comparison(text: &str) -> bool {
    matches!(text, ">" | "<" | ">=" | "<=" | "==" | "!=")
}

/// `code` with the bytes `start..end` replaced.
pub fn splice(code: &str, start: usize, end: usize, with: &str) -> String {
    format!("{}{with}{}", &code[..start], &code[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(code: &str) -> Vec<(Kind, &str, usize)> {
        tokenize(code).unwrap().iter().map(|t| (t.kind, t.text(code), t.depth)).collect()
    }

    #[test]
    fn splits_a_chain_with_depths() {
        let code = "expr = t.filter(t.a >= 1.5, _.b == 'x(')\n";
        let tokens = texts(code);
        assert_eq!(tokens[5], (Kind::Op, "(", 0));
        assert!(tokens.contains(&(Kind::Op, ">=", 1)));
        assert!(tokens.contains(&(Kind::Number, "1.5", 1)));
        assert!(tokens.contains(&(Kind::String, "'x('", 1)), "{tokens:?}");
        assert_eq!(tokens.last().unwrap().0, Kind::Newline);
    }

    #[test]
    fn newlines_inside_brackets_are_not_line_ends_and_comments_are_skipped() {
        let code = "expr = (\n    t.a  # note\n    .b()\n)\nx = 1";
        let newlines = tokenize(code).unwrap().iter().filter(|t| t.kind == Kind::Newline).count();
        assert_eq!(newlines, 1);
        assert!(!texts(code).iter().any(|(_, text, _)| text.contains("note")));
    }

    #[test]
    fn strings_with_prefixes_and_triple_quotes_are_one_token() {
        assert_eq!(
            texts("f\"{a}\" + r'\\d' + '''x\n'y'''"),
            vec![(Kind::String, "f\"{a}\"", 0), (Kind::Op, "+", 0), (Kind::String, "r'\\d'", 0), (Kind::Op, "+", 0), (Kind::String, "'''x\n'y'''", 0)]
        );
    }

    #[test]
    fn unbalanced_or_unterminated_code_is_not_tokenized() {
        assert!(tokenize("t.filter((t.a > 1)").is_none());
        assert!(tokenize("x = 'open").is_none());
        assert!(tokenize("x)").is_none());
    }

    #[test]
    fn finds_the_closing_bracket() {
        let code = "f(a, g(b), [c])";
        let tokens = tokenize(code).unwrap();
        assert_eq!(tokens[closing(&tokens, code, 1).unwrap()].start, code.len() - 1);
    }
}
