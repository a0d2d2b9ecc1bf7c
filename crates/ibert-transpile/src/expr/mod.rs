//! Scalar expressions: columns, literals, operators, CASE, casts and predicates, emitted as
//! Python with minimal parentheses; functions, aggregates, windows and subqueries have modules
//! of their own.

mod aggregate;
mod deferred;
mod function;
mod inference;
mod literal;
mod py;
mod scalar;
mod structs;
mod subquery;
mod window;

pub(crate) use deferred::deferred_safe;
pub(crate) use inference::{ibis_type, value_type};
pub(crate) use py::Py;
pub(crate) use structs::field_access;

use crate::ast::{contains_aggregate, plain_column, quoted_string, same_column, unparenthesized};
use crate::error::TranspileError;
use crate::functions;
use crate::python;
use crate::query::Translator;
use crate::scope::Scope;
use crate::types;
use literal::{extract, field_name, has_time_units, interval_literal, interval_seconds, like_regex, literal};
use py::{ADDITIVE, AND, COMPARISON, MULTIPLICATIVE, OR, POWER, UNARY, not};
use sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, CeilFloorKind, DateTimeField, Expr, GroupByExpr, InTarget, Query, SelectItem, SetExpr, Spanned, Subscript,
    TrimWhereField, UnaryOperator, Value,
};

/// What the columns of an expression refer to.
#[derive(Clone, Copy)]
pub(crate) enum Phase<'a> {
    /// The rows of the FROM clause.
    Source,
    /// The result of `group_by(...).aggregate(...)`: keys and aggregates by name through `_`.
    Aggregated(&'a Aggregation),
}

#[derive(Default)]
pub(crate) struct Aggregation {
    pub keys: Vec<(Expr, String)>,
    pub metrics: Vec<(Expr, String)>,
}

/// The context an expression is translated in.
pub(crate) struct Cx<'a> {
    pub scope: &'a Scope<'a>,
    pub phase: Phase<'a>,
    /// SELECT items by name, for ORDER BY, HAVING and QUALIFY that refer to them.
    pub aliases: &'a [(String, Expr)],
    /// ORDER BY prefers an output name over an input column of the same name.
    pub prefer_alias: bool,
}

impl<'a> Cx<'a> {
    /// The same rows, with no SELECT alias in view (the expression an alias stands for).
    pub(super) fn without_aliases(&self) -> Cx<'a> {
        Cx { scope: self.scope, phase: self.phase, aliases: &[], prefer_alias: false }
    }
}

