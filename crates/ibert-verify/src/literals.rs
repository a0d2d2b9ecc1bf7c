//! Literals harvested from a query, so that fixture data contains the values its filters name:
//! `WHERE status = 'shipped'` selects rows only if some rows hold `'shipped'`.

use std::collections::BTreeSet;

/// The literals of one query, sorted so that fixture data does not depend on their order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literals {
    pub strings: BTreeSet<String>,
    pub integers: BTreeSet<i64>,
    /// `YYYY-MM-DD` strings among the string literals (also usable as dates and timestamps).
    pub dates: BTreeSet<String>,
}

impl Literals {
    /// Scans SQL text for `'quoted'` strings and bare integers, skipping comments.
    pub fn harvest(sql: &str) -> Literals {
        let mut literals = Literals::default();
        let chars: Vec<char> = sql.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '-' && chars.get(i + 1) == Some(&'-') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '\'' {
                let mut text = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            text.push('\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                literals.add_string(text);
            } else if c == '"' {
                // A quoted identifier: skip it whole.
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
            } else if c.is_ascii_digit() && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '.')) {
                let start = i;
                while i + 1 < chars.len() && chars[i + 1].is_ascii_digit() {
                    i += 1;
                }
                let followed_by_word = chars.get(i + 1).is_some_and(|next| next.is_alphanumeric() || *next == '_' || *next == '.');
                if !followed_by_word {
                    let digits: String = chars[start..=i].iter().collect();
                    if let Ok(value) = digits.parse::<i64>() {
                        // The sign may belong to the literal (`> -50`) or be a minus; use both.
                        literals.integers.insert(value);
                        literals.integers.insert(-value);
                    }
                }
            }
            i += 1;
        }
        literals
    }

    fn add_string(&mut self, text: String) {
        if text.len() > 200 {
            return;
        }
        if looks_like_date(&text) {
            self.dates.insert(text[..10].to_string());
        }
        self.strings.insert(text);
    }
}

/// `YYYY-MM-DD...` naming a real calendar day (so `2024-02-30` is not used as a date).
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
    fn harvests_strings_dates_and_integers() {
        let sql = "SELECT \"col 1\", x2 FROM t -- 'not this'\nWHERE s = 'o''brien' AND d >= '2024-02-29' AND n > 42 AND f < 1.5 LIMIT 5";
        let literals = Literals::harvest(sql);
        assert_eq!(literals.strings.iter().collect::<Vec<_>>(), ["2024-02-29", "o'brien"]);
        assert_eq!(literals.dates.iter().collect::<Vec<_>>(), ["2024-02-29"]);
        assert_eq!(literals.integers.iter().copied().collect::<Vec<_>>(), [-42, -5, 5, 42]);
        let impossible = Literals::harvest("SELECT * FROM t WHERE d = '2024-02-30' OR d = '2023-02-29'");
        assert!(impossible.dates.is_empty(), "{:?}", impossible.dates);
    }
}
