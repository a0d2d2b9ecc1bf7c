//! Mutation operators for the error-resolution task: each breaks a verified Ibis program in one
//! way people get Ibis wrong, and says which real error that should provoke. The oracle then
//! compiles the mutant; only a mutant that fails as expected becomes an example, with the error
//! real Ibis raised.

use ibert_oracle::{FailureKind, ProgramFailure};

use crate::python_tokens::{Kind, Token, closing, is_comparison, splice, string_content, tokenize};

/// Table -> column -> Ibis type.
pub use ibert_oracle::protocol::TableSchemas as Schemas;

/// One broken variant of a program.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutant {
    pub operator: &'static str,
    pub code: String,
    /// Why the program fails and how to fix it, for the example's `explanation`.
    pub explanation: String,
    pub expect: Expectation,
}

/// The failure a mutant must produce to be kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub kind: FailureKind,
    /// Accepted exception class names; empty accepts any.
    pub types: &'static [&'static str],
    /// Text the message must contain.
    pub mentions: Option<String>,
}

impl Expectation {
    fn ibis(types: &'static [&'static str], mentions: Option<String>) -> Expectation {
        Expectation { kind: FailureKind::Ibis, types, mentions }
    }

    pub fn is_met_by(&self, failure: &ProgramFailure) -> bool {
        failure.kind == self.kind
            && (self.types.is_empty() || self.types.contains(&failure.error_type.as_str()))
            && self.mentions.as_ref().is_none_or(|text| failure.message.contains(text.as_str()))
    }
}

/// Every operator, by name, for the statistics and the documentation.
pub const OPERATORS: [&str; 10] = [
    "misspelled_column",
    "misspelled_method",
    "removed_api",
    "python_boolean_operator",
    "c_style_boolean_operator",
    "missing_parentheses",
    "wrong_literal_type",
    "aggregate_wrong_type",
    "parent_table_reference",
    "wrong_join_predicate",
];

/// Methods whose misspelling is a typical error.
const METHODS: [&str; 24] = [
    "filter",
    "select",
    "group_by",
    "aggregate",
    "agg",
    "order_by",
    "mutate",
    "join",
    "left_join",
    "distinct",
    "limit",
    "count",
    "sum",
    "mean",
    "max",
    "min",
    "isin",
    "notin",
    "cast",
    "name",
    "over",
    "desc",
    "nunique",
    "between",
];

/// Names from older Ibis (or from pandas) that Ibis 12 does not have: (current, wrong).
const REMOVED: [(&str, &str); 8] = [
    ("group_by", "groupby"),
    ("order_by", "sort_by"),
    ("rename", "relabel"),
    ("cast", "astype"),
    ("name", "alias"),
    ("length", "len"),
    ("notin", "not_in"),
    ("cases", "case"),
];

/// A verified program and the tables it reads.
pub struct Program<'a> {
    pub code: &'a str,
    pub schemas: &'a Schemas,
    tokens: Vec<Token>,
    /// Picks among several sites, so different programs break in different places.
    seed: u64,
}

