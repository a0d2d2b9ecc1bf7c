//! `(col).field` where `sqlparser` reads the parentheses as a row value: inside the lists of
//! ROLLUP, CUBE and GROUPING SETS (`ROLLUP ((s.location).region, ...)`). The parentheses around
//! a column reference followed by `.field` are blanked out, which means the same (a struct
//! field is read as `col.field` too), and the SQL is parsed again.

use crate::sql_text::blank_at;
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The SQL with the parentheses of each `(name[.name...]).field` blanked; `None` when it has
/// none.
pub(crate) fn unwrap_field_parentheses(sql: &str, dialect: &dyn Dialect) -> Option<String> {
    let tokens = Tokenizer::new(dialect, sql).tokenize_with_location().ok()?;
    let words: Vec<_> = tokens.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
    let mut spans = Vec::new();
    for open in 0..words.len() {
        if words[open].token != Token::LParen {
            continue;
        }
        // A function's parentheses follow its name: `f(x).y` is not a column in parentheses.
        if open > 0 && matches!(&words[open - 1].token, Token::Word(word) if word.keyword == Keyword::NoKeyword) {
            continue;
        }
        let mut close = open + 1;
        if !matches!(words.get(close).map(|t| &t.token), Some(Token::Word(_))) {
            continue;
        }
        close += 1;
        while matches!(words.get(close).map(|t| &t.token), Some(Token::Period)) && matches!(words.get(close + 1).map(|t| &t.token), Some(Token::Word(_))) {
            close += 2;
        }
        let followed_by_field = matches!(words.get(close).map(|t| &t.token), Some(Token::RParen))
            && matches!(words.get(close + 1).map(|t| &t.token), Some(Token::Period))
            && matches!(words.get(close + 2).map(|t| &t.token), Some(Token::Word(_)));
        if followed_by_field {
            spans.push((words[open].span.start, 1));
            spans.push((words[close].span.start, 1));
        }
    }
    (!spans.is_empty()).then(|| blank_at(sql, &spans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;

    #[test]
    fn parentheses_around_a_column_before_a_field_are_blanked() {
        let sql = "SELECT count(*) FROM s GROUP BY ROLLUP ((s.location).region, date_trunc('month', t))";
        let unwrapped = unwrap_field_parentheses(sql, &PostgreSqlDialect {}).unwrap();
        assert_eq!(unwrapped, "SELECT count(*) FROM s GROUP BY ROLLUP ( s.location .region, date_trunc('month', t))");
        assert_eq!(unwrapped.len(), sql.len());
        assert_eq!(unwrap_field_parentheses("SELECT f(x).y, (a + b) FROM t", &PostgreSqlDialect {}), None);
    }
}
