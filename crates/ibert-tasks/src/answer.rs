//! Reading a model's answer: the code it holds, and for completions, the whole program it
//! stands for.

/// The first fenced block of an answer (```python, ```sql, ```), else the whole answer.
pub fn code_block(answer: &str) -> String {
    let Some(start) = answer.find("```") else { return answer.trim().to_string() + "\n" };
    let after = &answer[start + 3..];
    let body = after.split_once('\n').map_or(after, |(_, rest)| rest);
    let end = body.find("```").unwrap_or(body.len());
    body[..end].trim_end().to_string() + "\n"
}

/// The text inside the first triple-quoted string of an answer (a docstring), else the answer.
pub fn docstring(answer: &str) -> String {
    for quote in ["\"\"\"", "'''"] {
        if let Some(start) = answer.find(quote) {
            let rest = &answer[start + 3..];
            let end = rest.find(quote).unwrap_or(rest.len());
            return rest[..end].trim().to_string();
        }
    }
    answer.trim().to_string()
}

/// The programs a completion answer may stand for, most likely first. A model asked to complete
/// `prefix` may repeat it and finish it (the answer is the program), continue it (`.group_by(...)`
/// after a chain, the rest of a call the prefix left open), or add lines after it. The caller
/// takes the first that compiles.
pub fn completions(prefix: &str, answer: &str) -> Vec<String> {
    let code = code_block(answer);
    let prefix = prefix.trim_end();
    let mut candidates = Vec::new();
    if squeeze(&code).starts_with(&squeeze(prefix)) {
        candidates.push(code.clone());
    }
    let rest = code.trim_start();
    if open_brackets(prefix) > 0 || rest.starts_with('.') || rest.starts_with(')') || rest.starts_with(',') {
        candidates.push(format!("{prefix}{}{rest}", if rest.starts_with(['.', ')', ',']) { "" } else { " " }));
    }
    candidates.push(format!("{prefix}\n{rest}"));
    candidates.push(code);
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|candidate| seen.insert(candidate.clone()));
    candidates.into_iter().map(|candidate| candidate.trim_end().to_string() + "\n").collect()
}

/// Text without any whitespace, to compare programs laid out differently.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// How many brackets `code` opens and does not close, outside strings and comments.
fn open_brackets(code: &str) -> i64 {
    let mut depth = 0i64;
    let mut quote: Option<char> = None;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == '\\' => {
                let _ = (q, chars.next());
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '#' => {
                    for next in chars.by_ref() {
                        if next == '\n' {
                            break;
                        }
                    }
                }
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            },
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_are_taken_from_fenced_answers() {
        assert_eq!(code_block("Sure:\n```python\nexpr = t.count()\n```\nDone."), "expr = t.count()\n");
        assert_eq!(code_block("```\nx = 1\n"), "x = 1\n");
        assert_eq!(code_block("  expr = t  "), "expr = t\n");
    }

    #[test]
    fn a_repeated_prefix_is_the_program_and_a_continuation_closes_what_the_prefix_opened() {
        let prefix = "# total per status\nexpr = orders.group_by(\"status\").aggregate(\n";
        let whole = "```python\n# total per status\nexpr = orders.group_by(\"status\").aggregate(\n    total=orders.amount.sum()\n)\n```";
        assert_eq!(completions(prefix, whole)[0], "# total per status\nexpr = orders.group_by(\"status\").aggregate(\n    total=orders.amount.sum()\n)\n");
        let rest = "total=orders.amount.sum())";
        assert_eq!(completions(prefix, rest)[0], "# total per status\nexpr = orders.group_by(\"status\").aggregate( total=orders.amount.sum())\n");
        let chained = completions("expr = orders.filter(orders.amount > 10)", ".count()");
        assert_eq!(chained[0], "expr = orders.filter(orders.amount > 10).count()\n");
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        assert_eq!(open_brackets("x = f('(' , \"[\")  # (("), 0);
        assert_eq!(open_brackets("x = f(g(1)"), 1);
    }

    #[test]
    fn docstrings_are_read_from_triple_quotes() {
        assert_eq!(docstring("Here:\n\"\"\"Sum per day.\n\nReturns:\n    A table.\n\"\"\""), "Sum per day.\n\nReturns:\n    A table.");
        assert_eq!(docstring("no quotes"), "no quotes");
    }
}