impl<'a> Program<'a> {
    pub fn new(code: &'a str, schemas: &'a Schemas, seed: u64) -> Option<Program<'a>> {
        Some(Program { code, schemas, tokens: tokenize(code)?, seed })
    }

    /// Every mutant the operators find a site for (at most one per operator).
    pub fn mutants(&self) -> Vec<Mutant> {
        [
            self.misspelled_column(),
            self.misspelled_method(),
            self.removed_api(),
            self.python_boolean_operator(),
            self.c_style_boolean_operator(),
            self.missing_parentheses(),
            self.wrong_literal_type(),
            self.aggregate_wrong_type(),
            self.parent_table_reference(),
            self.wrong_join_predicate(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn text(&self, index: usize) -> &'a str {
        self.tokens.get(index).map_or("", |t| t.text(self.code))
    }

    fn pick<T>(&self, sites: Vec<T>, operator: &str) -> Option<T> {
        if sites.is_empty() {
            return None;
        }
        let salt = operator.bytes().fold(self.seed, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let index = (salt % sites.len() as u64) as usize;
        sites.into_iter().nth(index)
    }

    fn replace(&self, index: usize, with: &str) -> String {
        let token = &self.tokens[index];
        splice(self.code, token.start, token.end, with)
    }

    /// `word` to put in place of the token at `index`, with spaces where the token touched its
    /// neighbours (`a&b` -> `a and b`).
    fn spaced(&self, index: usize, word: &str) -> String {
        let token = &self.tokens[index];
        let before = self.code[..token.start].chars().next_back().is_some_and(|c| !c.is_whitespace());
        let after = self.code[token.end..].chars().next().is_some_and(|c| !c.is_whitespace());
        format!("{}{word}{}", if before { " " } else { "" }, if after { " " } else { "" })
    }

    fn column_type(&self, column: &str) -> Option<&'a str> {
        self.schemas.values().find_map(|columns| columns.get(column)).and_then(|t| t.as_str())
    }

    /// `.name(` at `index` (the name token).
    fn is_method_call(&self, index: usize) -> bool {
        index > 0 && self.text(index - 1) == "." && self.text(index + 1) == "(" && self.tokens[index].kind == Kind::Name
    }

    fn misspelled_column(&self) -> Option<Mutant> {
        let sites: Vec<(usize, String)> = (1..self.tokens.len())
            .filter(|&i| {
                let token = &self.tokens[i];
                let attribute =
                    token.kind == Kind::Name && self.text(i - 1) == "." && self.text(i + 1) != "(" && i >= 2 && self.tokens[i - 2].kind == Kind::Name;
                let quoted = token.kind == Kind::String && token.depth > 0;
                attribute || quoted
            })
            .filter_map(|i| {
                let name = if self.tokens[i].kind == Kind::String { string_content(&self.tokens[i], self.code)? } else { self.text(i) };
                self.column_type(name).map(|_| (i, name.to_string()))
            })
            .collect();
        let (index, column) = self.pick(sites, "misspelled_column")?;
        let typo = misspell(&column, |candidate| self.column_type(candidate).is_none())?;
        let replacement = if self.tokens[index].kind == Kind::String { self.text(index).replace(column.as_str(), &typo) } else { typo.clone() };
        Some(Mutant {
            operator: "misspelled_column",
            code: self.replace(index, &replacement),
            explanation: format!("There is no column `{typo}`; the column is `{column}`."),
            expect: Expectation::ibis(&["AttributeError", "IbisTypeError"], Some(typo)),
        })
    }

    fn misspelled_method(&self) -> Option<Mutant> {
        let sites: Vec<usize> = (0..self.tokens.len()).filter(|&i| self.is_method_call(i) && METHODS.contains(&self.text(i))).collect();
        let index = self.pick(sites, "misspelled_method")?;
        let method = self.text(index);
        let typo = misspell(method, |candidate| !METHODS.contains(&candidate))?;
        Some(Mutant {
            operator: "misspelled_method",
            code: self.replace(index, &typo),
            explanation: format!("Ibis has no method `{typo}`; the method is `{method}`."),
            expect: Expectation::ibis(&["AttributeError"], Some(typo)),
        })
    }

    fn removed_api(&self) -> Option<Mutant> {
        let sites: Vec<(usize, &str, &str)> = (0..self.tokens.len())
            .filter(|&i| self.is_method_call(i))
            .filter_map(|i| REMOVED.iter().find(|(current, _)| *current == self.text(i)).map(|(current, old)| (i, *current, *old)))
            .collect();
        let (index, current, old) = self.pick(sites, "removed_api")?;
        Some(Mutant {
            operator: "removed_api",
            code: self.replace(index, old),
            explanation: format!("`{old}` is not part of the current Ibis API (it is an older or pandas name); use `{current}`."),
            expect: Expectation::ibis(&["AttributeError"], Some(old.to_string())),
        })
    }

    /// `&` / `|` inside a call (a combined condition).
    fn boolean_sites(&self) -> Vec<usize> {
        (0..self.tokens.len()).filter(|&i| self.tokens[i].depth > 0 && matches!(self.text(i), "&" | "|")).collect()
    }

    fn python_boolean_operator(&self) -> Option<Mutant> {
        let index = self.pick(self.boolean_sites(), "python_boolean_operator")?;
        let (ours, python) = if self.text(index) == "&" { ("&", "and") } else { ("|", "or") };
        Some(Mutant {
            operator: "python_boolean_operator",
            code: self.replace(index, &self.spaced(index, python)),
            explanation: format!(
                "Python's `{python}` asks an Ibis expression for a truth value, which it does not have until it runs; combine conditions with `{ours}` and parenthesize each comparison."
            ),
            expect: Expectation::ibis(&["ValueError", "TypeError"], Some("truth value".to_string())),
        })
    }

    fn c_style_boolean_operator(&self) -> Option<Mutant> {
        let index = self.pick(self.boolean_sites(), "c_style_boolean_operator")?;
        let ours = self.text(index);
        let doubled = format!("{ours}{ours}");
        Some(Mutant {
            operator: "c_style_boolean_operator",
            code: self.replace(index, &doubled),
            explanation: format!("`{doubled}` is not a Python operator; Ibis conditions combine with `{ours}`."),
            expect: Expectation { kind: FailureKind::Syntax, types: &["SyntaxError"], mentions: None },
        })
    }

    /// A `( ... comparison ... )` group (not a call's parentheses) that ends at `close`.
    fn comparison_group(&self, open: usize, close: usize) -> bool {
        let grouping = open == 0 || !(self.tokens[open - 1].kind == Kind::Name || matches!(self.text(open - 1), ")" | "]"));
        let inner = self.tokens[open].depth + 1;
        grouping && (open + 1..close).any(|i| self.tokens[i].depth == inner && is_comparison(self.text(i)))
    }

    fn missing_parentheses(&self) -> Option<Mutant> {
        let mut sites = Vec::new();
        for index in self.boolean_sites() {
            let depth = self.tokens[index].depth;
            // The group to the right: `& ( ... )`.
            if self.text(index + 1) == "("
                && let Some(close) = closing(&self.tokens, self.code, index + 1)
                && self.comparison_group(index + 1, close)
            {
                sites.push((index + 1, close));
            }
            // The group to the left: `( ... ) &`.
            if index > 0 && self.text(index - 1) == ")" {
                let open = (0..index - 1).rev().find(|&i| self.tokens[i].depth == depth && self.text(i) == "(");
                if let Some(open) = open
                    && closing(&self.tokens, self.code, open) == Some(index - 1)
                    && self.comparison_group(open, index - 1)
                {
                    sites.push((open, index - 1));
                }
            }
        }
        let (open, close) = self.pick(sites, "missing_parentheses")?;
        let (open, close) = (&self.tokens[open], &self.tokens[close]);
        let code = format!("{}{}{}", &self.code[..open.start], &self.code[open.end..close.start], &self.code[close.end..]);
        Some(Mutant {
            operator: "missing_parentheses",
            code,
            explanation:
                "`&` and `|` bind tighter than comparisons in Python, so `a > 1 & b < 2` reads as `a > (1 & b) < 2`; put each comparison in parentheses."
                    .to_string(),
            expect: Expectation::ibis(&[], None),
        })
    }

    /// A column compared with a literal of its own type (`_.amount > 100`, `t.status == "x"`),
    /// the literal swapped for one of another type. Only columns whose type the schema gives.
    fn wrong_literal_type(&self) -> Option<Mutant> {
        let sites: Vec<(usize, &str, &str)> = (2..self.tokens.len().saturating_sub(1))
            .filter(|&i| is_comparison(self.text(i)) && self.text(i - 2) == ".")
            .filter_map(|i| {
                let (column, literal) = (self.text(i - 1), &self.tokens[i + 1]);
                let ty = self.column_type(column)?;
                let fits = (literal.kind == Kind::Number && is_numeric(ty))
                    || (literal.kind == Kind::String && ty.trim_start_matches('!') == "string" && string_content(literal, self.code).is_some());
                fits.then_some((i + 1, column, ty))
            })
            .collect();
        let (index, column, ty) = self.pick(sites, "wrong_literal_type")?;
        let literal = &self.tokens[index];
        let text = literal.text(self.code);
        let (replacement, explanation) = if literal.kind == Kind::Number {
            (format!("\"{text}\""), format!("`{column}` is a {ty} column but is compared with the string \"{text}\"; compare with the number {text}."))
        } else {
            ("0".to_string(), format!("`{column}` is a string column but is compared with the number 0; compare with a string such as {text}."))
        };
        Some(Mutant {
            operator: "wrong_literal_type",
            code: self.replace(index, &replacement),
            explanation,
            expect: Expectation::ibis(&["IbisTypeError"], Some("not comparable".to_string())),
        })
    }

    fn aggregate_wrong_type(&self) -> Option<Mutant> {
        let mut sites = Vec::new();
        for i in 1..self.tokens.len().saturating_sub(3) {
            let aggregate = self.text(i + 2);
            if self.text(i - 1) != "." || self.text(i + 1) != "." || !["sum", "mean", "std", "var"].contains(&aggregate) || self.text(i + 3) != "(" {
                continue;
            }
            let column = self.text(i);
            let Some(columns) = self.schemas.values().find(|columns| columns.contains_key(column)) else { continue };
            if !columns.get(column).and_then(|t| t.as_str()).is_some_and(is_numeric) {
                continue;
            }
            if let Some((text_column, _)) = columns.iter().find(|(_, ty)| ty.as_str() == Some("string")) {
                sites.push((i, column.to_string(), text_column.clone(), aggregate));
            }
        }
        let (index, column, text_column, aggregate) = self.pick(sites, "aggregate_wrong_type")?;
        Some(Mutant {
            operator: "aggregate_wrong_type",
            code: self.replace(index, &text_column),
            explanation: format!("`{text_column}` is a string column, which has no `{aggregate}`; aggregate a numeric column such as `{column}`."),
            expect: Expectation::ibis(&["AttributeError"], Some(format!("'{aggregate}'"))),
        })
    }

    /// `_` used after a step that makes a new table (`aggregate`, `agg`, `select`), replaced by
    /// the name of the table the chain started from.
    fn parent_table_reference(&self) -> Option<Mutant> {
        let mut sites = Vec::new();
        for start in 0..self.tokens.len().saturating_sub(2) {
            // `name = [(] root .`
            if self.text(start + 1) != "=" || self.tokens[start].kind != Kind::Name || self.tokens[start].depth != 0 {
                continue;
            }
            let mut root = start + 2;
            while self.text(root) == "(" {
                root += 1;
            }
            if self.tokens.get(root).is_none_or(|t| t.kind != Kind::Name) || self.text(root + 1) != "." {
                continue;
            }
            let depth = self.tokens[root].depth;
            let end = (root..self.tokens.len()).find(|&i| self.tokens[i].kind == Kind::Newline).unwrap_or(self.tokens.len());
            let step = (root..end).find(|&i| self.tokens[i].depth == depth && self.is_method_call(i) && matches!(self.text(i), "aggregate" | "agg" | "select"));
            let Some(step) = step else { continue };
            let Some(step_close) = closing(&self.tokens, self.code, step + 1) else { continue };
            for i in step_close + 1..end {
                if self.text(i) == "_" && self.text(i + 1) == "." && self.tokens[i].depth > depth {
                    sites.push((i, root, step));
                }
            }
        }
        let (index, root, step) = self.pick(sites, "parent_table_reference")?;
        let (root, step) = (self.text(root), self.text(step));
        Some(Mutant {
            operator: "parent_table_reference",
            code: self.replace(index, root),
            explanation: format!(
                "After `.{step}(...)` the expression is a new table; `{root}` still names the table before that step. Refer to the new table's columns with `_`."
            ),
            expect: Expectation::ibis(&["AttributeError", "IntegrityError", "IbisTypeError", "RelationError"], None),
        })
    }

    fn wrong_join_predicate(&self) -> Option<Mutant> {
        let mut sites = Vec::new();
        for call in (0..self.tokens.len()).filter(|&i| self.is_method_call(i) && self.text(i).ends_with("join")) {
            let Some(close) = closing(&self.tokens, self.code, call + 1) else { continue };
            for i in call + 2..close.saturating_sub(3) {
                // `== table . column`
                let (table, column) = (self.text(i + 1), self.text(i + 3));
                if self.text(i) != "==" || self.text(i + 2) != "." {
                    continue;
                }
                let Some(columns) = self.schemas.get(table) else { continue };
                let Some(key_type) = columns.get(column).and_then(|t| t.as_str()) else { continue };
                let other = columns.iter().find(|(name, ty)| ty.as_str().is_some_and(|ty| is_numeric(ty) != is_numeric(key_type) && !name.is_empty()));
                if let Some((other, other_type)) = other {
                    sites.push((i + 3, format!("{table}.{column}"), other.clone(), other_type.as_str().unwrap_or("").to_string()));
                }
            }
        }
        let (index, key, other, other_type) = self.pick(sites, "wrong_join_predicate")?;
        let table = key.split('.').next().unwrap_or("").to_string();
        Some(Mutant {
            operator: "wrong_join_predicate",
            code: self.replace(index, &other),
            explanation: format!("The join compares its key with `{table}.{other}` ({other_type}), which cannot match it; join on `{key}`."),
            expect: Expectation::ibis(&["IbisTypeError"], Some("not comparable".to_string())),
        })
    }
}

fn is_numeric(ibis_type: &str) -> bool {
    let ty = ibis_type.trim_start_matches('!');
    ["int", "uint", "float", "decimal"].iter().any(|prefix| ty.starts_with(prefix))
}

/// A plausible typo of `name` (a letter dropped, or doubled for short names) that `accept` takes.
fn misspell(name: &str, accept: impl Fn(&str) -> bool) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut candidates = Vec::new();
    if chars.len() >= 4 {
        for drop in [chars.len() / 2, chars.len() - 2, 1] {
            candidates.push(chars.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, c)| *c).collect::<String>());
        }
    }
    candidates.push(format!("{name}{}", chars.last()?));
    candidates.into_iter().find(|candidate| candidate != name && accept(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        serde_json::from_str(
            r#"{"orders": {"id": "int64", "customer_id": "int64", "status": "string", "amount": "float64"},
                "customers": {"id": "int64", "name": "string"}}"#,
        )
        .unwrap()
    }

    fn mutant(code: &str, operator: &str) -> Option<Mutant> {
        let schemas = schemas();
        Program::new(code, &schemas, 0).unwrap().mutants().into_iter().find(|m| m.operator == operator)
    }

    #[test]
    fn each_operator_breaks_the_program_where_it_applies() {
        let code = "expr = orders.filter((orders.amount > 10) & (orders.status == \"paid\")).group_by(\"status\").agg(total=_.amount.sum()).order_by(_.total)";
        let broken = |operator| mutant(code, operator).unwrap_or_else(|| panic!("{operator} applies")).code;
        let typo = mutant(code, "misspelled_column").unwrap();
        let misspelled = typo.expect.mentions.clone().unwrap();
        assert!(typo.code.contains(misspelled.as_str()) && !code.contains(misspelled.as_str()), "{}", typo.code);
        assert!(broken("python_boolean_operator").contains("(orders.amount > 10) and (orders.status"), "{}", broken("python_boolean_operator"));
        assert!(broken("c_style_boolean_operator").contains("&&"));
        let unparenthesized = broken("missing_parentheses");
        assert!(unparenthesized.contains("orders.amount > 10 & (") || unparenthesized.contains("& orders.status == \"paid\")"), "{unparenthesized}");
        let literal = mutant(code, "wrong_literal_type").unwrap();
        assert!(literal.code.contains("> \"10\"") || literal.code.contains("== 0"), "{}", literal.code);
        assert!(
            literal.explanation.starts_with("`amount` is a float64 column") || literal.explanation.starts_with("`status` is a string column"),
            "{}",
            literal.explanation
        );
        assert_eq!(broken("aggregate_wrong_type"), code.replace("_.amount.sum()", "_.status.sum()"));
        assert_eq!(broken("parent_table_reference"), code.replace("order_by(_.total)", "order_by(orders.total)"));
        assert!(broken("removed_api").contains(".groupby(") || broken("removed_api").contains(".sort_by("));
    }

    #[test]
    fn python_operators_get_spaces_where_the_symbol_had_none() {
        assert_eq!(
            mutant("expr = orders.filter((orders.id > 1)&(orders.amount < 2))", "python_boolean_operator").unwrap().code,
            "expr = orders.filter((orders.id > 1) and (orders.amount < 2))"
        );
    }

    #[test]
    fn a_join_key_is_swapped_for_a_column_of_another_type() {
        let code = "expr = orders.join(customers, orders.customer_id == customers.id)";
        let m = mutant(code, "wrong_join_predicate").unwrap();
        assert_eq!(m.code, "expr = orders.join(customers, orders.customer_id == customers.name)");
        assert!(m.explanation.contains("customers.id"));
    }

    #[test]
    fn operators_without_a_site_produce_nothing() {
        assert!(mutant("expr = orders.select(\"id\")", "python_boolean_operator").is_none());
        assert!(mutant("expr = orders.select(\"id\")", "wrong_join_predicate").is_none());
        assert!(mutant("expr = orders.count()", "parent_table_reference").is_none());
    }

    #[test]
    fn expectations_check_kind_type_and_message() {
        let failure = |kind, error_type: &str, message: &str| ProgramFailure { kind, error_type: error_type.into(), message: message.into(), line: None };
        let expect = Expectation::ibis(&["AttributeError"], Some("amout".into()));
        assert!(expect.is_met_by(&failure(FailureKind::Ibis, "AttributeError", "'Table' object has no attribute 'amout'")));
        assert!(!expect.is_met_by(&failure(FailureKind::Ibis, "AttributeError", "no attribute 'other'")));
        assert!(!expect.is_met_by(&failure(FailureKind::Sandbox, "AttributeError", "amout")));
    }
}
