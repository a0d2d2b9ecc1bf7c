//! Repairs a broken program's own error proposes, tried before any model answer: Python's and
//! Ibis's "did you mean", the nearest column or table name of the schema to a misspelt one, and
//! the Ibis method for a pandas or SQL name (`sort_values` -> `order_by`), pandas idioms Ibis
//! spells otherwise (the `.str` and `.dt` accessors, `ascending=False`), bare names given their
//! owner (`desc(...)` -> `ibis.desc(...)`, a column -> `_.column`), a column the program made
//! read from the chain instead of the table it was made on, a filter moved ahead of the
//! projection that dropped its columns, and the brackets a program cut short
//! leaves open (`'(' was never closed`), closed at its end. The caller runs each through the
//! checks, the smallest change first.

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

/// pandas, SQL, Spark and polars names of table and column methods, with Ibis's.
const METHOD_NAMES: [(&str, &str); 19] = [
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
    ("count_distinct", "nunique"),
    ("countDistinct", "nunique"),
    ("n_unique", "nunique"),
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
    let unknown_name = unknown_name.filter(|_| error.contains("not defined") || error.contains("not allowed"));
    if let Some(wrong) = unknown_name.clone() {
        if let Some(right) = &suggested {
            pairs.push((wrong.clone(), right.clone()));
        }
        let names: Vec<&str> = tables.keys().map(String::as_str).collect();
        pairs.extend(nearest(&wrong, &names).map(|right| (wrong.clone(), right.to_string())));
    }
    let bare = unknown_name.and_then(|name| bare_name(program, &name, tables));
    let deferred = quoted_after(error, "has no attribute").and_then(|name| deferred_column(program, &name, tables));
    let filtered_first = filter_before_projection(program, error);
    let mut repairs: Vec<Repair> = [
        sql_style_aggregates(program, error),
        closed_brackets(program, error),
        pandas_accessor(program, error),
        descending_keyword(program, error),
        bare,
        deferred,
        filtered_first,
    ]
    .into_iter()
    .flatten()
    .collect();
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

/// pandas' `.str` and `.dt` accessors, which Ibis columns do not have: their methods are the
/// column's own (`t.name.str.lower()` -> `t.name.lower()`), with pandas' names and properties
/// as Ibis's methods (`.str.len()` -> `.length()`, `.dt.year` -> `.year()`).
fn pandas_accessor(program: &str, error: &str) -> Option<Repair> {
    const STRING_METHODS: [(&str, &str); 2] = [("len", "length"), ("slice", "substr")];
    const DATE_PROPERTIES: [(&str, &str); 10] = [
        ("year", "year()"),
        ("month", "month()"),
        ("day", "day()"),
        ("hour", "hour()"),
        ("minute", "minute()"),
        ("second", "second()"),
        ("quarter", "quarter()"),
        ("date", "date()"),
        ("dayofweek", "day_of_week.index()"),
        ("day_name", "day_of_week.full_name()"),
    ];
    let accessor = quoted_after(error, "has no attribute").filter(|name| name == "str" || name == "dt")?;
    let marker = format!(".{accessor}.");
    let (mut out, mut rest) = (String::new(), program);
    while let Some(at) = rest.find(&marker) {
        out.push_str(&rest[..at]);
        out.push('.');
        let after = &rest[at + marker.len()..];
        let name_end = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        let (name, tail) = after.split_at(name_end);
        let called = tail.starts_with('(');
        let renamed = match accessor.as_str() {
            "str" => STRING_METHODS.iter().find(|(pandas, _)| *pandas == name).map(|(_, ibis)| ibis.to_string()),
            // A property in pandas, a method in Ibis: called unless the program calls it.
            _ => DATE_PROPERTIES
                .iter()
                .find(|(pandas, _)| *pandas == name)
                .map(|(_, ibis)| if called { ibis.trim_end_matches("()").to_string() } else { ibis.to_string() }),
        };
        out.push_str(&renamed.unwrap_or_else(|| name.to_string()));
        rest = tail;
    }
    if out.is_empty() {
        return None;
    }
    out.push_str(rest);
    Some(Repair { program: out, from: marker, to: ".".into() })
}

/// pandas' `ascending=` keyword on an ordering call (`order_by("a", ascending=False)`, as
/// `sort_values` becomes once renamed): Ibis orders descending by `ibis.desc(key)`, so with
/// `False` every key (each item of a list of keys) is wrapped, and with `True` the keyword goes.
fn descending_keyword(program: &str, error: &str) -> Option<Repair> {
    if !error.contains("unexpected keyword argument 'ascending'") {
        return None;
    }
    let keyword = program.find("ascending")?;
    let value = program[keyword + "ascending".len()..].trim_start().strip_prefix('=')?.trim_start();
    let descending = if value.starts_with("False") {
        true
    } else if value.starts_with("True") {
        false
    } else {
        return None;
    };
    let close = program.len() - value.len() + if descending { 5 } else { 4 };
    let close = close + program[close..].find(|c: char| !c.is_whitespace())?;
    if !program[close..].starts_with(')') {
        return None;
    }
    // The call's opening bracket: the nearest `(` before the keyword whose call reaches past it.
    let open = program[..keyword].rmatch_indices('(').map(|(at, _)| at).find(|&at| call_end(program, at).is_some_and(|end| end > keyword))?;
    let arguments = program[open + 1..keyword].trim_end().trim_end_matches(',');
    let keys: Vec<&str> = top_level_items(arguments)
        .into_iter()
        .flat_map(|argument| match argument.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
            Some(list) => top_level_items(list),
            None => vec![argument],
        })
        .collect();
    if keys.is_empty() {
        return None;
    }
    let keys: Vec<String> = keys.iter().map(|key| if descending { format!("ibis.desc({key})") } else { key.to_string() }).collect();
    let repaired = format!("{}{}{}", &program[..open + 1], keys.join(", "), &program[close..]);
    Some(Repair {
        program: repaired,
        from: program[keyword..close].trim_end().to_string(),
        to: if descending { "ibis.desc(...)".into() } else { String::new() },
    })
}