impl Translator<'_> {
    pub(crate) fn expr(&mut self, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        if let Some(found) = self.lookup(expr, cx)? {
            return Ok(found);
        }
        match expr {
            Expr::Identifier(ident) => self.column(None, &ident.value, expr, cx),
            Expr::CompoundIdentifier(parts) => {
                if let Some(access) = field_access(expr, cx.scope) {
                    return self.struct_field(&access, expr, cx);
                }
                match parts.as_slice() {
                    [.., qualifier, column] => self.column(Some(&qualifier.value), &column.value, expr, cx),
                    _ => Err(TranspileError::unsupported_at("this identifier", expr)),
                }
            }
            Expr::Value(value) => literal(&value.value, expr),
            Expr::Nested(inner) => self.expr(inner, cx),
            Expr::TypedString(typed) => {
                let text = match &typed.value.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    _ => return Err(TranspileError::unsupported_at("this typed literal", expr)),
                };
                let type_name = typed.data_type.to_string();
                match functions::ibis_type(&type_name).as_deref() {
                    Some("date") => Ok(Py::atom(format!("ibis.date({})", python::string(&text)))),
                    Some("timestamp") => Ok(Py::atom(format!("ibis.timestamp({})", python::string(&text)))),
                    Some(ty) => Ok(Py::atom(format!("ibis.literal({}).cast({})", python::string(&text), python::string(ty)))),
                    None => Err(TranspileError::unsupported_at(&format!("{type_name} literals"), expr)),
                }
            }
            // `INTERVAL (n) DAY`: an amount computed per row.
            Expr::Interval(interval) if !matches!(interval.value.as_ref(), Expr::Value(_)) && interval.last_field.is_none() => {
                let Some(field) = &interval.leading_field else {
                    return Err(TranspileError::unsupported_at("an interval whose value is not a literal and that names no unit", expr));
                };
                let unit = field_name(field);
                let code = functions::interval_unit_code(&unit).ok_or_else(|| TranspileError::unsupported_at(&format!("{unit} intervals"), expr))?;
                Ok(self.expr(&interval.value, cx)?.method("as_interval", &[python::string(code)]))
            }
            Expr::Interval(interval) => interval_literal(interval, expr),
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right, expr, cx),
            Expr::UnaryOp { op, expr: inner } => {
                let operand = self.expr(inner, cx)?;
                match op {
                    UnaryOperator::Not => Ok(Py::op(format!("~{}", operand.operand(UNARY)), UNARY)),
                    UnaryOperator::Minus => Ok(Py { code: format!("-{}", operand.operand(UNARY)), prec: UNARY, literal: operand.literal }),
                    UnaryOperator::Plus => Ok(operand),
                    _ => Err(TranspileError::unsupported_at(&format!("the operator {op}"), expr)),
                }
            }
            Expr::IsNull(inner) => Ok(self.expr(inner, cx)?.method("isnull", &[])),
            Expr::IsNotNull(inner) => Ok(self.expr(inner, cx)?.method("notnull", &[])),
            Expr::IsTrue(inner) => Ok(self.expr(inner, cx)?.method("fill_null", &["False".into()])),
            Expr::IsNotTrue(inner) => Ok(not(self.expr(inner, cx)?.method("fill_null", &["False".into()]))),
            Expr::IsFalse(inner) => Ok(not(self.expr(inner, cx)?.method("fill_null", &["True".into()]))),
            Expr::IsNotFalse(inner) => Ok(self.expr(inner, cx)?.method("fill_null", &["True".into()])),
            Expr::IsDistinctFrom(a, b) => {
                let (a, b) = (self.expr(a, cx)?, self.expr(b, cx)?);
                Ok(not(a.method("identical_to", &[b.code])))
            }
            Expr::IsNotDistinctFrom(a, b) => {
                let (a, b) = (self.expr(a, cx)?, self.expr(b, cx)?);
                Ok(a.method("identical_to", &[b.code]))
            }
            Expr::Between { expr: inner, negated, low, high } => {
                let value = self.expr(inner, cx)?;
                let (low, high) = (self.expr(low, cx)?, self.expr(high, cx)?);
                let between = value.method("between", &[low.code, high.code]);
                Ok(if *negated { not(between) } else { between })
            }
            // `x = ANY (subquery)` is `x IN (subquery)` and `x <> ALL (subquery)` is `x NOT IN
            // (subquery)`, NULLs included; other ANY/ALL comparisons are refused below.
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } | Expr::AllOp { left, compare_op: BinaryOperator::NotEq, right }
                if matches!(right.as_ref(), Expr::Subquery(_)) =>
            {
                let Expr::Subquery(query) = right.as_ref() else { unreachable!("matched above") };
                let negated = matches!(expr, Expr::AllOp { .. });
                self.expr(&Expr::In { expr: left.clone(), target: InTarget::Subquery(query.clone()), negated, global: false }, cx)
            }
            // Over an array literal they are IN / NOT IN a list.
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } | Expr::AllOp { left, compare_op: BinaryOperator::NotEq, right }
                if let Expr::Array(array) = unparenthesized(right) =>
            {
                let negated = matches!(expr, Expr::AllOp { .. });
                self.expr(&Expr::In { expr: left.clone(), target: InTarget::List(array.elem.clone()), negated, global: false }, cx)
            }
            // `x = ANY (list)`: the list contains x where that decides a filter (see
            // `filter_context`), else SQL's three-valued answer; `x <> ALL (list)` is its negation.
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } => {
                let (list, value) = (self.expr(right, cx)?, self.expr(left, cx)?);
                if self.filtering.contains(&expr.span().start) {
                    return Ok(list.method("contains", &[value.code]));
                }
                Ok(self.any_equal(&list, &value))
            }
            Expr::AllOp { left, compare_op: BinaryOperator::NotEq, right } => {
                let (list, value) = (self.expr(right, cx)?, self.expr(left, cx)?);
                Ok(not(self.any_equal(&list, &value)))
            }
            // `(a, b) IN (SELECT x, y ...)` where it decides a filter (see `filter_context`).
            Expr::In { expr: inner, target: InTarget::Subquery(query), negated: false, global: false }
                if self.filtering.contains(&expr.span().start)
                    && let Expr::Tuple(items) = inner.as_ref() =>
            {
                self.row_in_subquery(items, query, cx)
            }
            Expr::In { expr: inner, target, negated, global: false } => {
                let value = self.expr(inner, cx)?;
                match target {
                    InTarget::List(items) => {
                        let mut codes = Vec::new();
                        for item in items {
                            codes.push(self.expr(item, cx)?.code);
                        }
                        let method = if *negated { "notin" } else { "isin" };
                        Ok(value.method(method, &[format!("[{}]", codes.join(", "))]))
                    }
                    InTarget::Subquery(query) => {
                        let column = self.subquery_column(query, cx)?;
                        let isin = value.method("isin", &[column]);
                        Ok(if *negated { not(isin) } else { isin })
                    }
                    _ => Err(TranspileError::unsupported_at("IN UNNEST / IN table", expr)),
                }
            }
            Expr::Like { negated, any: false, expr: inner, pattern, escape_char: None } => {
                let like = self.expr(inner, cx)?.method("like", &[self.expr(pattern, cx)?.code]);
                Ok(if *negated { not(like) } else { like })
            }
            Expr::ILike { negated, any: false, expr: inner, pattern, escape_char: None } => {
                let like = self.expr(inner, cx)?.method("ilike", &[self.expr(pattern, cx)?.code]);
                Ok(if *negated { not(like) } else { like })
            }
            Expr::Like { negated, any: false, expr: inner, pattern, escape_char: Some(escape) }
            | Expr::ILike { negated, any: false, expr: inner, pattern, escape_char: Some(escape) } => {
                // Ibis's like() has no escape character: the pattern becomes an anchored regex.
                let (Some(pattern), Some(escape)) = (quoted_string(pattern), quoted_string(escape)) else {
                    return Err(TranspileError::unsupported_at("LIKE ... ESCAPE with a pattern or escape that is not a string literal", expr));
                };
                let mut escape_chars = escape.chars();
                let (Some(escape), None) = (escape_chars.next(), escape_chars.next()) else {
                    return Err(TranspileError::unsupported_at("an ESCAPE that is not one character", expr));
                };
                let regex = like_regex(&pattern, escape, matches!(expr, Expr::ILike { .. }));
                let found = self.expr(inner, cx)?.method("re_search", &[python::string(&regex)]);
                Ok(if *negated { not(found) } else { found })
            }
            // DuckDB's SIMILAR TO matches a regular expression against the whole string.
            Expr::SimilarTo { negated, expr: inner, pattern, escape_char: None } => {
                let Some(pattern) = quoted_string(pattern) else {
                    return Err(TranspileError::unsupported_at("SIMILAR TO with a pattern that is not a string literal", expr));
                };
                let found = self.expr(inner, cx)?.method("re_search", &[python::string(&format!("^(?:{pattern})$"))]);
                Ok(if *negated { not(found) } else { found })
            }
            Expr::RLike { negated, expr: inner, pattern, .. } => {
                let found = self.expr(inner, cx)?.method("re_search", &[self.expr(pattern, cx)?.code]);
                Ok(if *negated { not(found) } else { found })
            }
            Expr::Cast { kind, expr: inner, data_type, format: None } => {
                let type_name = data_type.to_string();
                let ty = functions::ibis_type(&type_name).ok_or_else(|| TranspileError::unsupported_at(&format!("casts to {type_name}"), expr))?;
                let value = self.expr(inner, cx)?;
                let method = match kind {
                    CastKind::Cast | CastKind::DoubleColon => "cast",
                    CastKind::TryCast | CastKind::SafeCast => "try_cast",
                };
                if method == "cast" && value.literal && (ty == "date" || ty == "timestamp") {
                    return Ok(Py::atom(format!("ibis.{ty}({})", value.code)));
                }
                // Ibis drops a cast to the type it already gives a value; but for a decimal it
                // computes (a product, a mean) DuckDB's type has another scale, and the cast
                // rounds. Through a wider decimal first, the rounding stays.
                let computed = plain_column(inner, cx.scope).is_none() && !value.literal;
                if computed && types::decimal_parts(&ty).is_some() && ibis_type(inner, cx).is_some_and(|own| types::same(&own, &ty)) {
                    let wider = if types::same(&ty, ROUNDING_DECIMAL) { "decimal(38, 12)" } else { ROUNDING_DECIMAL };
                    return Ok(value.method(method, &[python::string(wider)]).method(method, &[python::string(&ty)]));
                }
                Ok(value.method(method, &[python::string(&ty)]))
            }
            Expr::Extract { field, expr: inner, .. } => self.extract_field(&field_name(field), inner, expr, cx),
            Expr::Ceil { expr: inner, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => Ok(self.expr(inner, cx)?.method("ceil", &[])),
            Expr::Floor { expr: inner, field: CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) } => Ok(self.expr(inner, cx)?.method("floor", &[])),
            Expr::Position { expr: needle, r#in } => {
                let haystack = self.expr(r#in, cx)?;
                let needle = self.expr(needle, cx)?;
                Ok(Py::op(format!("{} + 1", haystack.method("find", &[needle.code]).code), ADDITIVE))
            }
            Expr::Substring { expr: inner, substring_from, substring_for, .. } => {
                let value = self.expr(inner, cx)?;
                let start = match substring_from {
                    Some(from) => self.zero_based(from, cx)?,
                    None => "0".into(),
                };
                let mut args = vec![start];
                if let Some(length) = substring_for {
                    args.push(self.expr(length, cx)?.code);
                }
                Ok(value.method("substr", &args))
            }
            Expr::Trim { trim_where, trim_what: None, expr: inner, trim_characters: None } => {
                let method = match trim_where {
                    None | Some(TrimWhereField::Both) => "strip",
                    Some(TrimWhereField::Leading) => "lstrip",
                    Some(TrimWhereField::Trailing) => "rstrip",
                };
                Ok(self.expr(inner, cx)?.method(method, &[]))
            }
            Expr::Case { operand, conditions, else_result, .. } => {
                let mut results: Vec<Expr> = conditions.iter().map(|when| when.result.clone()).collect();
                results.extend(else_result.as_deref().cloned());
                let mut values = Vec::new();
                for result in &results {
                    values.push(self.expr(result, cx)?);
                }
                let mut values = common_decimals(&results, values, cx).into_iter();
                let mut branches = Vec::new();
                for when in conditions {
                    let condition = self.expr(&when.condition, cx)?.code;
                    let result = values.next().expect("a value per result").code;
                    branches.push(format!("({condition}, {result})"));
                }
                if let Some(default) = values.next()
                    && !(default.literal && default.code == "None")
                    && default.code != "ibis.null()"
                {
                    branches.push(format!("else_={}", default.code));
                }
                match operand {
                    Some(operand) => Ok(self.expr(operand, cx)?.method("cases", &branches)),
                    None => Ok(Py::atom(format!("ibis.cases({})", branches.join(", ")))),
                }
            }
            Expr::Function(function) => self.function(function, expr, cx),
            Expr::Array(array) => {
                if array.elem.is_empty() {
                    return Err(TranspileError::unsupported_at("an empty array literal (its element type is unknown)", expr));
                }
                let mut elements = Vec::new();
                for element in &array.elem {
                    elements.push(self.expr(element, cx)?.code);
                }
                Ok(Py::atom(format!("ibis.array([{}])", elements.join(", "))))
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                if let Some(access) = field_access(expr, cx.scope) {
                    return self.struct_field(&access, expr, cx);
                }
                let mut value = self.expr(root, cx)?;
                for access in access_chain {
                    let subscript = match access {
                        AccessExpr::Subscript(Subscript::Index { index }) => array_index(index)?,
                        AccessExpr::Dot(Expr::Identifier(field)) => python::string(&field.value),
                        _ => return Err(TranspileError::unsupported_at("list slices", expr)),
                    };
                    value = Py::atom(format!("{}[{subscript}]", value.receiver()));
                }
                Ok(value)
            }
            Expr::Lambda(_) => Err(TranspileError::unsupported_at("a lambda outside list_transform and list_filter", expr)),
            // `(SELECT 42)`, `(SELECT o.x + 1)`: the value itself.
            Expr::Subquery(query) if let Some(value) = lone_value(query) => self.expr(value, cx),
            Expr::Subquery(query) => {
                let rel = self.query(query, cx.scope)?;
                if rel.columns.len() != 1 {
                    return Err(TranspileError::resolve_at(format!("a scalar subquery must return one column, not {}", rel.columns.len()), expr));
                }
                let receiver = self.relation_receiver(rel.chain);
                Ok(Py::atom(format!("{receiver}.as_scalar()")))
            }
            Expr::Exists { subquery, negated } => {
                let exists = self.exists(subquery, cx)?;
                Ok(if *negated { not(exists) } else { exists })
            }
            _ => Err(TranspileError::unsupported_at(&describe(expr), expr)),
        }
    }

    /// Keys, aggregates and SELECT aliases that stand for an already computed column.
    fn lookup(&mut self, expr: &Expr, cx: &Cx) -> Result<Option<Py>, TranspileError> {
        if let Phase::Aggregated(aggregation) = cx.phase {
            let source = cx.scope.parent.unwrap_or(cx.scope);
            let same = |candidate: &Expr| candidate == expr || same_column(candidate, expr, source);
            if let Some((_, name)) = aggregation.keys.iter().chain(&aggregation.metrics).find(|(e, _)| same(e)) {
                return Ok(Some(Py::atom(python::attribute("_", name))));
            }
        }
        if let Expr::Identifier(ident) = expr
            && let Some((_, aliased)) = cx.aliases.iter().find(|(name, _)| name.eq_ignore_ascii_case(&ident.value))
            && aliased != expr
        {
            let is_column = match cx.phase {
                Phase::Source => cx.scope.resolve(None, &ident.value, ident.span).is_ok_and(|r| r.depth == 0),
                Phase::Aggregated(_) => false,
            };
            if cx.prefer_alias || !is_column {
                return self.expr(aliased, &cx.without_aliases()).map(Some);
            }
        }
        Ok(None)
    }

    fn column(&mut self, qualifier: Option<&str>, name: &str, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        if qualifier.is_none()
            && let Some(parameter) = cx.scope.lambda_parameter(name)
        {
            return Ok(Py::atom(parameter.to_string()));
        }
        let resolved = cx.scope.resolve(qualifier, name, expr.span())?;
        if let Phase::Aggregated(_) = cx.phase
            && resolved.depth == 1
        {
            return Err(TranspileError::resolve_at(format!("column `{name}` must appear in GROUP BY or be used in an aggregate function"), expr));
        }
        Ok(Py::atom(cx.scope.reference(&resolved)))
    }

    /// `EXTRACT(unit FROM value)`; from a timestamp difference only the epoch (its seconds,
    /// fractions included, from the exact difference in microseconds).
    pub(super) fn extract_field(&mut self, unit: &str, inner: &Expr, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        if ibis_type(inner, cx).is_some_and(|ty| types::is_interval(&ty)) {
            let Expr::BinaryOp { left, op: BinaryOperator::Minus, right } = unparenthesized(inner) else {
                return Err(TranspileError::unsupported_at("extracting from an interval that is not a difference of two timestamps", expr));
            };
            if unit != "epoch" {
                return Err(TranspileError::unsupported_at(
                    &format!("extracting {unit} from an interval (EXTRACT(EPOCH FROM ...) gives its length in seconds: divide by 86400 for days)"),
                    expr,
                ));
            }
            let (later, earlier) = (self.expr(left, cx)?, self.expr(right, cx)?);
            let micros = later.method("delta", &[earlier.code, "unit=\"microsecond\"".into()]);
            return Ok(Py::op(format!("{} / 1_000_000", micros.code), MULTIPLICATIVE));
        }
        let value = self.expr(inner, cx)?;
        extract(unit, value, expr)
    }

    /// `x = ANY (list)` as DuckDB answers it: false for a NULL or empty list, true if an
    /// element equals x, NULL if none does but one comparison is NULL (a NULL element, or x).
    fn any_equal(&mut self, list: &Py, value: &Py) -> Py {
        let mut element = "element".to_string();
        while self.is_variable(&element) {
            element.push('_');
        }
        let list = list.receiver();
        let equal = format!("{element} == {}", value.operand(COMPARISON + 1));
        Py::atom(format!(
            "ibis.cases(({list}.isnull(), False), ({list}.map(lambda {element}: {equal}).anys(), True), ({list}.map(lambda {element}: ({equal}).isnull()).anys(), ibis.null(\"boolean\")), else_=False)"
        ))
    }

    /// A struct column's field, which after a GROUP BY is reachable only as a key.
    fn struct_field(&mut self, access: &structs::FieldAccess, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        if let Phase::Aggregated(_) = cx.phase
            && access.column.depth == 1
        {
            return Err(TranspileError::resolve_at(format!("the field `{expr}` must appear in GROUP BY or be used in an aggregate function"), expr));
        }
        Ok(Py::atom(access.code(cx.scope)))
    }

    fn binary(&mut self, left: &Expr, op: &BinaryOperator, right: &Expr, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        let (l, r) = (self.expr(left, cx)?, self.expr(right, cx)?);
        let (symbol, prec) = match op {
            BinaryOperator::Plus => ("+", ADDITIVE),
            BinaryOperator::Minus => ("-", ADDITIVE),
            BinaryOperator::Multiply => ("*", MULTIPLICATIVE),
            BinaryOperator::Divide => ("/", MULTIPLICATIVE),
            BinaryOperator::DuckIntegerDivide | BinaryOperator::MyIntegerDivide => ("//", MULTIPLICATIVE),
            BinaryOperator::Modulo => ("%", MULTIPLICATIVE),
            BinaryOperator::Eq => ("==", COMPARISON),
            BinaryOperator::NotEq => ("!=", COMPARISON),
            BinaryOperator::Gt => (">", COMPARISON),
            BinaryOperator::Lt => ("<", COMPARISON),
            BinaryOperator::GtEq => (">=", COMPARISON),
            BinaryOperator::LtEq => ("<=", COMPARISON),
            BinaryOperator::And => ("&", AND),
            BinaryOperator::Or => ("|", OR),
            BinaryOperator::StringConcat => return Ok(l.method("concat", &[r.code])),
            BinaryOperator::PGExp => ("**", POWER),
            _ => return Err(TranspileError::unsupported_at(&format!("the operator {op}"), expr)),
        };
        // Only arithmetic and comparisons read the operands' types (inferring them walks the
        // operands again, which a long chain of ANDs would pay at every level).
        let typed = prec == COMPARISON || matches!(op, BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Modulo);
        let (lt, rt) = if typed { (ibis_type(left, cx), ibis_type(right, cx)) } else { (None, None) };
        // Date arithmetic by whole days, which Ibis spells with intervals and `delta`.
        if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) {
            let is_date = |t: &Option<String>| t.as_deref() == Some("date");
            let is_integer = |t: &Option<String>| t.as_deref().is_some_and(types::is_integer);
            if is_date(&lt) && is_integer(&rt) {
                return Ok(Py::op(format!("{} {symbol} ibis.interval(days={})", l.operand(ADDITIVE), r.code), ADDITIVE));
            }
            if is_date(&lt) && is_date(&rt) && *op == BinaryOperator::Minus {
                return Ok(l.method("delta", &[r.code, "unit=\"day\"".into()]));
            }
            if is_date(&lt) && as_interval_literal(right).is_some_and(|interval| has_time_units(interval, right)) {
                let timestamp = l.method("cast", &[python::string("timestamp")]);
                return Ok(Py::op(format!("{} {symbol} {}", timestamp.code, r.operand(ADDITIVE + 1)), ADDITIVE));
            }
        }
        let (mut l, mut r) = (l, r);
        // Ibis computes no common type for two decimals of another precision or scale.
        if let (Some(a), Some(b)) = (&lt, &rt) {
            let common = match op {
                BinaryOperator::Multiply => types::product_operands(a, b),
                _ if prec == COMPARISON || matches!(op, BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Modulo) => types::common_decimal(a, b),
                _ => None,
            };
            if let Some(common) = common {
                l = cast_unless(l, a, &common);
                r = cast_unless(r, b, &common);
            }
        }
        if prec == COMPARISON {
            // A timestamp difference is in seconds for Ibis, which compares no other unit with it.
            let is_difference = |t: &Option<String>| t.as_deref() == Some(types::TIMESTAMP_DIFFERENCE);
            if is_difference(&lt)
                && let Some(seconds) = as_interval_literal(right).and_then(|i| interval_seconds(i, right))
            {
                r = Py::atom(format!("ibis.interval(seconds={seconds})"));
            }
            if is_difference(&rt)
                && let Some(seconds) = as_interval_literal(left).and_then(|i| interval_seconds(i, left))
            {
                l = Py::atom(format!("ibis.interval(seconds={seconds})"));
            }
        }
        if l.literal && r.literal {
            l = Py::atom(l.value());
        }
        let left_min = if prec == COMPARISON || prec == POWER { prec + 1 } else { prec };
        let right_min = if prec == POWER { UNARY } else { prec + 1 };
        Ok(Py::op(format!("{} {symbol} {}", l.operand(left_min), r.operand(right_min)), prec))
    }

    /// A 1-based SQL position as Ibis's 0-based one.
    pub(super) fn zero_based(&mut self, position: &Expr, cx: &Cx) -> Result<String, TranspileError> {
        if let Expr::Value(v) = position
            && let Value::Number(n, _) = &v.value
            && let Ok(n) = n.parse::<i64>()
        {
            return Ok((n - 1).to_string());
        }
        Ok(format!("{} - 1", self.expr(position, cx)?.operand(ADDITIVE)))
    }
}

