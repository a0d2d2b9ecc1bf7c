//! Repairs a broken program's own error proposes, tried before any model answer: Python's and
//! Ibis's "did you mean", the nearest column or table name of the schema to a misspelt one, and
//! the Ibis method for a pandas or SQL name (`sort_values` -> `order_by`), and the brackets a
//! program cut short leaves open (`'(' was never closed`), closed at its end. Each is a
//! whole-word replacement or an ending; the caller runs each through the checks, the smallest
//! change first.

use ibert_oracle::OracleError;
use ibert_records::TableSchemas;

use crate::check::Checker;

/// One proposed repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub program: String,
    /// `amout` -> `amount`, for the output.
    pub from: String,
    pub to: String,
}

impl Repair {
    pub fn describe(&self) -> String {
        if self.from.is_empty() { format!("`{}` added at the end", self.to) } else { format!("`{}` -> `{}`", self.from, self.to) }
    }

    /// How much of the program changed (the smallest repair is tried first).
    pub fn size(&self) -> usize {
        edit_distance(&self.from, &self.to)
    }
}

/// pandas, SQL and Spark names of table methods, with Ibis's.
const METHOD_NAMES: [(&str, &str); 16] = [
    ("sort_values", "order_by"),
    ("sort", "order_by"),
    ("orderBy", "order_by"),
    ("orderby", "order_by"),
    ("groupby", "group_by"),
    ("groupBy", "group_by"),
    ("where", "filter"),
    ("query", "filter"),
    ("head", "limit"),
    ("drop_duplicates", "distinct"),
    ("merge", "join"),
    ("fillna", "fill_null"),
    ("dropna", "drop_null"),
    ("astype", "cast"),
    ("avg", "mean"),
    ("withColumn", "mutate"),
];

/// The repairs `error` (what running `program` raised) proposes, smallest first.
pub fn propose(program: &str, error: &str, tables: &TableSchemas) -> Vec<Repair> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let suggested = quoted_after(error, "did you mean").or_else(|| quoted_after(error, "Did you mean"));
    if let Some(wrong) = quoted_after(error, "has no attribute") {
        if let Some(right) = &suggested {
            pairs.push((wrong.clone(), right.clone()));
        }
        if let Some((_, ibis)) = METHOD_NAMES.iter().find(|(name, _)| *name == wrong) {
            pairs.push((wrong.clone(), ibis.to_string()));
        }
        let columns: Vec<&str> = tables.values().flat_map(|columns| columns.keys().map(String::as_str)).collect();
        pairs.extend(nearest(&wrong, &columns).map(|right| (wrong.clone(), right.to_string())));
    }
    if let Some(wrong) = quoted_after(error, "Column") {
        let existing: Vec<String> = error.split("Existing columns:").nth(1).map(quoted_all).unwrap_or_default();
        let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
        pairs.extend(nearest(&wrong, &existing).map(|right| (wrong.clone(), right.to_string())));
    }
    // A name that is not defined (Python) or not allowed (the sandbox names the unknown ones).
    let unknown_name = quoted_after(error, "name").or_else(|| backticked_after(error, "name"));
    if let Some(wrong) = unknown_name.filter(|_| error.contains("not defined") || error.contains("not allowed")) {
        if let Some(right) = &suggested {
            pairs.push((wrong.clone(), right.clone()));
        }
        let names: Vec<&str> = tables.keys().map(String::as_str).collect();
        pairs.extend(nearest(&wrong, &names).map(|right| (wrong.clone(), right.to_string())));
    }
    let mut repairs: Vec<Repair> = sql_style_aggregates(program, error).into_iter().chain(closed_brackets(program, error)).collect();
    for (from, to) in pairs {
        if from == to || repairs.iter().any(|r| r.from == from && r.to == to) {
            continue;
        }
        let repaired = replace_word(program, &from, &to);
        if repaired != program {
            repairs.push(Repair { program: repaired, from, to });
        }
    }
    repairs.sort_by_key(Repair::size);
    repairs
}

