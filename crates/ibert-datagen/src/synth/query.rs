//! Seeded SQL queries over a synthesized schema, drawn from the grammar the transpiler
//! supports: a query shape (rows, groups, windows, distinct values, top rows per group), joins
//! along foreign keys, predicates of every kind, computed columns, and wrappers (a CTE, a set
//! operation). Each feature is drawn with its weight ([`Weights`]), and the difficulty sets how
//! many are combined.
//!
//! Queries are written so that their result does not depend on storage order where that would
//! make them unverifiable: a LIMIT comes after an ORDER BY over every output column (or every
//! group key), and ranking windows use RANK / DENSE_RANK, which give ties one value.

use std::collections::BTreeSet;

use ibert_verify::rng::Rng;

use super::schema::{ColumnKind, SynthColumn, SynthSchema};
use super::weights::{Feature, Weights};

/// A query and the features it was drawn with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthQuery {
    pub sql: String,
    pub features: Vec<String>,
    /// `easy` (difficulty 1-2), `medium` (3) or `hard` (4-5), as the templates rate theirs.
    pub difficulty: &'static str,
}

/// One query over `schema`. `difficulty` (1-5) is how many optional parts are combined.
pub fn synth_query(schema: &SynthSchema, weights: &Weights, difficulty: u8, rng: &mut Rng) -> SynthQuery {
    let difficulty = difficulty.clamp(1, 5);
    let mut drawer = Drawer { weights, difficulty, rng, used: BTreeSet::new() };
    let sql = drawer.query(schema);
    let label = match difficulty {
        1 | 2 => "easy",
        3 => "medium",
        _ => "hard",
    };
    SynthQuery { sql, features: drawer.used.iter().map(|f| f.name().to_string()).collect(), difficulty: label }
}

struct Drawer<'a> {
    weights: &'a Weights,
    difficulty: u8,
    rng: &'a mut Rng,
    used: BTreeSet<Feature>,
}

/// A table in a FROM clause.
struct Source<'s> {
    table: usize,
    alias: String,
    schema: &'s SynthSchema,
}

/// A column of a source.
#[derive(Clone, Copy)]
struct ColumnRef<'s> {
    source: usize,
    column: &'s SynthColumn,
}

/// A SELECT item: its SQL, its output name, and what it holds.
struct Item {
    sql: String,
    name: String,
    kind: ColumnKind,
}

impl Item {
    fn rendered(&self) -> String {
        if self.sql == self.name || self.sql.ends_with(&format!(".{}", self.name)) { self.sql.clone() } else { format!("{} AS {}", self.sql, self.name) }
    }
}

struct Scope<'s> {
    sources: Vec<Source<'s>>,
    /// Whether names are qualified with the source's alias (more than one source).
    qualified: bool,
}

impl<'s> Scope<'s> {
    fn reference(&self, column: ColumnRef) -> String {
        if self.qualified { format!("{}.{}", self.sources[column.source].alias, column.column.name) } else { column.column.name.clone() }
    }

    fn columns(&self, keep: impl Fn(ColumnKind) -> bool) -> Vec<ColumnRef<'s>> {
        let mut out = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            for column in &source.schema.tables[source.table].columns {
                if keep(column.kind) {
                    out.push(ColumnRef { source: index, column });
                }
            }
        }
        out
    }

    fn render_from(&self, joins: &[String]) -> String {
        let first = &self.sources[0];
        let name = &first.schema.tables[first.table].name;
        let mut text = if self.qualified { format!("FROM {name} AS {}", first.alias) } else { format!("FROM {name}") };
        for join in joins {
            text.push('\n');
            text.push_str(join);
        }
        text
    }
}

impl<'a> Drawer<'a> {
    /// Whether to use `feature` (recorded as used): see [`Drawer::draws`].
    fn wants(&mut self, feature: Feature) -> bool {
        let yes = self.draws(feature);
        if yes {
            self.used.insert(feature);
        }
        yes
    }

    /// Whether `feature` is drawn: its weight times a base chance that grows with difficulty.
    /// Not recorded; the caller records it once the SQL has it.
    fn draws(&mut self, feature: Feature) -> bool {
        let chance = (self.weights.get(feature) * feature.base_percent() * (0.6 + 0.2 * f64::from(self.difficulty))).min(95.0);
        (self.rng.next_u64() % 10_000) as f64 / 100.0 < chance
    }

    /// `part`, with the features it records kept only when it gives something: a draft that is
    /// dropped leaves no feature behind.
    fn attempt<T>(&mut self, part: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let before = self.used.clone();
        let made = part(self);
        if made.is_none() {
            self.used = before;
        }
        made
    }

    fn query(&mut self, schema: &SynthSchema) -> String {
        if self.wants(Feature::Cte) && schema.tables.iter().any(|t| t.foreign_keys().next().is_some()) {
            return self.cte_query(schema);
        }
        if self.wants(Feature::SetOperation) {
            return self.set_operation(schema);
        }
        self.select(schema, None)
    }

