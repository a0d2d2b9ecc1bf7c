//! Struct fields: `(col).field`, `col.field` and `alias.col.field`, read in Ibis as
//! `t.col["field"]`. SQL reads `a.b` as column `b` of table `a` first, and as field `b` of a
//! struct column `a` only where no table is named `a`; so does this.

use crate::ast::{plain_column, unparenthesized};
use crate::scope::{Resolved, Scope};
use crate::types;
use sqlparser::ast::{AccessExpr, Expr, Ident};

/// A struct column and the fields read from it, innermost last.
pub(crate) struct FieldAccess {
    pub column: Resolved,
    pub fields: Vec<String>,
    /// The type of the last field, where the column's type is known.
    pub ty: Option<String>,
}

impl FieldAccess {
    /// The Python code: the column's reference, then each field by subscript (a field named
    /// like a method, `name` or `count`, is reached that way too).
    pub fn code(&self, scope: &Scope) -> String {
        let mut code = scope.reference(&self.column);
        for field in &self.fields {
            code = format!("{code}[{}]", crate::python::string(field));
        }
        code
    }

    /// The output name DuckDB gives an unaliased field: the field's own.
    pub fn name(&self) -> &str {
        self.fields.last().map(String::as_str).unwrap_or(&self.column.column)
    }
}

/// The struct field `expr` reads, if it reads one.
pub(crate) fn field_access(expr: &Expr, scope: &Scope) -> Option<FieldAccess> {
    match expr {
        Expr::CompoundIdentifier(parts) => compound(parts, scope),
        Expr::CompoundFieldAccess { root, access_chain } => {
            let root = unparenthesized(root);
            let (column, mut fields) = match root {
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match plain_column(root, scope) {
                    Some(column) => (column, Vec::new()),
                    None => {
                        let inner = field_access(root, scope)?;
                        (inner.column, inner.fields)
                    }
                },
                _ => return None,
            };
            for access in access_chain {
                match access {
                    AccessExpr::Dot(Expr::Identifier(field)) => fields.push(field.value.clone()),
                    _ => return None,
                }
            }
            Some(typed(column, fields))
        }
        Expr::Nested(inner) => field_access(inner, scope),
        _ => None,
    }
}

/// `a.b[.c...]`: column `a` (or `q.a` for a table `q`) and its fields, where `a.b` is not
/// itself a column.
fn compound(parts: &[Ident], scope: &Scope) -> Option<FieldAccess> {
    if parts.len() == 2 && scope.resolve(Some(&parts[0].value), &parts[1].value, parts[1].span).is_ok() {
        return None;
    }
    let names = |rest: &[Ident]| rest.iter().map(|part| part.value.clone()).collect::<Vec<_>>();
    if parts.len() >= 3
        && let Ok(column) = scope.resolve(Some(&parts[0].value), &parts[1].value, parts[1].span)
        && is_struct(&column)
    {
        return Some(typed(column, names(&parts[2..])));
    }
    let qualified_source = scope.sources.iter().any(|source| source.qualifier.eq_ignore_ascii_case(&parts[0].value));
    if qualified_source {
        return None;
    }
    let column = scope.resolve(None, &parts[0].value, parts[0].span).ok()?;
    is_struct(&column).then(|| typed(column, names(&parts[1..])))
}

/// A column whose type is a struct, or unknown (a computed column may hold one).
fn is_struct(column: &Resolved) -> bool {
    column.ty.as_deref().is_none_or(|ty| ty.trim_start_matches('!').starts_with("struct<"))
}

fn typed(column: Resolved, fields: Vec<String>) -> FieldAccess {
    let mut ty = column.ty.clone();
    for field in &fields {
        ty = ty.and_then(|t| types::struct_field(&t, field));
    }
    FieldAccess { column, fields, ty }
}
