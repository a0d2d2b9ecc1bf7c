//! Augmentation: new candidates from verified examples, each re-verified by execution like any
//! other candidate (what does not verify is not kept).
//!
//! * `item_access`: `t.col` written `t["col"]`.
//! * `table_references`: `_` written as the chain's table, before the first step that makes a new
//!   table.
//! * `named_steps`: one chain written as named intermediate steps.
//! * `rename_table`, `rename_column`: an identifier renamed in the schema, the SQL and the Ibis.
//! * `numeric_literal`, `string_literal`: a literal both sides share changed on both sides
//!   (parameter expansion).

use std::collections::BTreeMap;

use ibert_records::{Example, Payload, TableSchemas};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::tokenizer::{Token as SqlToken, Tokenizer, Word};

use crate::Candidate;
use crate::python_tokens::{Kind, Token, closing, is_comparison, string_content, tokenize};

/// Every augmentation kind, for documentation and statistics.
pub const KINDS: [&str; 7] = ["item_access", "table_references", "named_steps", "rename_table", "rename_column", "numeric_literal", "string_literal"];

/// The candidates made from one verified sql_to_ibis example (none for other tasks).
pub fn augment(example: &Example) -> Vec<Candidate> {
    let Payload::SqlToIbis { input, target } = &example.payload else { return Vec::new() };
    let tables: TableSchemas = example.context.schemas();
    let Some(tokens) = tokenize(&target.ibis) else { return Vec::new() };
    let source = Source { sql: &input.sql, ibis: &target.ibis, tokens, tables: &tables };
    let variants: Vec<(&str, Option<Variant>)> = vec![
        ("item_access", source.item_access()),
        ("table_references", source.table_references()),
        ("named_steps", source.named_steps(&target.expr_name)),
        ("rename_table", source.rename_table()),
        ("rename_column", source.rename_column()),
        ("numeric_literal", source.literal(Kind::Number)),
        ("string_literal", source.literal(Kind::String)),
    ];
    variants
        .into_iter()
        .filter_map(|(kind, variant)| {
            let variant = variant?;
            let mut features = example.meta.features.clone();
            features.extend(["augmented".to_string(), format!("augment:{kind}")]);
            Some(Candidate {
                id: format!("{}.aug.{kind}", example.id),
                template: example.meta.template.clone().unwrap_or_default(),
                variation: format!("{}+{kind}", example.meta.variation.clone().unwrap_or_default()),
                sql: variant.sql.unwrap_or_else(|| input.sql.clone()),
                ibis: variant.ibis,
                expr_name: target.expr_name.clone(),
                tables: variant.tables.unwrap_or_else(|| tables.clone()),
                features,
                difficulty: example.meta.difficulty.clone(),
                derived_from: Some(example.id.clone()),
                align_types: false,
                shared_fixtures: None,
            })
        })
        .collect()
}

/// A rewritten example; `None` fields are unchanged.
struct Variant {
    sql: Option<String>,
    ibis: String,
    tables: Option<TableSchemas>,
}

struct Source<'a> {
    sql: &'a str,
    ibis: &'a str,
    tokens: Vec<Token>,
    tables: &'a TableSchemas,
}