    /// A SELECT of some shape, its base table `table` or a random one.
    fn select(&mut self, schema: &SynthSchema, table: Option<usize>) -> String {
        let table = table.unwrap_or_else(|| self.rng.range(0, schema.tables.len() as i64 - 1) as usize);
        let (scope, joins) = self.joined_sources(schema, table);
        let mut conditions = self.predicates(&scope);
        conditions.extend(self.subquery_predicate(schema, &scope));
        let shape = self.rng.range(0, 99);
        if shape < 40 && self.wants(Feature::GroupBy) {
            self.aggregate(&scope, &joins, &conditions)
        } else if shape < 60 && self.wants(Feature::Window) {
            self.windowed(&scope, &joins, &conditions)
        } else if shape < 68 && self.wants(Feature::Distinct) {
            self.distinct(&scope, &joins, &conditions)
        } else {
            self.projection(&scope, &joins, &conditions)
        }
    }

    /// The base table and up to `difficulty - 1` joins along foreign keys, in either direction.
    fn joined_sources<'s>(&mut self, schema: &'s SynthSchema, table: usize) -> (Scope<'s>, Vec<String>) {
        let mut sources = vec![Source { table, alias: alias_of(&schema.tables[table].name, &[]), schema }];
        let mut joins = Vec::new();
        for _ in 0..self.difficulty.saturating_sub(1).min(3) {
            if !joins.is_empty() && !self.draws(Feature::MultiJoin) {
                break;
            }
            let inner = self.draws(Feature::InnerJoin);
            let left = !inner && self.draws(Feature::LeftJoin);
            if !inner && !left {
                break;
            }
            let Some((from, from_column, to, to_column)) = self.join_edge(schema, &sources) else { break };
            self.used.insert(if inner { Feature::InnerJoin } else { Feature::LeftJoin });
            if !joins.is_empty() {
                self.used.insert(Feature::MultiJoin);
            }
            let taken: Vec<String> = sources.iter().map(|s| s.alias.clone()).collect();
            let alias = alias_of(&schema.tables[to].name, &taken);
            let keyword = if inner { "JOIN" } else { "LEFT JOIN" };
            joins.push(format!("{keyword} {} AS {alias} ON {alias}.{to_column} = {}.{from_column}", schema.tables[to].name, sources[from].alias));
            sources.push(Source { table: to, alias, schema });
        }
        let qualified = sources.len() > 1;
        (Scope { sources, qualified }, joins)
    }

    /// An edge from a source in scope to a table not yet joined: (source, its column, table,
    /// the table's column).
    fn join_edge(&mut self, schema: &SynthSchema, sources: &[Source]) -> Option<(usize, String, usize, String)> {
        let joined: Vec<usize> = sources.iter().map(|s| s.table).collect();
        let mut edges = Vec::new();
        for (index, source) in sources.iter().enumerate() {
            for (column, parent) in schema.tables[source.table].foreign_keys() {
                if !joined.contains(&parent) {
                    edges.push((index, column.name.clone(), parent, "id".to_string()));
                }
            }
            for (child, table) in schema.tables.iter().enumerate() {
                if joined.contains(&child) {
                    continue;
                }
                for (column, parent) in table.foreign_keys() {
                    if parent == source.table {
                        edges.push((index, "id".to_string(), child, column.name.clone()));
                    }
                }
            }
        }
        self.rng.pick_option(&edges).cloned()
    }

    /// WHERE conditions: up to `difficulty` simple predicates, some joined by OR.
    fn predicates(&mut self, scope: &Scope) -> Vec<String> {
        let mut conditions = Vec::new();
        // Each column is constrained once: two conditions on one column often contradict.
        let mut taken = Vec::new();
        for _ in 0..self.difficulty.min(3) {
            if !self.wants(Feature::Filter) {
                break;
            }
            let Some(predicate) = self.attempt(|drawer| drawer.predicate_avoiding(scope, &mut taken)) else { break };
            if !conditions.is_empty() && self.wants(Feature::OrCondition) {
                let previous: String = conditions.pop().expect("one condition");
                conditions.push(format!("({previous} OR {predicate})"));
            } else {
                conditions.push(predicate);
            }
        }
        conditions
    }

    /// Whether list and struct columns may be used (their weight is not 0).
    fn nested_allowed(&self, kind: ColumnKind) -> bool {
        match kind {
            ColumnKind::StringList | ColumnKind::IntList => self.weights.get(Feature::Array) > 0.0,
            ColumnKind::Struct => self.weights.get(Feature::Struct) > 0.0,
            _ => true,
        }
    }

    fn predicate(&mut self, scope: &Scope) -> Option<String> {
        self.predicate_avoiding(scope, &mut Vec::new())
    }

    /// A predicate on a column not in `taken` (references), which it joins.
    fn predicate_avoiding(&mut self, scope: &Scope, taken: &mut Vec<String>) -> Option<String> {
        let columns: Vec<ColumnRef> = scope
            .columns(|kind| !matches!(kind, ColumnKind::Key | ColumnKind::ForeignKey { .. } | ColumnKind::IntList))
            .into_iter()
            .filter(|c| self.nested_allowed(c.column.kind) && !taken.contains(&scope.reference(*c)))
            .collect();
        let column = *self.rng.pick_option(&columns)?;
        let name = scope.reference(column);
        taken.push(name.clone());
        if self.rng.chance(50) && self.wants(Feature::NullHandling) {
            return Some(format!("{name} IS {}NULL", if self.rng.chance(60) { "NOT " } else { "" }));
        }
        Some(match column.column.kind {
            ColumnKind::Count | ColumnKind::Measure | ColumnKind::Money => {
                let kind = column.column.kind;
                if self.wants(Feature::Between) {
                    let (low, high) = (self.number(kind, column.column), self.number(kind, column.column));
                    let (low, high) = if low.parse::<f64>().unwrap_or(0.0) <= high.parse::<f64>().unwrap_or(0.0) { (low, high) } else { (high, low) };
                    format!("{name} BETWEEN {low} AND {high}")
                } else {
                    let op = *self.rng.pick(&[">", ">=", "<", "<=", "=", "<>"]);
                    format!("{name} {op} {}", self.number(kind, column.column))
                }
            }
            ColumnKind::Category | ColumnKind::Text => {
                if self.wants(Feature::InList) {
                    let values: Vec<String> = (0..self.rng.range(2, 3)).map(|_| quoted(self.word())).collect();
                    format!("{name} {}IN ({})", if self.rng.chance(20) { "NOT " } else { "" }, values.join(", "))
                } else if self.wants(Feature::Like) {
                    let word = self.word();
                    let pattern = if self.rng.chance(50) { format!("{}%", &word[..word.len().min(2)]) } else { format!("%{}%", &word[..word.len().min(3)]) };
                    format!("{name} LIKE {}", quoted(&pattern))
                } else if self.wants(Feature::StringFunction) {
                    // The literal is one the function can return.
                    let word = self.word();
                    let (function, literal) = match self.rng.range(0, 2) {
                        0 => ("LOWER", word.to_lowercase()),
                        1 => ("UPPER", word.to_uppercase()),
                        _ => ("TRIM", word.to_string()),
                    };
                    format!("{function}({name}) = {}", quoted(&literal))
                } else {
                    format!("{name} {} {}", self.rng.pick(&["=", "<>"]), quoted(self.word()))
                }
            }
            ColumnKind::Flag => {
                if self.rng.chance(50) {
                    name
                } else {
                    format!("NOT {name}")
                }
            }
            ColumnKind::Date => {
                self.used.insert(Feature::Date);
                let op = *self.rng.pick(&[">=", "<", "<="]);
                format!("{name} {op} DATE '{}'", self.date())
            }
            ColumnKind::Timestamp => {
                self.used.insert(Feature::Date);
                let op = *self.rng.pick(&[">=", "<"]);
                format!("{name} {op} TIMESTAMP '{} {:02}:{:02}:00'", self.date(), self.rng.range(0, 23), self.rng.range(0, 59))
            }
            ColumnKind::StringList => {
                self.used.insert(Feature::Array);
                if self.rng.chance(50) { format!("list_contains({name}, {})", quoted(self.word())) } else { format!("len({name}) >= {}", self.rng.range(1, 2)) }
            }
            ColumnKind::Struct => {
                self.used.insert(Feature::Struct);
                format!("{name}.{} = {}", column.column.fields[0].0, quoted(self.word()))
            }
            ColumnKind::Key | ColumnKind::ForeignKey { .. } | ColumnKind::IntList => unreachable!("filtered out above"),
        })
    }

    /// A predicate with a subquery over another table: IN, EXISTS or a scalar comparison.
    fn subquery_predicate(&mut self, schema: &SynthSchema, scope: &Scope) -> Option<String> {
        let base = &scope.sources[0];
        let table = &schema.tables[base.table];
        let base_ref = |column: &str| if scope.qualified { format!("{}.{column}", base.alias) } else { column.to_string() };
        if let Some((column, parent)) = table.foreign_keys().next()
            && self.wants(Feature::InSubquery)
        {
            let parent_table = &schema.tables[parent];
            let condition = self.single_table_predicate(schema, parent).unwrap_or_else(|| "id IS NOT NULL".to_string());
            return Some(format!("{} IN (SELECT id FROM {} WHERE {condition})", base_ref(&column.name), parent_table.name));
        }
        let child = schema
            .tables
            .iter()
            .enumerate()
            .find_map(|(index, t)| t.foreign_keys().find(|(_, parent)| *parent == base.table).map(|(c, _)| (index, c.name.clone())));
        if let Some((child, column)) = child
            && self.wants(Feature::ExistsSubquery)
        {
            let child_name = &schema.tables[child].name;
            let taken: Vec<String> = scope.sources.iter().map(|s| s.alias.clone()).collect();
            let alias = alias_of(child_name, &taken);
            // NOT EXISTS over a table the query joins on the same key would select nothing.
            let joined = scope.sources.iter().any(|source| source.table == child);
            let negated = if !joined && self.rng.chance(30) { "NOT " } else { "" };
            return Some(format!(
                "{negated}EXISTS (SELECT 1 FROM {child_name} AS {alias} WHERE {alias}.{column} = {})",
                if scope.qualified { format!("{}.id", base.alias) } else { format!("{}.id", table.name) }
            ));
        }
        let numbers = table.columns_of(|kind| matches!(kind, ColumnKind::Count | ColumnKind::Measure | ColumnKind::Money));
        if let Some(column) = self.rng.pick_option(&numbers).copied()
            && self.wants(Feature::ScalarSubquery)
        {
            // Comparisons some row can satisfy: none is above the maximum or below the minimum.
            let (function, op) = *self.rng.pick(&[("AVG", ">"), ("AVG", "<"), ("AVG", ">="), ("MAX", "<"), ("MAX", "="), ("MIN", ">"), ("MIN", "=")]);
            return Some(format!("{} {op} (SELECT {function}({}) FROM {})", base_ref(&column.name), column.name, table.name));
        }
        None
    }

    /// A predicate over the table `table` alone, unqualified.
    fn single_table_predicate(&mut self, schema: &SynthSchema, table: usize) -> Option<String> {
        let scope = Scope { sources: vec![Source { table, alias: String::new(), schema }], qualified: false };
        self.predicate(&scope)
    }

    /// Rows: columns and computed columns, maybe ordered and limited.
    fn projection(&mut self, scope: &Scope, joins: &[String], conditions: &[String]) -> String {
        let count = self.rng.range(1, 3) as usize;
        let mut items = self.plain_items(scope, count);
        for _ in 0..self.difficulty.min(3) {
            if let Some(item) = self.attempt(|drawer| drawer.computed_item(scope, &items)) {
                items.push(item);
            }
        }
        let mut sql = format!("SELECT {}\n{}", render_items(&items), scope.render_from(joins));
        push_where(&mut sql, conditions);
        self.order_and_limit(&mut sql, &items);
        sql
    }

    fn distinct(&mut self, scope: &Scope, joins: &[String], conditions: &[String]) -> String {
        let keys = scope.columns(|kind| matches!(kind, ColumnKind::Category | ColumnKind::Flag | ColumnKind::Count));
        let mut items = Vec::new();
        for _ in 0..self.rng.range(1, 2) {
            if let Some(column) = self.rng.pick_option(&keys).copied() {
                push_unique(&mut items, scope, column);
            }
        }
        if items.is_empty() {
            self.used.remove(&Feature::Distinct);
            return self.projection(scope, joins, conditions);
        }
        let mut sql = format!("SELECT DISTINCT {}\n{}", render_items(&items), scope.render_from(joins));
        push_where(&mut sql, conditions);
        self.order_and_limit(&mut sql, &items);
        sql
    }

    /// Groups: keys (columns or computed), aggregates, maybe HAVING, ORDER BY and LIMIT.
    fn aggregate(&mut self, scope: &Scope, joins: &[String], conditions: &[String]) -> String {
        let key_columns = scope
            .columns(|kind| matches!(kind, ColumnKind::Category | ColumnKind::Flag | ColumnKind::ForeignKey { .. } | ColumnKind::Date | ColumnKind::Timestamp));
        let mut keys: Vec<Item> = Vec::new();
        let global = self.wants(Feature::GlobalAggregate);
        if !global {
            for _ in 0..self.rng.range(1, 2) {
                let Some(column) = self.rng.pick_option(&key_columns).copied() else { break };
                match column.column.kind {
                    ColumnKind::Date | ColumnKind::Timestamp => {
                        self.used.insert(Feature::Date);
                        let unit = *self.rng.pick(&["year", "month"]);
                        let name = unique_name(&keys, &format!("{}_{unit}", column.column.name));
                        let sql = if self.rng.chance(50) {
                            format!("EXTRACT({} FROM {})", unit.to_uppercase(), scope.reference(column))
                        } else {
                            format!("date_trunc('{unit}', {})", scope.reference(column))
                        };
                        keys.push(Item { sql, name, kind: ColumnKind::Count });
                    }
                    _ => push_unique(&mut keys, scope, column),
                }
            }
        }
        let mut aggregates = vec![Item { sql: "COUNT(*)".into(), name: "n_rows".into(), kind: ColumnKind::Count }];
        let numbers = scope.columns(|kind| kind.is_numeric());
        let orderable = scope.columns(|kind| kind.is_orderable() && !matches!(kind, ColumnKind::Key));
        for _ in 0..self.rng.range(1, 1 + i64::from(self.difficulty.min(3))) {
            let made = self.attempt(|drawer| {
                let choice = drawer.rng.range(0, 9);
                let item = if choice < 5 && !numbers.is_empty() {
                    let column = *drawer.rng.pick(&numbers);
                    let function = *drawer.rng.pick(&["SUM", "AVG", "MIN", "MAX"]);
                    let argument = if drawer.wants(Feature::Arithmetic) { drawer.arithmetic(scope, column) } else { scope.reference(column) };
                    Item {
                        sql: format!("{function}({argument})"),
                        name: format!("{}_{}", function.to_lowercase(), column.column.name),
                        kind: ColumnKind::Measure,
                    }
                } else if choice < 7 && !orderable.is_empty() {
                    let column = *drawer.rng.pick(&orderable);
                    if drawer.wants(Feature::CountDistinct) {
                        Item {
                            sql: format!("COUNT(DISTINCT {})", scope.reference(column)),
                            name: format!("distinct_{}", column.column.name),
                            kind: ColumnKind::Count,
                        }
                    } else {
                        let function = *drawer.rng.pick(&["MIN", "MAX"]);
                        Item {
                            sql: format!("{function}({})", scope.reference(column)),
                            name: format!("{}_{}", function.to_lowercase(), column.column.name),
                            kind: column.column.kind,
                        }
                    }
                } else {
                    drawer.conditional_aggregate(scope)?
                };
                // A name taken already (the same aggregate drawn twice) drops the draft.
                (!aggregates.iter().chain(&keys).any(|existing| existing.name == item.name)).then_some(item)
            });
            aggregates.extend(made);
        }
        let mut items = keys;
        let key_count = items.len();
        if key_count == 0 {
            // No key: one row for the whole input, not a GROUP BY.
            self.used.remove(&Feature::GroupBy);
            self.used.insert(Feature::GlobalAggregate);
        }
        items.extend(aggregates);
        let mut sql = format!("SELECT {}\n{}", render_items(&items), scope.render_from(joins));
        push_where(&mut sql, conditions);
        if key_count > 0 {
            sql.push_str(&format!("\nGROUP BY {}", items[..key_count].iter().map(|item| item.sql.clone()).collect::<Vec<_>>().join(", ")));
            if self.wants(Feature::Having) {
                let threshold = self.rng.range(1, 2);
                sql.push_str(&format!("\nHAVING COUNT(*) > {threshold}"));
            }
            if self.wants(Feature::OrderBy) {
                let direction = if self.rng.chance(30) { " DESC" } else { "" };
                let keys: Vec<String> = items[..key_count].iter().map(|item| format!("{}{direction}", item.name)).collect();
                sql.push_str(&format!("\nORDER BY {}", keys.join(", ")));
                if self.wants(Feature::Limit) {
                    sql.push_str(&format!("\nLIMIT {}", self.rng.range(3, 10)));
                }
            }
        }
        sql
    }

    /// `SUM(CASE WHEN ... THEN x ELSE 0 END)` or `COUNT(*) FILTER (WHERE ...)`.
    fn conditional_aggregate(&mut self, scope: &Scope) -> Option<Item> {
        let condition = self.predicate(scope)?;
        if self.wants(Feature::FilterClause) {
            return Some(Item { sql: format!("COUNT(*) FILTER (WHERE {condition})"), name: "n_matching".into(), kind: ColumnKind::Count });
        }
        if self.wants(Feature::Case) {
            return Some(Item { sql: format!("SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"), name: "n_flagged".into(), kind: ColumnKind::Count });
        }
        None
    }

    /// Rows with window columns: a rank, a partition total or a running total; maybe only the
    /// top rows of each partition.
    fn windowed(&mut self, scope: &Scope, joins: &[String], conditions: &[String]) -> String {
        let partitions = scope.columns(|kind| matches!(kind, ColumnKind::Category | ColumnKind::Flag | ColumnKind::ForeignKey { .. }));
        let numbers = scope.columns(|kind| kind.is_numeric());
        let orders = scope.columns(|kind| kind.is_numeric() || matches!(kind, ColumnKind::Date | ColumnKind::Timestamp));
        let (Some(&partition), Some(&order)) = (self.rng.pick_option(&partitions), self.rng.pick_option(&orders)) else {
            self.used.remove(&Feature::Window);
            return self.projection(scope, joins, conditions);
        };
        let count = self.rng.range(1, 2) as usize;
        let mut items = self.plain_items(scope, count);
        push_unique(&mut items, scope, partition);
        push_unique(&mut items, scope, order);
        let over = format!("PARTITION BY {}", scope.reference(partition));
        let choice = self.rng.range(0, 3);
        let ranked = choice < 2;
        let window = if ranked {
            let function = *self.rng.pick(&["RANK", "DENSE_RANK"]);
            let direction = if self.rng.chance(60) { " DESC" } else { "" };
            Item { sql: format!("{function}() OVER ({over} ORDER BY {}{direction})", scope.reference(order)), name: "rnk".into(), kind: ColumnKind::Count }
        } else if let Some(&measure) = self.rng.pick_option(&numbers) {
            let function = *self.rng.pick(&["SUM", "AVG", "MAX", "COUNT"]);
            let frame = if self.wants(Feature::WindowFrame) { format!(" ORDER BY {}", scope.reference(order)) } else { String::new() };
            Item {
                sql: format!("{function}({}) OVER ({over}{frame})", scope.reference(measure)),
                name: format!("window_{}", function.to_lowercase()),
                kind: ColumnKind::Measure,
            }
        } else {
            Item { sql: format!("COUNT(*) OVER ({over})"), name: "partition_rows".into(), kind: ColumnKind::Count }
        };
        let window_name = window.name.clone();
        items.push(window);
        let mut inner = format!("SELECT {}\n{}", render_items(&items), scope.render_from(joins));
        push_where(&mut inner, conditions);
        if ranked && self.wants(Feature::TopPerGroup) {
            let names: Vec<String> = items.iter().map(|item| item.name.clone()).collect();
            return format!("SELECT {}\nFROM (\n{}\n) AS ranked\nWHERE {window_name} <= {}", names.join(", "), indent(&inner), self.rng.range(1, 3));
        }
        inner
    }

    /// One to `count` columns of the scope, each once.
    fn plain_items(&mut self, scope: &Scope, count: usize) -> Vec<Item> {
        let columns: Vec<ColumnRef> =
            scope.columns(|kind| !matches!(kind, ColumnKind::IntList)).into_iter().filter(|c| self.nested_allowed(c.column.kind)).collect();
        let mut items = Vec::new();
        for _ in 0..count {
            if let Some(column) = self.rng.pick_option(&columns).copied() {
                push_unique(&mut items, scope, column);
            }
        }
        items
    }

    /// A computed column: arithmetic, a string or date function, CASE, COALESCE, a cast, a
    /// struct field or a list's length.
    fn computed_item(&mut self, scope: &Scope, items: &[Item]) -> Option<Item> {
        let columns: Vec<ColumnRef> = scope
            .columns(|kind| !matches!(kind, ColumnKind::Key | ColumnKind::ForeignKey { .. }))
            .into_iter()
            .filter(|c| self.nested_allowed(c.column.kind))
            .collect();
        let column = *self.rng.pick_option(&columns)?;
        let name = scope.reference(column);
        let base = &column.column.name;
        let (sql, suffix, kind) = match column.column.kind {
            ColumnKind::Count | ColumnKind::Measure | ColumnKind::Money => {
                if self.wants(Feature::Case) {
                    let (low, high) = (self.number(column.column.kind, column.column), self.number(column.column.kind, column.column));
                    let (low, high) = if low.parse::<f64>().unwrap_or(0.0) <= high.parse::<f64>().unwrap_or(0.0) { (low, high) } else { (high, low) };
                    (format!("CASE WHEN {name} >= {high} THEN 'high' WHEN {name} >= {low} THEN 'medium' ELSE 'low' END"), "band", ColumnKind::Category)
                } else if self.wants(Feature::NullHandling) {
                    (format!("COALESCE({name}, 0)"), "or_zero", column.column.kind)
                } else if column.column.kind != ColumnKind::Measure && self.wants(Feature::Cast) {
                    // A float column is not cast to its own type: that is no cast.
                    (format!("CAST({name} AS DOUBLE)"), "as_double", ColumnKind::Measure)
                } else if self.wants(Feature::Arithmetic) {
                    (self.arithmetic(scope, column), "calc", ColumnKind::Measure)
                } else {
                    return None;
                }
            }
            ColumnKind::Category | ColumnKind::Text => {
                if !self.wants(Feature::StringFunction) {
                    return None;
                }
                match self.rng.range(0, 4) {
                    0 => (format!("LOWER({name})"), "lower", ColumnKind::Text),
                    1 => (format!("UPPER({name})"), "upper", ColumnKind::Text),
                    2 => (format!("LENGTH({name})"), "length", ColumnKind::Count),
                    3 => (format!("SUBSTRING({name}, 1, 3)"), "prefix", ColumnKind::Text),
                    _ => (format!("COALESCE({name}, 'none')"), "or_none", ColumnKind::Text),
                }
            }
            ColumnKind::Date | ColumnKind::Timestamp => {
                if !self.wants(Feature::Date) {
                    return None;
                }
                let unit = *self.rng.pick(&["YEAR", "MONTH", "DAY"]);
                (format!("EXTRACT({unit} FROM {name})"), unit_suffix(unit), ColumnKind::Count)
            }
            ColumnKind::Flag => {
                if !self.wants(Feature::Case) {
                    return None;
                }
                (format!("CASE WHEN {name} THEN 'yes' WHEN NOT {name} THEN 'no' ELSE 'unknown' END"), "label", ColumnKind::Category)
            }
            ColumnKind::StringList => {
                self.used.insert(Feature::Array);
                (format!("len({name})"), "count", ColumnKind::Count)
            }
            ColumnKind::Struct => {
                self.used.insert(Feature::Struct);
                let field = &column.column.fields[self.rng.range(0, 1) as usize].0;
                (format!("{name}.{field}"), field.as_str(), ColumnKind::Text)
            }
            ColumnKind::Key | ColumnKind::ForeignKey { .. } | ColumnKind::IntList => return None,
        };
        if items.iter().any(|item| item.sql == sql) {
            return None;
        }
        let name = unique_name(items, &format!("{base}_{suffix}"));
        Some(Item { sql, name, kind })
    }

    /// `x * 2`, `x - y`, `ROUND(x, 1)`, `ABS(x)`: arithmetic on a number column.
    fn arithmetic(&mut self, scope: &Scope, column: ColumnRef) -> String {
        self.used.insert(Feature::Arithmetic);
        let name = scope.reference(column);
        let others: Vec<ColumnRef> =
            scope.columns(|kind| kind == column.column.kind).into_iter().filter(|c| c.column.name != column.column.name || c.source != column.source).collect();
        match self.rng.range(0, 3) {
            0 => format!("{name} * {}", self.rng.range(2, 10)),
            1 if !others.is_empty() => format!("{name} - {}", scope.reference(*self.rng.pick(&others))),
            2 if column.column.kind == ColumnKind::Measure => format!("ROUND({name}, {})", self.rng.range(0, 2)),
            _ => format!("{name} + {}", self.rng.range(1, 100)),
        }
    }

    /// ORDER BY every output column that orders (so a LIMIT picks the same rows whatever the
    /// storage order), maybe with a LIMIT.
    fn order_and_limit(&mut self, sql: &mut String, items: &[Item]) {
        let keys: Vec<&Item> = items.iter().filter(|item| item.kind.is_orderable() || item.kind == ColumnKind::Flag).collect();
        if keys.is_empty() || !self.wants(Feature::OrderBy) {
            return;
        }
        let first_descending = self.rng.chance(35);
        let rendered: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(index, item)| if index == 0 && first_descending { format!("{} DESC", item.name) } else { item.name.clone() })
            .collect();
        sql.push_str(&format!("\nORDER BY {}", rendered.join(", ")));
        if keys.len() == items.len() && self.wants(Feature::Limit) {
            sql.push_str(&format!("\nLIMIT {}", self.rng.range(1, 20)));
        }
    }

    /// `WITH per_parent AS (aggregate of a child by its foreign key) SELECT ... FROM parent JOIN
    /// per_parent`.
    fn cte_query(&mut self, schema: &SynthSchema) -> String {
        let children: Vec<usize> = (0..schema.tables.len()).filter(|&i| schema.tables[i].foreign_keys().next().is_some()).collect();
        let child = *self.rng.pick(&children);
        let (key, parent) = schema.tables[child].foreign_keys().next().map(|(c, p)| (c.name.clone(), p)).expect("a child table");
        let child_table = &schema.tables[child];
        let numbers = child_table.columns_of(|kind| kind.is_numeric());
        let total = match self.rng.pick_option(&numbers) {
            Some(column) => format!("SUM({}) AS total_{}", column.name, column.name),
            None => "COUNT(DISTINCT id) AS distinct_ids".to_string(),
        };
        let total_name = total.rsplit(' ').next().expect("an alias").to_string();
        let scope = Scope { sources: vec![Source { table: child, alias: String::new(), schema }], qualified: false };
        let conditions = self.predicates(&scope);
        let mut inner = format!("SELECT {key}, COUNT(*) AS n_rows, {total}\nFROM {}", child_table.name);
        push_where(&mut inner, &conditions);
        inner.push_str(&format!("\nGROUP BY {key}"));
        let cte = format!("per_{}", schema.tables[parent].name);
        let parent_table = &schema.tables[parent];
        let parent_alias = alias_of(&parent_table.name, &["s".to_string()]);
        let labels = parent_table.columns_of(|kind| kind.is_string());
        let label = labels.first().map(|c| format!("{parent_alias}.{}, ", c.name)).unwrap_or_default();
        let join = if self.wants(Feature::LeftJoin) { "LEFT JOIN" } else { "JOIN" };
        let mut sql = format!(
            "WITH {cte} AS (\n{}\n)\nSELECT {parent_alias}.id, {label}s.n_rows, s.{total_name}\nFROM {} AS {parent_alias}\n{join} {cte} AS s ON s.{key} = {parent_alias}.id",
            indent(&inner),
            parent_table.name
        );
        if self.wants(Feature::Filter) {
            sql.push_str(&format!("\nWHERE s.n_rows >= {}", self.rng.range(1, 2)));
        }
        sql
    }

    /// Two SELECTs of the same columns of one table, with different conditions, combined.
    fn set_operation(&mut self, schema: &SynthSchema) -> String {
        let table = self.rng.range(0, schema.tables.len() as i64 - 1) as usize;
        // Not a flag: two values make most intersections and differences empty.
        let columns = schema.tables[table].columns_of(|kind| matches!(kind, ColumnKind::Category | ColumnKind::Text | ColumnKind::Count | ColumnKind::Date));
        let Some(column) = self.rng.pick_option(&columns).map(|c| c.name.clone()) else {
            self.used.remove(&Feature::SetOperation);
            return self.select(schema, Some(table));
        };
        let scope = Scope { sources: vec![Source { table, alias: String::new(), schema }], qualified: false };
        let mut sides = Vec::new();
        for _ in 0..2 {
            let mut side = format!("SELECT {column}\nFROM {}", schema.tables[table].name);
            // A condition on another column than the one selected: `x IS NULL INTERSECT x = 13`
            // is empty whatever the data.
            let condition: Vec<String> = self.predicate_avoiding(&scope, &mut vec![column.clone()]).into_iter().collect();
            push_where(&mut side, &condition);
            sides.push(side);
        }
        let operator = *self.rng.pick(&["UNION", "UNION ALL", "INTERSECT", "EXCEPT"]);
        format!("{}\n{operator}\n{}", sides[0], sides[1])
    }

    fn number(&mut self, kind: ColumnKind, column: &SynthColumn) -> String {
        match kind {
            ColumnKind::Count => self.rng.range(0, 60).to_string(),
            ColumnKind::Measure => format!("{}.{}", self.rng.range(0, 99), self.rng.range(0, 9)),
            _ => {
                let scale: usize = column.ty.trim_end_matches(')').rsplit(',').next().and_then(|s| s.trim().parse().ok()).unwrap_or(2);
                let cents = self.rng.range(0, 10i64.pow(scale.min(3) as u32) - 1);
                format!("{}.{cents:0scale$}", self.rng.range(0, 500))
            }
        }
    }

    fn word(&mut self) -> &'static str {
        let word: &&'static str = self.rng.pick(WORDS);
        word
    }

    fn date(&mut self) -> String {
        format!("{}-{:02}-{:02}", self.rng.range(2019, 2024), self.rng.range(1, 12), self.rng.range(1, 28))
    }
}

