//! UNION, INTERSECT and EXCEPT: Ibis's `union`, `intersect` and `difference`, the right
//! operand renamed and cast to the left's columns.

use super::select::{Output, select_arguments};
use super::{Rel, Translator, inline_relation};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::python;
use crate::scope::{Column, Scope};
use crate::types;
use sqlparser::ast::{Expr, SetExpr, SetOperator, SetQuantifier, Value};

impl Translator<'_> {
    pub(super) fn set_expr(&mut self, body: &SetExpr, outer: &Scope) -> Result<Rel, TranspileError> {
        match body {
            SetExpr::Select(select) => self.select(select, None, None, outer),
            SetExpr::Query(query) => self.query(query, outer),
            SetExpr::SetOperation { left, op, set_quantifier, right } => {
                let left = self.set_expr(left, outer)?;
                let right = self.set_expr(right, outer)?;
                if left.columns.len() != right.columns.len() {
                    return Err(TranspileError::resolve_at(
                        format!("the two sides of {op} have {} and {} columns", left.columns.len(), right.columns.len()),
                        body,
                    ));
                }
                let (method, default_distinct) = match op {
                    SetOperator::Union => ("union", false),
                    SetOperator::Intersect => ("intersect", true),
                    SetOperator::Except | SetOperator::Minus => ("difference", true),
                };
                let distinct = match set_quantifier {
                    SetQuantifier::All => false,
                    SetQuantifier::Distinct | SetQuantifier::None => true,
                    _ => return Err(TranspileError::unsupported_at(&format!("{op} {set_quantifier}"), body)),
                };
                let (left, right) = self.align_set_operands(left, right);
                let mut args = vec![inline_relation(&right.chain)];
                if distinct != default_distinct {
                    args.push(format!("distinct={}", if distinct { "True" } else { "False" }));
                }
                let mut chain = left.chain;
                chain.call(method, &args);
                Ok(Rel { chain, columns: left.columns })
            }
            SetExpr::Values(values) => self.values(values, None, body),
            _ => Err(TranspileError::unsupported_at("a statement other than a query", body)),
        }
    }

    /// The right operand of a set operation takes the left's column names, and types where they
    /// differ (Ibis unites only equal schemas). A bare `NULL` column takes the other side's type:
    /// the known one, or else the one read off the other side, bound to a name for that.
    fn align_set_operands(&mut self, left: Rel, right: Rel) -> (Rel, Rel) {
        let mut left = left;
        let pairs: Vec<(Column, Column)> = left.columns.iter().cloned().zip(right.columns.iter().cloned()).collect();
        let is_null = |ty: &Option<String>| ty.as_deref() == Some(NULL_TYPE);
        let needs_rename = pairs.iter().any(|(l, r)| l.name != r.name);
        let needs_cast =
            pairs.iter().any(|(l, r)| (l.ty != r.ty || l.value_ty != r.value_ty) && (is_null(&l.ty) || is_null(&r.ty) || (l.ty.is_some() && r.ty.is_some())));
        if !needs_rename && !needs_cast {
            return (left, right);
        }
        let mut left_values = Vec::new();
        let mut right_values = Vec::new();
        let mut right_var: Option<String> = None;
        let mut left_var: Option<String> = None;
        for (l, r) in &pairs {
            let mut left_code = python::attribute("_", &l.name);
            let mut right_code = python::attribute("_", &r.name);
            match (&l.ty, &r.ty) {
                (Some(_), Some(_)) if same_types(l, r) => {}
                (Some(a), _) if is_null(&r.ty) && !is_null(&l.ty) => right_code = format!("{right_code}.cast({})", python::string(a)),
                (None, _) if is_null(&r.ty) => {
                    let var = left_var.get_or_insert_with(|| self.bind("left", &left.chain)).clone();
                    right_code = format!("{right_code}.cast({}.type())", python::attribute(&var, &l.name));
                }
                (_, Some(b)) if is_null(&l.ty) && !is_null(&r.ty) => left_code = format!("{left_code}.cast({})", python::string(b)),
                (_, None) if is_null(&l.ty) => {
                    let var = right_var.get_or_insert_with(|| self.bind("right", &right.chain)).clone();
                    left_code = format!("{left_code}.cast({}.type())", python::attribute(&var, &r.name));
                }
                (Some(a), Some(b)) => {
                    // Both sides to a type that holds either's values (Ibis unites equal types
                    // only): a side is cast unless Ibis and DuckDB both have it in that type.
                    let (values_a, values_b) = (l.value_ty.as_deref().unwrap_or(a), r.value_ty.as_deref().unwrap_or(b));
                    let common = types::set_operation_type(values_a, values_b);
                    if !(types::same(a, &common) && types::same(values_a, &common)) {
                        left_code = format!("{left_code}.cast({})", python::string(&common));
                    }
                    if !(types::same(b, &common) && types::same(values_b, &common)) {
                        right_code = format!("{right_code}.cast({})", python::string(&common));
                    }
                }
                _ => {}
            }
            let left_same = (!left_code.contains(".cast(")).then(|| l.name.clone());
            left_values.push(Output { name: l.name.clone(), code: left_code, source_column: left_same });
            let right_same = (l.name == r.name && !right_code.contains(".cast(")).then(|| l.name.clone());
            right_values.push(Output { name: l.name.clone(), code: right_code, source_column: right_same });
        }
        if let Some(var) = left_var {
            left.chain = Chain::new(var);
        }
        if left_values.iter().any(|v| v.source_column.is_none()) {
            left.chain.call("select", &select_arguments(&left_values));
        }
        let mut chain = match right_var {
            Some(var) => Chain::new(var),
            None => right.chain,
        };
        chain.call("select", &select_arguments(&right_values));
        let columns = left
            .columns
            .iter()
            .zip(&right.columns)
            .map(|(l, r)| {
                if is_null(&l.ty) {
                    return Column { name: l.name.clone(), ..r.clone() };
                }
                match (&l.ty, &r.ty) {
                    (Some(a), Some(b)) if !is_null(&r.ty) && !same_types(l, r) => {
                        // Both sides were cast to this one above.
                        let values = types::set_operation_type(l.value_ty.as_deref().unwrap_or(a), r.value_ty.as_deref().unwrap_or(b));
                        Column::typed(l.name.clone(), Some(values))
                    }
                    _ => l.clone(),
                }
            })
            .collect();
        left.columns = columns;
        (left, Rel { chain, columns: right.columns })
    }
}

/// Two columns that Ibis types alike and whose values DuckDB computes alike.
fn same_types(l: &Column, r: &Column) -> bool {
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => types::same(a, b),
        (a, b) => a == b,
    };
    same(&l.ty, &r.ty) && same(&l.value_ty.clone().or_else(|| l.ty.clone()), &r.value_ty.clone().or_else(|| r.ty.clone()))
}

/// The type marker of a bare `NULL` column, whose type a set operation takes from the other side.
const NULL_TYPE: &str = "null";

/// [`NULL_TYPE`] for a bare `NULL`.
pub(super) fn null_type(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) if matches!(v.value, Value::Null) => Some(NULL_TYPE.to_string()),
        Expr::Nested(inner) => null_type(inner),
        _ => None,
    }
}