/// Ibis's top-level functions that programs call bare, as if imported from `ibis`.
const IBIS_FUNCTIONS: [&str; 14] =
    ["desc", "asc", "literal", "null", "row_number", "rank", "dense_rank", "cases", "coalesce", "greatest", "least", "now", "date", "timestamp"];

/// A bare name that is not defined: an Ibis function called without `ibis.` (`desc("n")` ->
/// `ibis.desc("n")`), or a column written without its table, one of the schema's or one the
/// program names in a keyword argument (`filter(senior)` after `mutate(senior=...)` -> `_.senior`).
fn bare_name(program: &str, name: &str, tables: &TableSchemas) -> Option<Repair> {
    let occurrences = bare_occurrences(program, name);
    let to = if IBIS_FUNCTIONS.contains(&name) {
        format!("ibis.{name}")
    } else if tables.values().any(|columns| columns.contains_key(name)) || occurrences.iter().any(|&(_, keyword)| keyword) {
        format!("_.{name}")
    } else {
        return None;
    };
    let mut repaired = program.to_string();
    for (at, keyword) in occurrences.into_iter().rev() {
        if !keyword {
            repaired.replace_range(at..at + name.len(), &to);
        }
    }
    (repaired != program).then(|| Repair { program: repaired, from: name.to_string(), to })
}

/// A column the program makes (`mutate(big=...)`) read from the table it was made on
/// (`.filter(t.big)`), where it does not exist: read from the table in the chain instead,
/// `_.big`.
fn deferred_column(program: &str, name: &str, tables: &TableSchemas) -> Option<Repair> {
    if !bare_occurrences(program, name).iter().any(|&(_, keyword)| keyword) {
        return None;
    }
    let mut repaired = program.to_string();
    let mut from = None;
    for table in tables.keys() {
        let attribute = format!("{table}.{name}");
        for (at, _) in bare_occurrences(program, &attribute).into_iter().rev() {
            repaired.replace_range(at..at + attribute.len(), &format!("_.{name}"));
            from.get_or_insert(attribute.clone());
        }
    }
    Some(Repair { program: repaired, from: from?, to: format!("_.{name}") })
}

/// A filter on the table's columns after a projection that dropped them
/// (`t.select("a").filter(t.b)`: Ibis finds `t.b` belongs to another relation): the filter
/// moves ahead of the `select` (or `drop`), which returns the same rows.
fn filter_before_projection(program: &str, error: &str) -> Option<Repair> {
    if !(error.contains("to filter") && error.contains("belong to another relation")) {
        return None;
    }
    for projection in [".select(", ".drop("] {
        let mut from = 0;
        while let Some(offset) = program[from..].find(projection) {
            let start = from + offset;
            from = start + projection.len();
            let end = call_end(program, start + projection.len() - 1)?;
            let after = program[end..].trim_start();
            if let Some(rest) = after.strip_prefix(".filter(") {
                let filter_start = program.len() - after.len();
                let filter_end = call_end(program, program.len() - rest.len() - 1)?;
                let (projected, filter) = (&program[start..end], &program[filter_start..filter_end]);
                let repaired = format!("{}{filter}{projected}{}", &program[..start], &program[filter_end..]);
                return Some(Repair {
                    program: repaired,
                    from: format!("{}{}", projection.trim_end_matches('('), ".filter"),
                    to: format!(".filter{}", projection.trim_end_matches('(')),
                });
            }
        }
    }
    None
}

/// The index just after the bracket that closes the one at `open`, outside strings.
fn call_end(program: &str, open: usize) -> Option<usize> {
    outside_strings(&program[open..]).find(|&(_, c, depth)| depth == 0 && matches!(c, ')' | ']' | '}')).map(|(at, _, _)| open + at + 1)
}

/// Each character of `text` outside string literals, with its index and the bracket depth
/// after it (an opening bracket counts itself, a closing one does not).
fn outside_strings(text: &str) -> impl Iterator<Item = (usize, char, i32)> + '_ {
    let (mut depth, mut quote) = (0i32, None);
    text.char_indices().filter_map(move |(at, c)| {
        if let Some(open) = quote {
            if c == open {
                quote = None;
            }
            return None;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                return None;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        Some((at, c, depth))
    })
}

