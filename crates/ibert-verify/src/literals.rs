//! Literals harvested from a query, so that fixture data contains the values its filters name:
//! `WHERE status = 'shipped'` selects rows only if some rows hold `'shipped'`.

use std::collections::{BTreeMap, BTreeSet};

use sqlparser::dialect::DuckDbDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

/// The literals of one query, sorted so that fixture data does not depend on their order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literals {
    pub strings: BTreeSet<String>,
    pub integers: BTreeSet<i64>,
    /// `YYYY-MM-DD` strings among the string literals (also usable as dates and timestamps).
    pub dates: BTreeSet<String>,
    /// Lowercase column name -> the strings the SQL compares it with (`status = 'x'`,
    /// `status IN (...)`, `name LIKE 'M%'`), with an example of each LIKE or regex pattern
    /// (`'M%'` gives `M`, `'^[A-Z]+[0-9]+$'` gives `A0`), so that fixtures fill that column with
    /// values its filters select.
    pub by_column: BTreeMap<String, BTreeSet<String>>,
    /// Lowercase column name -> the numbers the SQL compares it with (`amount > 500`,
    /// `qty BETWEEN 2 AND 5`, `x <= -1.5`), as written: fixtures put rows exactly at them, which
    /// tells `>` from `>=`.
    pub numbers_by_column: BTreeMap<String, BTreeSet<String>>,
}

/// The longest string kept: longer ones are text, not values a filter selects.
const LONGEST: usize = 200;

impl Literals {
    /// The string literals and bare integers of SQL text (comments and quoted names aside), and
    /// the strings compared with each column. Text that does not tokenize (an unterminated
    /// string or comment, which DuckDB refuses too) gives no literals.
    pub fn harvest(sql: &str) -> Literals {
        let mut literals = Literals::default();
        let Ok(tokens) = Tokenizer::new(&DuckDbDialect {}, sql).tokenize() else { return literals };
        let tokens: Vec<Token> = tokens.into_iter().filter(|token| !matches!(token, Token::Whitespace(_))).collect();
        for token in &tokens {
            match token {
                Token::SingleQuotedString(text) | Token::NationalStringLiteral(text) | Token::EscapedStringLiteral(text) | Token::HexStringLiteral(text) => {
                    literals.add_string(text.clone())
                }
                // The sign may belong to the literal (`> -50`) or be a minus; use both.
                Token::Number(digits, _) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                    if let Ok(value) = digits.parse::<i64>() {
                        literals.integers.insert(value);
                        literals.integers.insert(-value);
                    }
                }
                _ => {}
            }
        }
        for at in 0..tokens.len() {
            for (column, number) in compared_numbers(&tokens[at..]) {
                literals.numbers_by_column.entry(column).or_default().insert(number);
            }
            for (column, text) in compared_strings(&tokens[at..]) {
                if text.len() <= LONGEST {
                    literals.strings.insert(text.clone());
                    literals.by_column.entry(column).or_default().insert(text);
                }
            }
        }
        literals
    }

    /// Adds the literals of `other` (those of another query).
    pub fn extend(&mut self, other: Literals) {
        self.strings.extend(other.strings);
        self.integers.extend(other.integers);
        self.dates.extend(other.dates);
        for (column, values) in other.by_column {
            self.by_column.entry(column).or_default().extend(values);
        }
        for (column, values) in other.numbers_by_column {
            self.numbers_by_column.entry(column).or_default().extend(values);
        }
    }

    fn add_string(&mut self, text: String) {
        if text.len() > LONGEST {
            return;
        }
        if looks_like_date(&text) {
            self.dates.insert(text[..10].to_string());
        }
        self.strings.insert(text);
    }
}