/// The one value of a SELECT without FROM and without anything else (`SELECT 42`).
fn lone_value(query: &Query) -> Option<&Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let plain = query.with.is_none()
        && query.order_by.is_none()
        && query.limit_clause.is_none()
        && select.from.is_empty()
        && select.selection.is_none()
        && select.having.is_none()
        && select.qualify.is_none()
        && select.distinct.is_none()
        && select.named_window.is_empty()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }] if plain && !contains_aggregate(value) => Some(value),
        _ => None,
    }
}

/// A list index as Ibis counts it: DuckDB counts from 1 (and from -1 at the end), Ibis from 0
/// (and from -1 at the end).
pub(super) fn array_index(index: &Expr) -> Result<String, TranspileError> {
    let signed = match index {
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => crate::ast::positional(expr).map(|n| -(n as i128)),
        _ => crate::ast::positional(index).map(|n| n as i128),
    };
    match signed {
        Some(n) if n > 0 => Ok((n - 1).to_string()),
        Some(n) if n < 0 => Ok(n.to_string()),
        _ => Err(TranspileError::unsupported_at("a list index that is not a whole number other than 0", index)),
    }
}

/// The decimal a computed value passes through on its way to a cast that Ibis would drop: room
/// for 28 integer digits and more decimals than any product or mean of the catalog's columns.
const ROUNDING_DECIMAL: &str = "decimal(38, 10)";

