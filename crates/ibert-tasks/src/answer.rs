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
    // The answer restates a statement the prefix began (`expr = (` for a prefix ending in
    // `expr = orders.filter(`): the prefix up to that statement, then the answer.
    if let Some(target) = assignment_target(rest)
        && let Some(start) = statement_starts(prefix).into_iter().rev().find(|&start| assignment_target(&prefix[start..]) == Some(target))
    {
        candidates.push(format!("{}{rest}", &prefix[..start]));
    }
    if open_brackets(prefix) > 0 || rest.starts_with('.') || rest.starts_with(')') || rest.starts_with(',') {
        candidates.push(format!("{prefix}{}{rest}", if rest.starts_with(['.', ')', ',']) { "" } else { " " }));
    }
    candidates.push(format!("{prefix}\n{rest}"));
    candidates.push(code);
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|candidate| seen.insert(candidate.clone()));
    candidates.into_iter().map(|candidate| candidate.trim_end().to_string() + "\n").collect()
}

/// The name a statement assigns to (`expr` of `expr = ...`), if it starts with an assignment.
fn assignment_target(statement: &str) -> Option<&str> {
    let (name, after) = statement.split_once('=')?;
    let name = name.trim();
    let is_name = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    (is_name && !after.starts_with('=')).then_some(name)
}

/// Where the top-level statements of `code` start: lines outside any bracket that do not
/// continue the previous line.
fn statement_starts(code: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 0;
    let mut continued = false;
    for line in code.split_inclusive('\n') {
        let text = line.trim_start();
        if !continued && !text.is_empty() && !text.starts_with('#') && line == text && open_brackets(&code[..offset]) == 0 {
            starts.push(offset);
        }
        continued = line.trim_end().ends_with('\\');
        offset += line.len();
    }
    starts
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
    fn an_answer_that_restates_the_open_statement_replaces_it() {
        let prefix = "sold = order_items.filter(_.quantity >= 100)\nexpr = products.filter(";
        let answer = "```python\nexpr = (\n    products.filter(~products.id.isin(sold.product_id))\n)\n```";
        let candidates = completions(prefix, answer);
        let restated = "sold = order_items.filter(_.quantity >= 100)\nexpr = (\n    products.filter(~products.id.isin(sold.product_id))\n)\n";
        assert_eq!(candidates[0], restated, "{candidates:?}");
        assert!(completions(prefix, "~products.id.isin(sold.product_id))").iter().all(|c| c != restated), "a continuation is not a restatement");
        assert_eq!(assignment_target("x == 1"), None);
        assert_eq!(statement_starts("a = f(\n    b=1)\nc = 2\n"), vec![0, 16]);
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