/// The (lowercase column, string) pairs of a comparison that starts at the first token:
/// `column = 'x'` (or `<>`, `!=`), `column [NOT] [I]LIKE 'pattern' [ESCAPE 'c']` (an example the
/// pattern matches), `column [NOT] IN ('x', ...)` (strings only), and
/// `regexp_matches([table.]column, 'pattern')` and its kin (an example the pattern matches).
fn compared_strings(tokens: &[Token]) -> Vec<(String, String)> {
    let word = |at: usize| match tokens.get(at) {
        Some(Token::Word(word)) if word.quote_style.is_none() => Some(word),
        _ => None,
    };
    let keyword = |at: usize, keywords: &[&str]| word(at).is_some_and(|word| keywords.iter().any(|k| word.value.eq_ignore_ascii_case(k)));
    let string = |at: usize| match tokens.get(at) {
        Some(Token::SingleQuotedString(text)) => Some(text.as_str()),
        _ => None,
    };
    let Some(first) = word(0) else { return Vec::new() };
    let name = first.value.to_ascii_lowercase();
    if ["regexp_matches", "regexp_like", "regexp_full_match"].contains(&name.as_str()) && tokens.get(1) == Some(&Token::LParen) {
        let column = if tokens.get(3) == Some(&Token::Period) { 4 } else { 2 };
        return match (column_name(word(column)), tokens.get(column + 1), string(column + 2).and_then(regex_example)) {
            (Some(column), Some(Token::Comma), Some(example)) => vec![(column, example)],
            _ => Vec::new(),
        };
    }
    let Some(column) = column_name(Some(first)) else { return Vec::new() };
    let negated = usize::from(keyword(1, &["not"]));
    if keyword(1 + negated, &["like", "ilike"]) {
        let Some(pattern) = string(2 + negated) else { return Vec::new() };
        let escape = if keyword(3 + negated, &["escape"]) { string(4 + negated).and_then(|e| e.chars().next()) } else { None };
        return vec![(column, like_example(pattern, escape))];
    }
    if keyword(1 + negated, &["in"]) && tokens.get(2 + negated) == Some(&Token::LParen) {
        let mut pairs = Vec::new();
        let mut at = 3 + negated;
        while let Some(text) = string(at) {
            pairs.push((column.clone(), text.to_string()));
            at += if tokens.get(at + 1) == Some(&Token::Comma) { 2 } else { 1 };
        }
        return if tokens.get(at) == Some(&Token::RParen) { pairs } else { Vec::new() };
    }
    match (negated, tokens.get(1), string(2)) {
        (0, Some(Token::Eq | Token::Neq), Some(text)) => vec![(column, text.to_string())],
        _ => Vec::new(),
    }
}

/// The (lowercase column, number) pairs of a comparison that starts at the first token:
/// `column <op> [-]number` for `=`, `<>`, `<`, `<=`, `>`, `>=`, and `column [NOT] BETWEEN
/// [-]a AND [-]b`.
fn compared_numbers(tokens: &[Token]) -> Vec<(String, String)> {
    let number = |at: usize| -> Option<(String, usize)> {
        match (tokens.get(at), tokens.get(at + 1)) {
            (Some(Token::Minus), Some(Token::Number(digits, _))) => Some((format!("-{digits}"), at + 2)),
            (Some(Token::Number(digits, _)), _) => Some((digits.clone(), at + 1)),
            _ => None,
        }
    };
    let keyword =
        |at: usize, name: &str| matches!(tokens.get(at), Some(Token::Word(word)) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(name));
    let Some(Token::Word(first)) = tokens.first() else { return Vec::new() };
    let Some(column) = column_name(Some(first)) else { return Vec::new() };
    if matches!(tokens.get(1), Some(Token::Eq | Token::Neq | Token::Lt | Token::LtEq | Token::Gt | Token::GtEq)) {
        // Not `x > 5 * y` or `x > 5.0 + y`: only a number that is the whole right side.
        return match number(2) {
            Some((value, next)) if !matches!(tokens.get(next), Some(Token::Mul | Token::Div | Token::Plus | Token::Minus | Token::Mod | Token::Period)) => {
                vec![(column, value)]
            }
            _ => Vec::new(),
        };
    }
    let negated = usize::from(keyword(1, "not"));
    if keyword(1 + negated, "between")
        && let Some((low, next)) = number(2 + negated)
        && keyword(next, "and")
        && let Some((high, _)) = number(next + 1)
    {
        return vec![(column.clone(), low), (column, high)];
    }
    Vec::new()
}

/// A plain column name (ASCII letters, digits and `_`, not starting with a digit), lowercased.
fn column_name(word: Option<&Word>) -> Option<String> {
    let name = &word?.value;
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then(|| name.to_ascii_lowercase())
}

/// `YYYY-MM-DD...` naming a real calendar day (so `2024-02-30` is not used as a date).
/// A string the regular expression matches, for the common shapes (anchors, classes,
/// alternatives, quantifiers); `None` where the pattern is beyond this sketch.
fn regex_example(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (example, _) = regex_sequence(&chars, 0)?;
    Some(example)
}

