//! Train, validation and test splits by structure, never by row: records that share a structure
//! key (their template, or the shape of their SQL or Ibis code with literals and names
//! abstracted) and records derived from one another land in the same split, so no test record
//! shares its structure with a train record, and a model is measured on structures it never saw.

use std::collections::{BTreeMap, HashMap};

use ibert_records::{Example, Payload};
use sha2::{Digest, Sha256};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::python_tokens::{self, Kind};

pub const TRAIN: &str = "train";
pub const VALIDATION: &str = "validation";
pub const TEST: &str = "test";
/// Every split, in the order they are written.
pub const SPLITS: [&str; 3] = [TRAIN, VALIDATION, TEST];

/// Percent of structure groups in validation and in test; the rest is train.
const VALIDATION_PERCENT: u64 = 10;
const TEST_PERCENT: u64 = 10;

/// The structure keys of a record: `template:<name>` for a templated record, `sql:<shape>` and
/// `ibis:<shape>` for its SQL and Ibis code.
pub fn structure_keys(example: &Example) -> Vec<String> {
    let mut keys = Vec::new();
    if example.meta.source == "template"
        && let Some(template) = &example.meta.template
    {
        keys.push(format!("template:{template}"));
    }
    let (sql, code): (Option<&str>, Option<&str>) = match &example.payload {
        Payload::SqlToIbis { input, target } => (Some(&input.sql), Some(&target.ibis)),
        Payload::IbisToSql { input, target } => (Some(&target.sql), Some(&input.ibis)),
        Payload::CodeCompletion { target, .. } => (None, Some(&target.completed_code)),
        Payload::ErrorResolution { target, .. } => (None, Some(&target.fixed_code)),
        Payload::Qa { target, .. } => (None, target.code_example.as_deref()),
        Payload::Documentation { input, .. } => (None, Some(&input.code)),
    };
    if let Some(shape) = sql.and_then(sql_shape) {
        keys.push(format!("sql:{shape}"));
    }
    if let Some(shape) = code.and_then(ibis_shape) {
        keys.push(format!("ibis:{shape}"));
    }
    keys
}

/// The keywords that make a query's structure; any other word is a name (sqlparser counts
/// many column-like words such as `name` or `id` as keywords too).
const STRUCTURAL: &[Keyword] = &[
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::JOIN,
    Keyword::ON,
    Keyword::GROUP,
    Keyword::BY,
    Keyword::ORDER,
    Keyword::HAVING,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::AS,
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::IN,
    Keyword::IS,
    Keyword::NULL,
    Keyword::CASE,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::END,
    Keyword::DISTINCT,
    Keyword::UNION,
    Keyword::INTERSECT,
    Keyword::EXCEPT,
    Keyword::ALL,
    Keyword::LEFT,
    Keyword::RIGHT,
    Keyword::FULL,
    Keyword::INNER,
    Keyword::OUTER,
    Keyword::CROSS,
    Keyword::WITH,
    Keyword::OVER,
    Keyword::PARTITION,
    Keyword::ROWS,
    Keyword::RANGE,
    Keyword::BETWEEN,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::EXISTS,
    Keyword::ASC,
    Keyword::DESC,
    Keyword::NULLS,
    Keyword::FIRST,
    Keyword::LAST,
    Keyword::FILTER,
    Keyword::QUALIFY,
    Keyword::WINDOW,
    Keyword::PRECEDING,
    Keyword::FOLLOWING,
    Keyword::UNBOUNDED,
    Keyword::CURRENT,
    Keyword::ROW,
    Keyword::INTERVAL,
    Keyword::CAST,
    Keyword::SEMI,
    Keyword::ANTI,
    Keyword::USING,
    Keyword::LATERAL,
    Keyword::VALUES,
    Keyword::PIVOT,
    Keyword::UNNEST,
    Keyword::TRUE,
    Keyword::FALSE,
    Keyword::ANY,
    Keyword::SOME,
    Keyword::ROLLUP,
    Keyword::CUBE,
    Keyword::GROUPING,
];

