//! A lexical look at SQL text through sqlparser's tokenizer, enough to answer three questions
//! without a parser: does the statement end with an ORDER BY of its own, is it one statement or
//! several, and is it a query at all.

use sqlparser::dialect::DuckDbDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// What these questions look at: words (lowercased), semicolons, and everything else (string
/// literals, quoted names, numbers, operators) as its text, each with its parenthesis depth.
/// Comments and white space are left out.
#[derive(Debug, PartialEq)]
enum Lexeme {
    Word(String),
    Semicolon,
    Other(String),
}

/// The lexemes of `sql` and their depths; `None` when it does not tokenize (an unterminated
/// string, quoted name or comment). Such text is left to DuckDB, which refuses it: the questions
/// below then answer as for one query without an ORDER BY.
fn lexemes(sql: &str) -> Option<Vec<(Lexeme, usize)>> {
    let tokens = Tokenizer::new(&DuckDbDialect {}, sql).tokenize().ok()?;
    let mut lexemes = Vec::new();
    let mut depth = 0usize;
    for token in tokens {
        match token {
            Token::Whitespace(_) => {}
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::SemiColon => lexemes.push((Lexeme::Semicolon, depth)),
            Token::Word(word) if word.quote_style.is_none() => lexemes.push((Lexeme::Word(word.value.to_ascii_lowercase()), depth)),
            other => lexemes.push((Lexeme::Other(other.to_string()), depth)),
        }
    }
    Some(lexemes)
}

/// Whether the statement ends with an ORDER BY of its own: one outside every parenthesis (so not
/// in a window, an ordered aggregate or a subquery). Whether it orders totally is then decided
/// from the data.
pub(crate) fn orders_at_top_level(sql: &str) -> bool {
    let lexemes = lexemes(sql).unwrap_or_default();
    let top: Vec<&Lexeme> = lexemes.iter().filter(|(_, depth)| *depth == 0).map(|(lexeme, _)| lexeme).collect();
    top.windows(2).any(|pair| matches!(pair, [Lexeme::Word(a), Lexeme::Word(b)] if a == "order" && b == "by"))
}

/// Whether the text holds more than one statement (something follows a top-level `;`).
pub(crate) fn has_several_statements(sql: &str) -> bool {
    let lexemes: Vec<Lexeme> = lexemes(sql).unwrap_or_default().into_iter().map(|(lexeme, _)| lexeme).collect();
    lexemes.iter().position(|lexeme| *lexeme == Lexeme::Semicolon).is_some_and(|at| lexemes[at..].iter().any(|lexeme| *lexeme != Lexeme::Semicolon))
}

/// Statements that return rows; anything else (DDL, DML, SET, PRAGMA, ATTACH, COPY) is refused.
const QUERY_KEYWORDS: &[&str] = &["select", "with", "from", "values", "table", "pivot", "unpivot", "summarize"];

/// The first keyword when the text is not a query, so the caller can name it; `None` for a query.
pub(crate) fn non_query_keyword(sql: &str) -> Option<String> {
    let first = match lexemes(sql)?.into_iter().next()?.0 {
        Lexeme::Word(word) => word,
        Lexeme::Semicolon => ";".to_string(),
        Lexeme::Other(text) => text,
    };
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
        assert_eq!(non_query_keyword("'text'").as_deref(), Some("'text'"), "what starts it is named, whatever it is");
        assert_eq!(non_query_keyword("SELECT 'unterminated"), None, "left to DuckDB");
    }

    #[test]
    fn counts_statements() {
        assert!(!has_several_statements("SELECT 1"));
        assert!(!has_several_statements("SELECT 1;\n  ;"));
        assert!(!has_several_statements("SELECT ';' AS x -- ; DROP TABLE t"));
        assert!(has_several_statements("SELECT 1; DROP TABLE t"));
        assert!(has_several_statements("SELECT 1 /* it's */; SET default_null_order='nulls_first'; SELECT 2 -- '"));
        assert!(has_several_statements("SELECT 1; *"), "anything after the first statement counts");
    }
}
