//! Name resolution: which relation of which (possibly enclosing) FROM clause a column belongs to.

use crate::error::TranspileError;
use crate::python;
use sqlparser::tokenizer::Span;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The Ibis type where it is known (table columns, columns passed through unchanged, and
    /// what `expr::ibis_type` can tell of computed ones).
    pub ty: Option<String>,
    /// The type DuckDB computes the values in, where it is known; it differs from Ibis's for
    /// decimals (a product has the sum of the scales, a mean is a double), and a cast to less
    /// than it would round them.
    pub value_ty: Option<String>,
}

impl Column {
    /// A column whose values have the type Ibis gives them.
    pub fn typed(name: String, ty: Option<String>) -> Column {
        Column { name, value_ty: ty.clone(), ty }
    }
}

/// One relation of a FROM clause.
#[derive(Clone, Debug)]
pub struct Source {
    /// The name SQL qualifies its columns with: the alias, else the table name.
    pub qualifier: String,
    /// The Python variable that holds the relation.
    pub var: String,
    /// The catalog table or CTE it reads, used to decide when a second occurrence needs `.view()`.
    pub origin: String,
    pub columns: Vec<Column>,
}

/// A join chain bound to a variable, whose columns are then referred to by the names Ibis gives
/// them after the join: correlated subqueries and window specifications cannot reach into a join
/// chain through the joined tables.
#[derive(Clone, Debug)]
pub struct BoundJoin {
    pub var: String,
    pub names: HashMap<(usize, String), String>,
}

/// The relations visible to the expressions of one query block.
#[derive(Debug, Default)]
pub struct Scope<'p> {
    pub sources: Vec<Source>,
    /// Columns merged by `JOIN ... USING`, resolved to the source on the left.
    pub using: Vec<(String, usize)>,
    pub bound_join: Option<BoundJoin>,
    /// Right-hand columns of an unbound join chain that an inner equi-join merged into an
    /// earlier source's column: Ibis refuses to filter or sort by the right-hand one, so
    /// references go to the column they were merged into (equal on every joined row).
    pub merged: HashMap<(usize, String), (usize, String)>,
    /// The parameters of the lambda whose body this scope is (`x -> x + 1`), each with its
    /// Python name.
    pub lambda_parameters: Vec<(String, String)>,
    pub parent: Option<&'p Scope<'p>>,
}

/// A resolved column: `depth` 0 is the current block, 1 its enclosing block, and so on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub depth: usize,
    pub source: usize,
    pub column: String,
    pub ty: Option<String>,
    pub value_ty: Option<String>,
}

impl<'p> Scope<'p> {
    pub fn child(parent: &'p Scope<'p>) -> Scope<'p> {
        Scope { parent: Some(parent), ..Scope::default() }
    }

    pub fn resolve(&self, qualifier: Option<&str>, name: &str, span: Span) -> Result<Resolved, TranspileError> {
        let mut scope = Some(self);
        let mut depth = 0;
        while let Some(current) = scope {
            if let Some((source, column)) = current.find(qualifier, name, span)? {
                return Ok(Resolved { depth, source, column: column.name.clone(), ty: column.ty.clone(), value_ty: column.value_ty.clone() });
            }
            scope = current.parent;
            depth += 1;
        }
        let shown = match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_string(),
        };
        Err(TranspileError::resolve_in(format!("unknown column `{shown}`"), span))
    }

    fn find(&self, qualifier: Option<&str>, name: &str, span: Span) -> Result<Option<(usize, &Column)>, TranspileError> {
        fn column_of<'s>(source: &'s Source, name: &str) -> Option<&'s Column> {
            source.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
        }
        if let Some(qualifier) = qualifier {
            let Some(index) = self.sources.iter().position(|s| s.qualifier.eq_ignore_ascii_case(qualifier)) else {
                return Ok(None);
            };
            return match column_of(&self.sources[index], name) {
                Some(column) => Ok(Some((index, column))),
                None => Err(TranspileError::resolve_in(format!("`{qualifier}` has no column `{name}`"), span)),
            };
        }
        if let Some((_, index)) = self.using.iter().find(|(column, _)| column.eq_ignore_ascii_case(name)) {
            return Ok(column_of(&self.sources[*index], name).map(|column| (*index, column)));
        }
        let mut found = self.sources.iter().enumerate().filter_map(|(i, s)| column_of(s, name).map(|c| (i, c)));
        let first = found.next();
        if let (Some((_, _)), Some((second, _))) = (first, found.next()) {
            let (first_index, _) = first.unwrap_or((0, &self.sources[0].columns[0]));
            return Err(TranspileError::resolve_in(
                format!("column `{name}` is ambiguous: both `{}` and `{}` have it", self.sources[first_index].qualifier, self.sources[second].qualifier),
                span,
            ));
        }
        Ok(first)
    }

    /// The Python expression for a resolved column.
    pub fn reference(&self, resolved: &Resolved) -> String {
        let mut scope = self;
        for _ in 0..resolved.depth {
            scope = scope.parent.expect("a resolved depth never exceeds the scope chain");
        }
        if let Some(bound) = &scope.bound_join
            && let Some(name) = bound.names.get(&(resolved.source, resolved.column.clone()))
        {
            return python::attribute(&bound.var, name);
        }
        if let Some((source, column)) = scope.merged.get(&(resolved.source, resolved.column.clone())) {
            return python::attribute(&scope.sources[*source].var, column);
        }
        python::attribute(&scope.sources[resolved.source].var, &resolved.column)
    }

    /// The Python name of a lambda parameter that `name` refers to, here or in an enclosing scope.
    pub fn lambda_parameter(&self, name: &str) -> Option<&str> {
        let own = self.lambda_parameters.iter().find(|(sql, _)| sql.eq_ignore_ascii_case(name)).map(|(_, python)| python.as_str());
        own.or_else(|| self.parent.and_then(|parent| parent.lambda_parameter(name)))
    }

    /// Whether `origin` (a table or CTE) is already read by this block or an enclosing one.
    pub fn reads(&self, origin: &str) -> bool {
        self.sources.iter().any(|s| s.origin == origin) || self.parent.is_some_and(|p| p.reads(origin))
    }
}