/// Where `name` stands alone in `program` (not an attribute, not in a string), and whether each
/// is a keyword argument or assignment (`name=`, not `name ==`).
fn bare_occurrences(program: &str, name: &str) -> Vec<(usize, bool)> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = program[from..].find(name) {
        let at = from + offset;
        from = at + name.len();
        let before = program[..at].chars().next_back();
        let after = program[from..].chars().next();
        if before.is_some_and(|c| is_word(c) || matches!(c, '.' | '\'' | '"')) || after.is_some_and(|c| is_word(c) || matches!(c, '\'' | '"')) {
            continue;
        }
        let rest = program[from..].trim_start();
        found.push((at, rest.starts_with('=') && !rest.starts_with("==")));
    }
    found
}

/// The comma-separated items of `text` outside brackets and strings, trimmed, empty ones left out.
fn top_level_items(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    for (at, _, _) in outside_strings(text).filter(|&(_, c, depth)| c == ',' && depth == 0) {
        items.push(text[start..at].trim());
        start = at + 1;
    }
    items.push(text[start..].trim());
    items.retain(|item| !item.is_empty());
    items
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
        assert_eq!(
            repair("expr = orders.agg(n=orders.id.count_distinct())", "AttributeError: 'IntegerColumn' object has no attribute 'count_distinct'"),
            ["expr = orders.agg(n=orders.id.nunique())"]
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
    fn pandas_idioms_become_ibis_s() {
        let tables = tables();
        let first = |program: &str, error: &str| propose(program, error, &tables).into_iter().next().map(|r| r.program);
        let no_str = "AttributeError: 'StringColumn' object has no attribute 'str'";
        assert_eq!(
            first("expr = orders.filter(orders.status.str.contains('x')).mutate(n=orders.status.str.len())", no_str).as_deref(),
            Some("expr = orders.filter(orders.status.contains('x')).mutate(n=orders.status.length())")
        );
        let no_dt = "AttributeError: 'DateColumn' object has no attribute 'dt'";
        assert_eq!(
            first("expr = t.mutate(y=t.d.dt.year, w=t.d.dt.strftime('%Y'), q=t.d.dt.quarter())", no_dt).as_deref(),
            Some("expr = t.mutate(y=t.d.year(), w=t.d.strftime('%Y'), q=t.d.quarter())")
        );
        let keyword = "TypeError: Table.order_by() got an unexpected keyword argument 'ascending'";
        assert_eq!(
            first("expr = orders.order_by('amount', ascending=False).limit(3)", keyword).as_deref(),
            Some("expr = orders.order_by(ibis.desc('amount')).limit(3)")
        );
        assert_eq!(
            first("expr = orders.order_by(['status', orders.amount.abs()], ascending = False)", keyword).as_deref(),
            Some("expr = orders.order_by(ibis.desc('status'), ibis.desc(orders.amount.abs()))")
        );
        assert_eq!(first("expr = orders.order_by('amount', ascending=True)", keyword).as_deref(), Some("expr = orders.order_by('amount')"));
        // A list of directions is not guessed at.
        assert_eq!(first("expr = orders.order_by(['a', 'b'], ascending=[True, False])", keyword), None);
    }

    #[test]
    fn bare_ibis_functions_and_columns_get_their_owner() {
        let tables = tables();
        let first = |program: &str, error: &str| propose(program, error, &tables).into_iter().next().map(|r| r.program);
        let not_allowed = |name: &str| format!("SandboxViolation: name `{name}` is not allowed: only bound tables, `ibis`, `_`");
        assert_eq!(
            first("expr = orders.order_by(desc(\"amount\"), orders.id.desc())", &not_allowed("desc")).as_deref(),
            Some("expr = orders.order_by(ibis.desc(\"amount\"), orders.id.desc())")
        );
        assert_eq!(
            first("expr = orders.mutate(big=orders.amount > 9).filter(big == True)", &not_allowed("big")).as_deref(),
            Some("expr = orders.mutate(big=orders.amount > 9).filter(_.big == True)")
        );
        assert_eq!(
            first("expr = orders.filter(amount > 5).select('amount')", "NameError: name 'amount' is not defined").as_deref(),
            Some("expr = orders.filter(_.amount > 5).select('amount')")
        );
        assert_eq!(
            first("expr = orders.mutate(big=orders.amount > 9).filter(orders.big)", "AttributeError: 'Table' object has no attribute 'big'").as_deref(),
            Some("expr = orders.mutate(big=orders.amount > 9).filter(_.big)")
        );
        let other_relation = "IntegrityError: Cannot add <ibis.expr.operations.relations.Field object at 0x7f> to filter, they belong to another relation";
        assert_eq!(
            first("expr = orders.select(\"id\", \"amount\").filter(orders.status == \"(\").limit(2)", other_relation).as_deref(),
            Some("expr = orders.filter(orders.status == \"(\").select(\"id\", \"amount\").limit(2)")
        );
        // A name that is neither an Ibis function nor a column is left to the model.
        assert_eq!(first("expr = orders.filter(zebra > 5)", &not_allowed("zebra")), None);
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