impl Source<'_> {
    fn text(&self, index: usize) -> &str {
        self.tokens.get(index).map_or("", |t| t.text(self.ibis))
    }

    fn is_column(&self, name: &str) -> bool {
        self.tables.values().any(|columns| columns.contains_key(name))
    }

    /// `x.col` (a column, not a method) at the name token `index`.
    fn is_column_attribute(&self, index: usize) -> bool {
        index >= 2
            && self.text(index - 1) == "."
            && self.tokens[index - 2].kind == Kind::Name
            && self.text(index + 1) != "("
            && self.is_column(self.text(index))
    }

    /// `ibis` with the tokens at `indexes` replaced by `with(index)`.
    fn rewrite(&self, replacements: &[(usize, usize, String)]) -> String {
        let mut out = String::with_capacity(self.ibis.len() + 16);
        let mut at = 0;
        for (start, end, with) in replacements {
            out.push_str(&self.ibis[at..*start]);
            out.push_str(with);
            at = *end;
        }
        out.push_str(&self.ibis[at..]);
        out
    }

    fn item_access(&self) -> Option<Variant> {
        let replacements: Vec<(usize, usize, String)> = (0..self.tokens.len())
            .filter(|&i| self.is_column_attribute(i))
            .map(|i| (self.tokens[i - 1].start, self.tokens[i].end, format!("[\"{}\"]", self.text(i))))
            .collect();
        (!replacements.is_empty()).then(|| Variant { sql: None, ibis: self.rewrite(&replacements), tables: None })
    }

    /// `expr = [(] root . step ...`: the root name's index and the chain's depth.
    fn single_chain(&self) -> Option<(usize, usize, usize)> {
        let statements = self.tokens.iter().filter(|t| t.kind == Kind::Newline).count();
        let ends_with_newline = self.tokens.last().is_some_and(|t| t.kind == Kind::Newline);
        if statements > usize::from(ends_with_newline) || self.text(1) != "=" {
            return None;
        }
        let mut root = 2;
        while self.text(root) == "(" {
            root += 1;
        }
        (self.tokens.get(root)?.kind == Kind::Name && self.text(root + 1) == ".").then_some((0, root, self.tokens[root].depth))
    }

    /// The method calls of the chain at `depth` after `root`: (dot index, name index, closing paren index).
    fn chain_steps(&self, root: usize, depth: usize) -> Option<Vec<(usize, usize, usize)>> {
        let mut steps = Vec::new();
        let mut at = root + 1;
        while self.tokens.get(at).is_some_and(|t| t.depth == depth && t.text(self.ibis) == ".") {
            if self.tokens.get(at + 1)?.kind != Kind::Name || self.text(at + 2) != "(" {
                return None;
            }
            let close = closing(&self.tokens, self.ibis, at + 2)?;
            steps.push((at, at + 1, close));
            at = close + 1;
        }
        // The chain must be the whole statement (only closing parentheses may follow).
        let rest_ok = self.tokens[at..].iter().all(|t| t.kind == Kind::Newline || t.text(self.ibis) == ")");
        (rest_ok && !steps.is_empty()).then_some(steps)
    }

    fn table_references(&self) -> Option<Variant> {
        let (_, root, depth) = self.single_chain()?;
        let table = self.text(root);
        if !self.tables.contains_key(table) {
            return None;
        }
        let steps = self.chain_steps(root, depth)?;
        let mut replacements = Vec::new();
        for (_, name, close) in steps {
            if !matches!(self.text(name), "filter" | "mutate" | "order_by" | "select") {
                break;
            }
            for i in name + 2..close {
                if self.text(i) == "_" && self.text(i + 1) == "." {
                    replacements.push((self.tokens[i].start, self.tokens[i].end, table.to_string()));
                }
            }
            if self.text(name) != "filter" && self.text(name) != "order_by" {
                break;
            }
        }
        (!replacements.is_empty()).then(|| Variant { sql: None, ibis: self.rewrite(&replacements), tables: None })
    }

    fn named_steps(&self, expr_name: &str) -> Option<Variant> {
        let (target, root, depth) = self.single_chain()?;
        if self.text(target) != expr_name {
            return None;
        }
        let steps = self.chain_steps(root, depth)?;
        if steps.len() < 2 {
            return None;
        }
        let mut lines = Vec::new();
        let mut previous = self.text(root).to_string();
        let mut used: BTreeMap<String, usize> = BTreeMap::new();
        for (position, (dot, name, close)) in steps.iter().enumerate() {
            let call = &self.ibis[self.tokens[*dot].start..self.tokens[*close].end];
            let call = dedent_continuation(call);
            if position + 1 == steps.len() {
                lines.push(format!("{expr_name} = {previous}{call}"));
                break;
            }
            let base = step_name(self.text(*name));
            let count = used.entry(base.to_string()).or_default();
            *count += 1;
            let variable = if *count == 1 { base.to_string() } else { format!("{base}_{count}") };
            if self.tables.contains_key(&variable) || self.ibis.contains(&variable) {
                return None;
            }
            lines.push(format!("{variable} = {previous}{call}"));
            previous = variable;
        }
        Some(Variant { sql: None, ibis: lines.join("\n"), tables: None })
    }

    fn rename_table(&self) -> Option<Variant> {
        let (table, _) = self.tables.iter().find(|(name, _)| self.tokens.iter().any(|t| t.kind == Kind::Name && t.text(self.ibis) == name.as_str()))?;
        let renamed = renamed_table(table);
        if self.tables.contains_key(&renamed) || self.is_column(&renamed) || self.is_column(table) {
            return None;
        }
        let replacements: Vec<(usize, usize, String)> =
            self.tokens.iter().filter(|t| t.kind == Kind::Name && t.text(self.ibis) == table.as_str()).map(|t| (t.start, t.end, renamed.clone())).collect();
        let sql = rename_sql_word(self.sql, table, &renamed)?;
        let mut tables = self.tables.clone();
        let schema = tables.remove(table)?;
        tables.insert(renamed, schema);
        Some(Variant { sql: Some(sql), ibis: self.rewrite(&replacements), tables: Some(tables) })
    }

    fn rename_column(&self) -> Option<Variant> {
        let column = (0..self.tokens.len()).filter(|&i| self.is_column_attribute(i)).map(|i| self.text(i).to_string()).next()?;
        let renamed = format!("{column}_value");
        if self.is_column(&renamed) || self.tables.contains_key(&column) || self.ibis.contains(&renamed) {
            return None;
        }
        let replacements: Vec<(usize, usize, String)> = (0..self.tokens.len())
            .filter_map(|i| {
                let token = &self.tokens[i];
                let method = i > 0 && self.text(i - 1) == "." && self.text(i + 1) == "(";
                let named = token.kind == Kind::Name && token.text(self.ibis) == column && !method;
                let quoted = token.kind == Kind::String && string_content(token, self.ibis) == Some(column.as_str());
                if named {
                    Some((token.start, token.end, renamed.clone()))
                } else if quoted {
                    Some((token.start, token.end, token.text(self.ibis).replace(column.as_str(), &renamed)))
                } else {
                    None
                }
            })
            .collect();
        let sql = rename_sql_word(self.sql, &column, &renamed)?;
        let tables = self
            .tables
            .iter()
            .map(|(table, columns)| (table.clone(), columns.iter().map(|(c, t)| (if *c == column { renamed.clone() } else { c.clone() }, t.clone())).collect()))
            .collect();
        Some(Variant { sql: Some(sql), ibis: self.rewrite(&replacements), tables: Some(tables) })
    }

    /// A literal that occurs once in the Ibis and once in the SQL, changed in both.
    fn literal(&self, kind: Kind) -> Option<Variant> {
        let sql_tokens = Tokenizer::new(&DuckDbDialect {}, self.sql).tokenize().ok()?;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (index, token) in self.tokens.iter().enumerate() {
            // A string is data only where it is compared or listed, not an option (`unit="day"`).
            let compared = index > 0 && (is_comparison(self.text(index - 1)) || matches!(self.text(index - 1), "[" | ","));
            if kind == Kind::String && !compared {
                if token.kind == kind
                    && let Some(value) = string_content(token, self.ibis)
                {
                    // Counted, so that a value also used elsewhere is not changed in one place only.
                    *counts.entry(value.to_string()).or_default() += 2;
                }
                continue;
            }
            if token.kind == kind {
                let value = if kind == Kind::String { string_content(token, self.ibis).map(str::to_string) } else { Some(token.text(self.ibis).to_string()) };
                if let Some(value) = value {
                    *counts.entry(value).or_default() += 1;
                }
            }
        }
        let sql_value = |token: &SqlToken| match (token, kind) {
            (SqlToken::Number(text, _), Kind::Number) => Some(text.clone()),
            (SqlToken::SingleQuotedString(text), Kind::String) => Some(text.clone()),
            _ => None,
        };
        let (value, _) = counts
            .iter()
            .find(|(value, n)| **n == 1 && !value.is_empty() && sql_tokens.iter().filter(|t| sql_value(t).as_deref() == Some(value.as_str())).count() == 1)?;
        let changed = match kind {
            Kind::Number => changed_number(value)?,
            _ => format!("{value}_x"),
        };
        let index = self.tokens.iter().position(|t| {
            t.kind == kind && (if kind == Kind::String { string_content(t, self.ibis) == Some(value.as_str()) } else { t.text(self.ibis) == value })
        })?;
        let token = &self.tokens[index];
        let replacement = if kind == Kind::String { token.text(self.ibis).replacen(value.as_str(), &changed, 1) } else { changed.clone() };
        let sql: String = sql_tokens
            .iter()
            .map(|t| match t {
                _ if sql_value(t).as_deref() == Some(value.as_str()) && kind == Kind::Number => changed.clone(),
                _ if sql_value(t).as_deref() == Some(value.as_str()) => format!("'{changed}'"),
                other => other.to_string(),
            })
            .collect();
        Some(Variant { sql: Some(sql), ibis: self.rewrite(&[(token.start, token.end, replacement)]), tables: None })
    }
}