/// A program that ends inside brackets (Python: `'(' was never closed`, or an unexpected end of
/// file), with the open ones closed in order at its end.
fn closed_brackets(program: &str, error: &str) -> Option<Repair> {
    if !(error.contains("was never closed") || error.contains("unexpected EOF")) {
        return None;
    }
    let mut open = Vec::new();
    let mut chars = program.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => while chars.next_if(|&next| next != '\n').is_some() {},
            '\'' | '"' => {
                // A string, triple-quoted or not, with its escapes.
                let triple = chars.peek() == Some(&c) && {
                    let mut ahead = chars.clone();
                    ahead.next();
                    ahead.peek() == Some(&c)
                };
                if triple {
                    chars.next();
                    chars.next();
                }
                let mut quotes = 0;
                while let Some(inside) = chars.next() {
                    match inside {
                        '\\' => {
                            chars.next();
                            quotes = 0;
                        }
                        _ if inside == c => {
                            quotes += 1;
                            if !triple || quotes == 3 {
                                break;
                            }
                        }
                        '\n' if !triple => return None,
                        _ => quotes = 0,
                    }
                }
            }
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                let expected = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.pop() != Some(expected) {
                    return None;
                }
            }
            _ => {}
        }
    }
    let closing: String = open
        .iter()
        .rev()
        .map(|bracket| match bracket {
            '(' => ')',
            '[' => ']',
            _ => '}',
        })
        .collect();
    if closing.is_empty() {
        return None;
    }
    let body = program.trim_end();
    let separator = if body.ends_with(',') || body.lines().last().is_some_and(|line| line.trim_start().starts_with('.')) { "\n" } else { "" };
    Some(Repair { program: format!("{body}{separator}{closing}\n"), from: String::new(), to: closing })
}

/// SQL's aggregate functions as Ibis has no such top-level function (`ibis.count("id")`,
/// `ibis.avg('fare')`, which the sandbox names as outside the API): each call on a column name
/// becomes the column's method (`_.id.count()`, `_.fare.mean()`), all at once.
fn sql_style_aggregates(program: &str, error: &str) -> Option<Repair> {
    const AGGREGATES: [(&str, &str); 8] =
        [("count", "count"), ("sum", "sum"), ("avg", "mean"), ("mean", "mean"), ("min", "min"), ("max", "max"), ("median", "median"), ("nunique", "nunique")];
    let function = match error.split_once("`ibis.") {
        Some((_, rest)) => rest.split('`').next()?.to_string(),
        None => quoted_after(error, "module 'ibis' has no attribute")?,
    };
    let (_, method) = AGGREGATES.iter().find(|(name, _)| *name == function)?;
    let call = format!("ibis.{function}(");
    let (mut out, mut rest, mut first) = (String::new(), program, None);
    while let Some(at) = rest.find(&call) {
        out.push_str(&rest[..at]);
        let inside = &rest[at + call.len()..];
        let quote = inside.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let column_end = inside[1..].find(quote)? + 1;
        let column = &inside[1..column_end];
        let after = inside[column_end + 1..].strip_prefix(')')?;
        if column.is_empty() || !column.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let replacement = format!("_.{column}.{method}()");
        first.get_or_insert_with(|| (format!("{call}{quote}{column}{quote})"), replacement.clone()));
        out.push_str(&replacement);
        rest = after;
    }
    out.push_str(rest);
    let (from, to) = first?;
    Some(Repair { program: out, from, to })
}

/// The first `'...'` (or `"..."`) after `marker` in `text`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let start = rest.find(['\'', '"'])?;
    let quote = rest[start..].chars().next()?;
    let inner = &rest[start + 1..];
    let end = inner.find(quote)?;
    // A quote far away belongs to another phrase.
    (start <= 3).then(|| inner[..end].to_string())
}

fn backticked_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let start = rest.find('`')?;
    let inner = &rest[start + 1..];
    let end = inner.find('`')?;
    (start <= 2).then(|| inner[..end].to_string())
}

fn quoted_all(text: &str) -> Vec<String> {
    text.split('\'').skip(1).step_by(2).map(str::to_string).collect()
}