/// The SQL's tokens with every literal as `?` and every name as `_`; structural keywords,
/// function names and punctuation stay. `None` when it does not tokenize.
pub fn sql_shape(sql: &str) -> Option<String> {
    let tokens: Vec<Token> = Tokenizer::new(&DuckDbDialect {}, sql).tokenize().ok()?.into_iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let mut shape = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let text = match token {
            Token::Word(word) if word.quote_style.is_none() && (STRUCTURAL.contains(&word.keyword) || tokens.get(index + 1) == Some(&Token::LParen)) => {
                word.value.to_ascii_uppercase()
            }
            Token::Word(_) => "_".to_string(),
            Token::Number(..) | Token::SingleQuotedString(_) | Token::DoubleQuotedString(_) | Token::NationalStringLiteral(_) | Token::HexStringLiteral(_) => {
                "?".to_string()
            }
            other => other.to_string(),
        };
        shape.push(text);
    }
    (!shape.is_empty()).then(|| shape.join(" "))
}

/// The Ibis code's tokens with every literal as `?`, and every name as `_` except method names
/// (a name after `.` and before `(`), `ibis` and Python's own words: the chain of operations is
/// the structure; tables, columns and values are not.
pub fn ibis_shape(code: &str) -> Option<String> {
    const KEPT: [&str; 11] = ["ibis", "lambda", "and", "or", "not", "in", "is", "None", "True", "False", "import"];
    let tokens = python_tokens::tokenize(code)?;
    let mut shape = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let text = token.text(code);
        let piece = match token.kind {
            Kind::Number | Kind::String => "?".to_string(),
            Kind::Name => {
                let after_dot = index > 0 && tokens[index - 1].text(code) == ".";
                let before_call = tokens.get(index + 1).is_some_and(|next| next.text(code) == "(");
                if (after_dot && before_call) || KEPT.contains(&text) { text.to_string() } else { "_".to_string() }
            }
            Kind::Op => text.to_string(),
            Kind::Newline => ";".to_string(),
        };
        shape.push(piece);
    }
    (!shape.is_empty()).then(|| shape.join(" "))
}

/// Gives every record its `meta.split`. Records that share a structure key, or that derive from
/// one another (`meta.derived_from`), form one group, and a group goes whole to one split, chosen
/// by a hash of its smallest key (so the assignment does not depend on record order).
pub fn assign_splits(examples: &mut [Example]) {
    let mut sets = DisjointSets::default();
    let by_id: HashMap<String, usize> = examples.iter().enumerate().map(|(index, example)| (example.id.clone(), index)).collect();
    let mut keys_of: Vec<Vec<String>> = Vec::with_capacity(examples.len());
    for (index, example) in examples.iter().enumerate() {
        let record = sets.node(&format!("record:{index}"));
        let mut keys = structure_keys(example);
        // A record derived from one that is not in this set still stays with its siblings.
        if let Some(origin) = &example.meta.derived_from {
            match by_id.get(origin) {
                Some(parent) => {
                    let parent = sets.node(&format!("record:{parent}"));
                    sets.union(record, parent);
                }
                None => keys.push(format!("origin:{origin}")),
            }
        }
        if keys.is_empty() {
            keys.push(format!("id:{}", example.id));
        }
        for key in &keys {
            let node = sets.node(key);
            sets.union(record, node);
        }
        keys_of.push(keys);
    }
    // The smallest key of each group names it.
    let mut group_name: BTreeMap<usize, String> = BTreeMap::new();
    for keys in &keys_of {
        for key in keys {
            let node = sets.node(key);
            let root = sets.find(node);
            let name = group_name.entry(root).or_insert_with(|| key.clone());
            if key < name {
                *name = key.clone();
            }
        }
    }
    for (index, example) in examples.iter_mut().enumerate() {
        let node = sets.node(&format!("record:{index}"));
        let root = sets.find(node);
        example.meta.split = Some(split_of(&group_name[&root]).to_string());
    }
}

/// The split of a group, by a hash of its name.
fn split_of(name: &str) -> &'static str {
    let digest = Sha256::digest(name.as_bytes());
    let bucket = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % 100;
    if bucket < TEST_PERCENT {
        TEST
    } else if bucket < TEST_PERCENT + VALIDATION_PERCENT {
        VALIDATION
    } else {
        TRAIN
    }
}

