//! DuckDB's `ASOF [LEFT] JOIN t ON t.k = u.k AND u.ts >= t.ts`, which `sqlparser` reads only in
//! Snowflake's form (`ASOF JOIN t MATCH_CONDITION (...)`). The `ASOF` keyword is blanked out
//! before parsing, so the SQL keeps its positions, and the join whose table starts where the
//! keyword pointed is translated as Ibis's `asof_join`.

use crate::sql_text::blank_at;
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Token, Tokenizer};
use std::borrow::Cow;

/// The SQL without its `ASOF` keywords, and where each ASOF-joined table starts.
pub(crate) fn blank_keywords<'s>(sql: &'s str, dialect: &dyn Dialect) -> (Cow<'s, str>, Vec<Location>) {
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize_with_location() else { return (Cow::Borrowed(sql), Vec::new()) };
    let words: Vec<_> = tokens.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
    let keyword = |index: usize| match words.get(index).map(|t| &t.token) {
        Some(Token::Word(word)) => Some(word.keyword),
        _ => None,
    };
    if (0..words.len()).any(|i| keyword(i) == Some(Keyword::MATCH_CONDITION)) {
        return (Cow::Borrowed(sql), Vec::new());
    }
    let mut blanked = Vec::new();
    let mut tables = Vec::new();
    for index in 0..words.len() {
        if keyword(index) != Some(Keyword::ASOF) {
            continue;
        }
        let mut next = index + 1;
        if keyword(next) == Some(Keyword::LEFT) {
            next += 1;
            if keyword(next) == Some(Keyword::OUTER) {
                next += 1;
            }
        }
        if keyword(next) != Some(Keyword::JOIN) {
            continue;
        }
        if let Some(table) = words.get(next + 1) {
            blanked.push(words[index].span.start);
            tables.push(table.span.start);
        }
    }
    if blanked.is_empty() {
        return (Cow::Borrowed(sql), Vec::new());
    }
    let spans: Vec<(Location, usize)> = blanked.into_iter().map(|at| (at, "ASOF".len())).collect();
    (Cow::Owned(blank_at(sql, &spans)), tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::DuckDbDialect;

    #[test]
    fn asof_keywords_are_blanked_and_their_tables_found() {
        let (sql, tables) = blank_keywords("SELECT * FROM a\nASOF LEFT JOIN b ON a.k = b.k AND a.t >= b.t", &DuckDbDialect {});
        assert_eq!(sql, "SELECT * FROM a\n     LEFT JOIN b ON a.k = b.k AND a.t >= b.t");
        assert_eq!(tables, vec![Location { line: 2, column: 16 }]);
        let (sql, tables) = blank_keywords("SELECT 'ASOF JOIN' AS asof FROM a", &DuckDbDialect {});
        assert_eq!(sql, "SELECT 'ASOF JOIN' AS asof FROM a");
        assert!(tables.is_empty());
    }
}