/// `word` renamed to `renamed` wherever it is an unquoted identifier of `sql`; `None` if it
/// does not occur or the SQL does not tokenize.
fn rename_sql_word(sql: &str, word: &str, renamed: &str) -> Option<String> {
    let tokens = Tokenizer::new(&DuckDbDialect {}, sql).tokenize().ok()?;
    let mut found = false;
    let text: String = tokens
        .iter()
        .map(|token| match token {
            SqlToken::Word(Word { value, quote_style: None, .. }) if value.eq_ignore_ascii_case(word) => {
                found = true;
                renamed.to_string()
            }
            other => other.to_string(),
        })
        .collect();
    found.then_some(text)
}

/// Continuation lines of a call taken out of a parenthesized chain keep their relative
/// indentation but lose the chain's.
fn dedent_continuation(call: &str) -> String {
    let mut lines = call.lines();
    let first = lines.next().unwrap_or("").to_string();
    let rest: Vec<&str> = lines.collect();
    let margin = rest.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let closing_margin = rest.last().map_or(0, |l| l.len() - l.trim_start().len());
    let shift = margin.min(closing_margin);
    std::iter::once(first).chain(rest.iter().map(|l| l.get(shift..).unwrap_or(l.trim_start()).to_string())).collect::<Vec<_>>().join("\n")
}