/// Union-find over named nodes.
#[derive(Default)]
struct DisjointSets {
    index: HashMap<String, usize>,
    parent: Vec<usize>,
}

impl DisjointSets {
    fn node(&mut self, name: &str) -> usize {
        if let Some(&node) = self.index.get(name) {
            return node;
        }
        let node = self.parent.len();
        self.parent.push(node);
        self.index.insert(name.to_string(), node);
        node
    }

    fn find(&mut self, mut node: usize) -> usize {
        while self.parent[node] != node {
            self.parent[node] = self.parent[self.parent[node]];
            node = self.parent[node];
        }
        node
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, sql: &str, ibis: &str, template: Option<&str>, derived_from: Option<&str>) -> Example {
        let mut example: Example = serde_json::from_value(serde_json::json!({
            "id": id, "task": "sql_to_ibis", "input": {"sql": sql}, "target": {"ibis": ibis}
        }))
        .unwrap();
        example.meta.source = if template.is_some() { "template".into() } else { "transpiler".into() };
        example.meta.template = template.map(str::to_string);
        example.meta.derived_from = derived_from.map(str::to_string);
        example
    }

    #[test]
    fn shapes_abstract_literals_and_names_but_keep_the_operations() {
        assert_eq!(sql_shape("SELECT id FROM orders WHERE amount > 10"), sql_shape("select name from people where age > 99"));
        assert_ne!(sql_shape("SELECT id FROM orders WHERE amount > 10"), sql_shape("SELECT id FROM orders WHERE amount > 10 ORDER BY id"));
        assert_eq!(ibis_shape("expr = orders.filter(orders.amount > 10)"), ibis_shape("expr = people.filter(people.age > 99)"));
        assert_ne!(ibis_shape("expr = orders.filter(_.amount > 10)"), ibis_shape("expr = orders.group_by('x').agg(n=_.count())"));
    }

    #[test]
    fn records_sharing_a_structure_or_an_origin_share_a_split() {
        let mut examples = vec![
            record("a", "SELECT id FROM orders WHERE amount > 10", "expr = orders.filter(orders.amount > 10).select('id')", None, None),
            record("b", "SELECT name FROM people WHERE age > 99", "expr = people.filter(people.age > 99).select('name')", None, None),
            record("c", "SELECT COUNT(*) FROM t GROUP BY k HAVING COUNT(*) > 1", "expr = t.group_by('k').agg(n=_.count()).filter(_.n > 1)", None, Some("a")),
            record("d", "SELECT k, SUM(v) FROM t GROUP BY k", "expr = t.group_by('k').agg(s=_.v.sum())", Some("sums"), None),
            record("e", "SELECT k, MAX(v) FROM t GROUP BY k ORDER BY k", "expr = t.group_by('k').agg(m=_.v.max()).order_by('k')", Some("sums"), None),
        ];
        assign_splits(&mut examples);
        let split = |id: &str| examples.iter().find(|e| e.id == id).unwrap().meta.split.clone().unwrap();
        assert_eq!(split("a"), split("b"), "same shape");
        assert_eq!(split("a"), split("c"), "derived from a");
        assert_eq!(split("d"), split("e"), "same template");
        // The property itself: no key is in two splits.
        let mut split_of_key: HashMap<String, String> = HashMap::new();
        for example in &examples {
            for key in structure_keys(example) {
                let split = example.meta.split.clone().unwrap();
                assert_eq!(split_of_key.entry(key).or_insert_with(|| split.clone()), &split);
            }
        }
    }

    #[test]
    fn splits_do_not_depend_on_record_order() {
        let make = || {
            (0..40)
                .map(|i| record(&format!("r{i}"), &format!("SELECT c{i} FROM t{} WHERE x = {i}", "x".repeat(i % 7)), &"expr = t".repeat(1 + i % 5), None, None))
                .collect::<Vec<_>>()
        };
        let mut forward = make();
        let mut backward = make();
        backward.reverse();
        assign_splits(&mut forward);
        assign_splits(&mut backward);
        for example in &forward {
            let other = backward.iter().find(|e| e.id == example.id).unwrap();
            assert_eq!(example.meta.split, other.meta.split);
        }
    }
}