/// The values of one result (COALESCE's arguments, CASE's branches) with every decimal of them
/// cast to the decimal that holds them all, where they differ (Ibis computes no common type
/// for them); the others as they are.
pub(super) fn common_decimals(exprs: &[Expr], values: Vec<Py>, cx: &Cx) -> Vec<Py> {
    let decimals: Vec<Option<String>> = exprs.iter().map(|e| ibis_type(e, cx).filter(|ty| types::decimal_parts(ty).is_some())).collect();
    let mut common: Option<String> = None;
    for ty in decimals.iter().flatten() {
        common = Some(match common {
            None => ty.clone(),
            Some(current) => types::common_decimal(&current, ty).unwrap_or(current),
        });
    }
    let Some(common) = common else { return values };
    values
        .into_iter()
        .zip(&decimals)
        .map(|(value, ty)| match ty {
            Some(ty) => cast_unless(value, ty, &common),
            None => value,
        })
        .collect()
}

/// `value.cast(target)` unless the value already has that type.
pub(super) fn cast_unless(value: Py, ty: &str, target: &str) -> Py {
    if types::same(ty, target) { value } else { value.method("cast", &[python::string(target)]) }
}

/// The interval literal `expr` is, parentheses aside.
fn as_interval_literal(expr: &Expr) -> Option<&sqlparser::ast::Interval> {
    match unparenthesized(expr) {
        Expr::Interval(interval) if matches!(interval.value.as_ref(), Expr::Value(_)) => Some(interval),
        _ => None,
    }
}

fn describe(expr: &Expr) -> String {
    let text = expr.to_string();
    let head: String = text.chars().take(40).collect();
    match expr {
        Expr::AnyOp { .. } | Expr::AllOp { .. } => "ANY/ALL comparisons other than `= ANY` and `<> ALL` over a subquery".into(),
        Expr::Tuple(_) => "row values (tuples)".into(),
        Expr::SimilarTo { .. } => "SIMILAR TO ... ESCAPE".into(),
        Expr::AtTimeZone { .. } => "AT TIME ZONE".into(),
        Expr::Collate { .. } => "COLLATE".into(),
        Expr::Like { .. } | Expr::ILike { .. } => "LIKE ANY".into(),
        Expr::GroupingSets(_) | Expr::Rollup(_) | Expr::Cube(_) => "GROUPING SETS, ROLLUP and CUBE".into(),
        _ => format!("the expression `{head}`"),
    }
}