fn step_name(method: &str) -> &'static str {
    match method {
        "filter" => "filtered",
        "group_by" => "grouped",
        "aggregate" | "agg" => "aggregated",
        "select" => "selected",
        "mutate" => "with_columns",
        "order_by" => "ordered",
        "limit" => "limited",
        "distinct" => "distinct_rows",
        m if m.contains("join") => "joined",
        _ => "step",
    }
}

fn renamed_table(table: &str) -> String {
    let synonyms =
        [("orders", "purchases"), ("customers", "clients"), ("employees", "staff"), ("products", "items"), ("events", "activity"), ("users", "accounts")];
    synonyms.iter().find(|(from, _)| *from == table).map_or_else(|| format!("{table}_data"), |(_, to)| to.to_string())
}

fn changed_number(value: &str) -> Option<String> {
    if let Ok(n) = value.parse::<i64>() {
        return Some(if n > 1 { n.checked_mul(2)?.to_string() } else { n.checked_add(1)?.to_string() });
    }
    let x = value.parse::<f64>().ok()?;
    Some(format!("{}", (x * 1.5 * 100.0).round() / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibert_records::{Context, Meta, SqlToIbisInput, SqlToIbisTarget, TableContext};

    fn example(sql: &str, ibis: &str) -> Example {
        let schema: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"id": "int64", "status": "string", "amount": "float64"}"#).unwrap();
        Example {
            id: "t.v".into(),
            payload: Payload::SqlToIbis { input: SqlToIbisInput { sql: sql.into() }, target: SqlToIbisTarget { ibis: ibis.into(), expr_name: "expr".into() } },
            dialect: "duckdb".into(),
            backend: "duckdb".into(),
            ibis_version: String::new(),
            system_prompt: None,
            messages: None,
            context: Context { tables: [("orders".to_string(), TableContext { schema })].into() },
            meta: Meta { template: Some("t".into()), variation: Some("v".into()), source: "template".into(), ..Meta::default() },
            verification: None,
        }
    }

    fn variants(sql: &str, ibis: &str) -> BTreeMap<String, Candidate> {
        augment(&example(sql, ibis)).into_iter().map(|c| (c.id.rsplit('.').next().unwrap().to_string(), c)).collect()
    }

    #[test]
    fn each_kind_rewrites_both_sides_consistently() {
        let sql = "SELECT status, SUM(amount) AS total FROM orders WHERE amount > 100 AND status <> 'void' GROUP BY status";
        let ibis = "expr = orders.filter(_.amount > 100, _.status != \"void\").group_by(\"status\").agg(total=_.amount.sum())";
        let v = variants(sql, ibis);
        assert_eq!(
            v["item_access"].ibis,
            "expr = orders.filter(_[\"amount\"] > 100, _[\"status\"] != \"void\").group_by(\"status\").agg(total=_[\"amount\"].sum())"
        );
        assert_eq!(
            v["table_references"].ibis,
            "expr = orders.filter(orders.amount > 100, orders.status != \"void\").group_by(\"status\").agg(total=_.amount.sum())"
        );
        assert_eq!(
            v["named_steps"].ibis,
            "filtered = orders.filter(_.amount > 100, _.status != \"void\")\ngrouped = filtered.group_by(\"status\")\nexpr = grouped.agg(total=_.amount.sum())"
        );
        assert!(
            v["rename_table"].sql.contains("FROM purchases")
                && v["rename_table"].ibis.starts_with("expr = purchases.filter")
                && v["rename_table"].tables.contains_key("purchases")
        );
        assert!(v["rename_column"].sql.contains("SUM(amount_value)") && v["rename_column"].ibis.contains("_.amount_value > 100"), "{:?}", v["rename_column"]);
        assert!(v["rename_column"].tables["orders"].contains_key("amount_value"));
        assert!(v["numeric_literal"].sql.contains("amount > 200") && v["numeric_literal"].ibis.contains("_.amount > 200"));
        assert!(v["string_literal"].sql.contains("'void_x'") && v["string_literal"].ibis.contains("\"void_x\""));
        assert!(v.values().all(|c| c.features.contains(&"augmented".to_string())));
    }

    #[test]
    fn a_parenthesized_multi_line_chain_becomes_named_steps() {
        let ibis = "expr = (\n    orders.filter(_.amount > 1)\n    .select(\n        \"id\",\n        \"status\",\n    )\n)";
        let v = variants("SELECT id, status FROM orders WHERE amount > 1", ibis);
        assert_eq!(v["named_steps"].ibis, "filtered = orders.filter(_.amount > 1)\nexpr = filtered.select(\n    \"id\",\n    \"status\",\n)");
    }

    #[test]
    fn programs_of_several_statements_keep_their_form() {
        let v = variants("SELECT id FROM orders", "x = orders.filter(_.amount > 1)\nexpr = x.select(\"id\")");
        assert!(!v.contains_key("named_steps") && !v.contains_key("table_references"));
    }
}
