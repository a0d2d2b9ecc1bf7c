//! A lexical look at SQL text, enough to answer two questions without a parser: does the
//! statement end with an ORDER BY of its own, and is it one statement or several.

/// Words (lowercased) and semicolons, each with its parenthesis depth; string literals, quoted
/// names and `--` comments are skipped.
fn tokens(sql: &str) -> Vec<(String, usize)> {
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |word: &mut String, tokens: &mut Vec<(String, usize)>, depth: usize| {
        if !word.is_empty() {
            tokens.push((word.to_ascii_lowercase(), depth));
            word.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                flush(&mut word, &mut tokens, depth);
                tokens.push(("<literal>".into(), depth));
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut tokens, depth);
                chars.next();
                skip_past(&mut chars, ['*', '/']);
            }
            '$' if chars.peek() == Some(&'$') => {
                flush(&mut word, &mut tokens, depth);
                tokens.push(("<literal>".into(), depth));
                chars.next();
                skip_past(&mut chars, ['$', '$']);
            }
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut word, &mut tokens, depth);
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '(' => {
                flush(&mut word, &mut tokens, depth);
                depth += 1;
            }
            ')' => {
                flush(&mut word, &mut tokens, depth);
                depth = depth.saturating_sub(1);
            }
            ';' => {
                flush(&mut word, &mut tokens, depth);
                tokens.push((";".into(), depth));
            }
            c if c.is_alphanumeric() || c == '_' => word.push(c),
            _ => flush(&mut word, &mut tokens, depth),
        }
    }
    flush(&mut word, &mut tokens, depth);
    tokens
}

/// Advances past the next occurrence of the two-character sequence `end` (or to the end).
fn skip_past(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, end: [char; 2]) {
    let mut previous = None;
    for current in chars.by_ref() {
        if previous == Some(end[0]) && current == end[1] {
            return;
        }
        previous = Some(current);
    }
}

/// Whether the statement ends with an ORDER BY of its own: one outside every parenthesis (so not
/// in a window, an ordered aggregate or a subquery). Whether it orders totally is then decided
/// from the data.
pub(crate) fn orders_at_top_level(sql: &str) -> bool {
    let tokens = tokens(sql);
    let words: Vec<&str> = tokens.iter().filter(|(_, depth)| *depth == 0).map(|(word, _)| word.as_str()).collect();
    words.windows(2).any(|pair| pair == ["order", "by"])
}

/// Whether the text holds more than one statement (something follows a top-level `;`).
pub(crate) fn has_several_statements(sql: &str) -> bool {
    let tokens = tokens(sql);
    tokens.iter().position(|(token, _)| token == ";").is_some_and(|at| tokens[at..].iter().any(|(token, _)| token != ";"))
}

/// Statements that return rows; anything else (DDL, DML, SET, PRAGMA, ATTACH, COPY) is refused.
const QUERY_KEYWORDS: &[&str] = &["select", "with", "from", "values", "table", "pivot", "unpivot", "summarize"];

/// The first keyword when the text is not a query, so the caller can name it; `None` for a query.
pub(crate) fn non_query_keyword(sql: &str) -> Option<String> {
    let trimmed = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    let first = tokens(trimmed).into_iter().next().map(|(word, _)| word)?;
    (!QUERY_KEYWORDS.contains(&first.as_str())).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_top_level_order_by_counts() {
        assert!(orders_at_top_level("SELECT a FROM t ORDER BY a"));
        assert!(orders_at_top_level("SELECT a FROM t UNION SELECT b FROM u\norder\n  by 1"));
        assert!(!orders_at_top_level("SELECT RANK() OVER (ORDER BY a) FROM t"));
        assert!(!orders_at_top_level("SELECT * FROM (SELECT a FROM t ORDER BY a LIMIT 3) AS s"));
        assert!(!orders_at_top_level("SELECT 'order by' AS \"order by\" FROM t -- order by a"));
        assert!(!orders_at_top_level("SELECT string_agg(a ORDER BY a) FROM t"));
        assert!(orders_at_top_level("SELECT id FROM t /* today's list */ ORDER BY a DESC, id"));
        assert!(!orders_at_top_level("SELECT $$ order by $$ AS x FROM t"));
    }

    #[test]
    fn recognizes_queries() {
        assert_eq!(non_query_keyword("  (SELECT 1) UNION (SELECT 2)"), None);
        assert_eq!(non_query_keyword("WITH a AS (SELECT 1) SELECT * FROM a"), None);
        assert_eq!(non_query_keyword("-- comment\nFROM t"), None);
        assert_eq!(non_query_keyword("DROP TABLE t").as_deref(), Some("drop"));
        assert_eq!(non_query_keyword("SET threads = 8").as_deref(), Some("set"));
    }

    #[test]
    fn counts_statements() {
        assert!(!has_several_statements("SELECT 1"));
        assert!(!has_several_statements("SELECT 1;\n  ;"));
        assert!(!has_several_statements("SELECT ';' AS x -- ; DROP TABLE t"));
        assert!(has_several_statements("SELECT 1; DROP TABLE t"));
        assert!(has_several_statements("SELECT 1 /* it's */; SET default_null_order='nulls_first'; SELECT 2 -- '"));
    }
}