/// Values string predicates compare with (the fixtures mix each literal of a query into its
/// rows, so any of them selects rows).
const WORDS: &[&str] = &[
    "active", "pending", "closed", "north", "south", "east", "west", "gold", "silver", "bronze", "web", "store", "mobile", "basic", "premium", "new",
    "returned", "open", "alpha", "beta", "Berlin", "Lyon", "Osaka", "Lima", "red", "green", "blue", "high", "low", "A1", "B2", "x-ray", "O'Brien",
];

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn unit_suffix(unit: &str) -> &'static str {
    match unit {
        "YEAR" => "year",
        "MONTH" => "month",
        _ => "day",
    }
}

/// A short alias for a table: its initials (`order_lines` -> `ol`), with a number when taken.
fn alias_of(table: &str, taken: &[String]) -> String {
    let initials: String = table.split('_').filter_map(|part| part.chars().next()).collect();
    let mut alias = initials.clone();
    let mut number = 2;
    while taken.contains(&alias) || RESERVED_ALIASES.contains(&alias.as_str()) {
        alias = format!("{initials}{number}");
        number += 1;
    }
    alias
}

/// Initials that are SQL keywords or Python names the translation would shadow.
const RESERVED_ALIASES: &[&str] = &["as", "at", "by", "if", "in", "is", "on", "or", "to", "do", "s", "ibis", "_"];

fn push_unique(items: &mut Vec<Item>, scope: &Scope, column: ColumnRef) {
    let sql = scope.reference(column);
    if items.iter().any(|item| item.sql == sql) {
        return;
    }
    let name = if items.iter().any(|item| item.name == column.column.name) {
        let table = &scope.sources[column.source].schema.tables[scope.sources[column.source].table].name;
        unique_name(items, &format!("{}_{}", table.trim_end_matches('s'), column.column.name))
    } else {
        column.column.name.clone()
    };
    items.push(Item { sql, name, kind: column.column.kind });
}

fn unique_name(items: &[Item], wanted: &str) -> String {
    let mut name = wanted.to_string();
    let mut number = 2;
    while items.iter().any(|item| item.name == name) {
        name = format!("{wanted}_{number}");
        number += 1;
    }
    name
}

fn render_items(items: &[Item]) -> String {
    items.iter().map(Item::rendered).collect::<Vec<_>>().join(", ")
}

fn push_where(sql: &mut String, conditions: &[String]) {
    if !conditions.is_empty() {
        sql.push_str(&format!("\nWHERE {}", conditions.join("\n  AND ")));
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
}