/// The one candidate nearest to `wrong` within a small edit distance (ties: none).
fn nearest<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &str)> =
        candidates.iter().map(|c| (edit_distance(&wrong.to_lowercase(), &c.to_lowercase()), *c)).filter(|(d, c)| *d <= limit && *c != wrong).collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    match scored.as_slice() {
        [] => None,
        [only] => Some(only.1),
        [first, second, ..] => (first.0 < second.0).then_some(first.1),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// `program` with every whole-word `from` (an identifier, or the inside of a string) as `to`.
fn replace_word(program: &str, from: &str, to: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(program.len());
    let mut rest = program;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        let whole = !before.is_some_and(is_word) && !after.is_some_and(is_word);
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { from });
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// The proposed repairs, smallest first, each run through the checks (with a `goal`, the
/// program must return that query's result; without, it must compile and run through Ibis); a
/// repair that gets past its error but raises another is repaired in turn, three rounds at
/// most. The program that passes, with the repairs made.
pub fn repair_and_check(
    checker: &mut Checker,
    broken: &str,
    error: &str,
    tables: &TableSchemas,
    goal: Option<&str>,
) -> Result<Option<(String, Vec<String>)>, OracleError> {
    let (mut program, mut error, mut made) = (broken.to_string(), error.to_string(), Vec::new());
    for _round in 0..3 {
        let mut next = None;
        for repair in propose(&program, &error, tables) {
            let checked = match goal {
                Some(goal) => checker.program_matches_sql(goal, &repair.program, tables)?,
                None => checker.program_runs(&repair.program, tables)?,
            };
            match checked.as_feedback() {
                Ok(_) => {
                    made.push(repair.describe());
                    return Ok(Some((checked.program, made)));
                }
                // Past this error, into another one: the next round repairs that.
                Err(why) if next.is_none() && !why.contains(&repair.from) => next = Some((repair, why)),
                Err(_) => {}
            }
        }
        let Some((repair, why)) = next else { return Ok(None) };
        made.push(repair.describe());
        (program, error) = (repair.program, why);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> TableSchemas {
        let orders = serde_json::json!({"id": "int64", "status": "string", "amount": "float64"});
        TableSchemas::from([("orders".to_string(), orders.as_object().unwrap().clone())])
    }

    #[test]
    fn errors_propose_the_names_they_point_to() {
        let tables = tables();
        let repair = |program: &str, error: &str| propose(program, error, &tables).into_iter().map(|r| r.program).collect::<Vec<_>>();
        assert_eq!(
            repair("expr = orders.filter(orders.amout > 10)", "AttributeError: 'Table' object has no attribute 'amout'"),
            ["expr = orders.filter(orders.amount > 10)"]
        );
        assert_eq!(
            repair("expr = orders.sort_values('amount')", "AttributeError: 'Table' object has no attribute 'sort_values'"),
            ["expr = orders.order_by('amount')"]
        );
        assert_eq!(
            repair("expr = orders.groupby('status').agg(n=_.count())", "AttributeError: Table object has no attribute 'groupby', did you mean 'group_by'"),
            ["expr = orders.group_by('status').agg(n=_.count())"]
        );
        assert_eq!(
            repair("expr = orders.select('id', 'amout')", "IbisTypeError: Column 'amout' is not found in table. Existing columns: 'id', 'status', 'amount'."),
            ["expr = orders.select('id', 'amount')"]
        );
        assert_eq!(
            repair("expr = order.filter(order.amount > 1)", "SandboxViolation: name `order` is not allowed: only bound tables, `ibis`, `_`"),
            ["expr = orders.filter(orders.amount > 1)"]
        );
        assert_eq!(repair("x = 1\nexpr = orders.limit(y)", "NameError: name 'y' is not defined. Did you mean: 'x'?"), ["x = 1\nexpr = orders.limit(x)"]);
    }

    #[test]
    fn sql_aggregate_functions_become_the_column_s_method() {
        let tables = tables();
        let program = "expr = orders.group_by('status').agg(n=ibis.count(\"id\"), avg_amount=ibis.avg('amount'))";
        let repaired = propose(program, "SandboxViolation: `ibis.count` is not part of the Ibis API a program may use", &tables);
        assert_eq!(repaired[0].program, "expr = orders.group_by('status').agg(n=_.id.count(), avg_amount=ibis.avg('amount'))");
        let error = "SandboxViolation: `ibis.avg` is not part of the Ibis API a program may use";
        assert_eq!(
            propose(&repaired[0].program, error, &tables)[0].program,
            "expr = orders.group_by('status').agg(n=_.id.count(), avg_amount=_.amount.mean())"
        );
        // Not a column name: nothing to rewrite.
        assert!(propose("expr = orders.agg(n=ibis.count(orders))", "SandboxViolation: `ibis.count` is not part of the Ibis API", &tables).is_empty());
    }

    #[test]
    fn brackets_a_cut_short_program_leaves_open_are_closed_at_its_end() {
        let error = "SyntaxError: '(' was never closed";
        let repairs = propose("expr = t.order_by(ibis.desc(\"a\")).head(5", error, &tables());
        assert_eq!(repairs[0].program, "expr = t.order_by(ibis.desc(\"a\")).head(5)\n");
        assert_eq!(repairs[0].describe(), "`)` added at the end");
        let chained = "expr = (\n    t\n    .filter(t.a > 1)\n    .select([\"a\", \"b\"\n";
        assert_eq!(propose(chained, error, &tables())[0].program, format!("{chained}]))\n"), "each open bracket, innermost first");
        // Brackets inside strings and comments do not count; a mismatched closer proposes nothing.
        let quoted = "expr = t.filter(t.s == \"(\")  # (\n";
        assert!(propose(quoted, error, &tables()).is_empty());
        assert!(propose("expr = t.select(]", error, &tables()).is_empty());
        assert!(propose("expr = t.select(", "NameError: name 'u' is not defined", &tables()).is_empty());
    }

    #[test]
    fn nothing_is_proposed_without_a_clear_nearest_name() {
        let tables = tables();
        assert!(propose("expr = orders.filter(orders.zzz > 1)", "AttributeError: 'Table' object has no attribute 'zzz'", &tables).is_empty());
        assert!(propose("expr = orders", "ValueError: something else", &tables).is_empty());
        // Only whole words change: `amount_x` keeps its `amount`.
        assert_eq!(replace_word("t.amout + t.amout_x", "amout", "amount"), "t.amount + t.amout_x");
    }
}