/// The example of one alternative from `start` up to `|` or `)` at this depth, and where it ended.
fn regex_sequence(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut unit_start = 0;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '|' => {
                // Only the first alternative: skip the others.
                let mut depth = 0;
                while i < chars.len() && !(depth == 0 && chars[i] == ')') {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        '\\' => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
                return Some((out, i));
            }
            ')' => return Some((out, i)),
            '^' | '$' => {}
            '(' => {
                let mut j = i + 1;
                if chars.get(j) == Some(&'?') {
                    j += 2; // (?: ...)
                }
                let (inner, end) = regex_sequence(chars, j)?;
                unit_start = out.len();
                out.push_str(&inner);
                i = end;
            }
            '[' => {
                let end = (i + 1..chars.len()).find(|&j| chars[j] == ']' && j > i + 1)?;
                unit_start = out.len();
                let negated = chars[i + 1] == '^';
                out.push(if negated {
                    '#'
                } else if chars[i + 1] == '\\' {
                    'a'
                } else {
                    chars[i + 1]
                });
                i = end;
            }
            '\\' => {
                let escaped = *chars.get(i + 1)?;
                unit_start = out.len();
                out.push(match escaped {
                    'd' => '1',
                    'w' => 'a',
                    's' => ' ',
                    other => other,
                });
                i += 1;
            }
            '*' | '?' => out.truncate(unit_start),
            '+' => {}
            '{' => {
                // `{n}` and `{n,m}`: the unit n times.
                let end = (i..chars.len()).find(|&j| chars[j] == '}')?;
                let bounds: String = chars[i + 1..end].iter().collect();
                let count: usize = bounds.split(',').next()?.trim().parse().ok()?;
                let unit = out[unit_start..].to_string();
                out.truncate(unit_start);
                for _ in 0..count.min(20) {
                    out.push_str(&unit);
                }
                i = end;
            }
            '.' => {
                unit_start = out.len();
                out.push('x');
            }
            other => {
                unit_start = out.len();
                out.push(other);
            }
        }
        i += 1;
    }
    Some((out, i))
}

/// A string a LIKE pattern matches: `%` matches nothing, `_` an `x`, and the escape character
/// makes the next character literal.
pub(crate) fn like_example(pattern: &str, escape: Option<char>) -> String {
    let mut example = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            _ if Some(c) == escape => example.extend(chars.next()),
            '%' => {}
            '_' => example.push('x'),
            other => example.push(other),
        }
    }
    example
}

fn looks_like_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shaped = bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
        && bytes[8..10].iter().all(u8::is_ascii_digit);
    if !shaped {
        return false;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_with_an_escape_give_a_matching_example() {
        let literals = Literals::harvest("SELECT * FROM t WHERE code LIKE 'SAVE!_%' ESCAPE '!' AND name LIKE 'a_c%'");
        assert!(literals.by_column["code"].contains("SAVE_"), "{:?}", literals.by_column);
        assert!(literals.by_column["name"].contains("axc"), "{:?}", literals.by_column);
    }

    #[test]
    fn numbers_compared_with_a_column_are_kept_by_column() {
        let literals = Literals::harvest("SELECT * FROM t WHERE t.amount > 500 AND qty BETWEEN 2 AND 5 AND x <= -1.5 AND y > 3 * z AND w = 7");
        let numbers = |column: &str| literals.numbers_by_column.get(column).map(|set| set.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(numbers("amount"), ["500"]);
        assert_eq!(numbers("qty"), ["2", "5"]);
        assert_eq!(numbers("x"), ["-1.5"]);
        assert_eq!(numbers("w"), ["7"]);
        assert!(numbers("y").is_empty(), "a product is not a literal the column is compared with");
    }

    #[test]
    fn harvests_strings_dates_and_integers() {
        let sql = "SELECT \"col 1\", x2 FROM t -- 'not this'\nWHERE s = 'o''brien' AND d >= '2024-02-29' AND n > 42 AND f < 1.5 LIMIT 5";
        let literals = Literals::harvest(sql);
        assert_eq!(literals.strings.iter().collect::<Vec<_>>(), ["2024-02-29", "o'brien"]);
        assert_eq!(literals.dates.iter().collect::<Vec<_>>(), ["2024-02-29"]);
        assert_eq!(literals.integers.iter().copied().collect::<Vec<_>>(), [-42, -5, 5, 42]);
        let impossible = Literals::harvest("SELECT * FROM t WHERE d = '2024-02-30' OR d = '2023-02-29'");
        assert!(impossible.dates.is_empty(), "{:?}", impossible.dates);
    }

    #[test]
    fn strings_are_tied_to_the_columns_they_filter() {
        let sql = "SELECT * FROM o WHERE o.status IN ('shipped', 'it''s') AND channel = 'web' AND name NOT LIKE 'M_r%' \
                   AND regexp_matches(o.code, '^[A-Z]+[0-9]{2}$') AND regexp_matches(page, '^/(reports|billing)') AND x > 'b'";
        let literals = Literals::harvest(sql);
        let column = |name: &str| literals.by_column.get(name).map(|set| set.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(column("status"), ["it's", "shipped"]);
        assert_eq!(column("channel"), ["web"]);
        assert_eq!(column("name"), ["Mxr"]);
        assert_eq!(column("code"), ["A00"]);
        assert_eq!(column("page"), ["/reports"]);
        assert!(column("x").is_empty(), "only equality, pattern and IN comparisons");
        assert!(literals.strings.contains("A00"), "examples join the global pool too");
    }

    #[test]
    fn regex_examples_match_their_pattern() {
        for (pattern, example) in [("in$", "in"), ("^a.c?d*e+", "axe"), ("(?:ab|cd)x", "abx"), ("[^0-9]z", "#z"), ("\\d{3}-\\w", "111-a")] {
            assert_eq!(regex_example(pattern).as_deref(), Some(example), "{pattern}");
        }
    }
}
