//! Scalar expressions: columns, literals, operators, functions, CASE, casts, intervals,
//! aggregates, window functions and subqueries, emitted as Python with minimal parentheses.

use crate::error::TranspileError;
use crate::functions;
use crate::python;
use crate::query::{Translator, plain_column, sort_key};
use crate::scope::{Resolved, Scope};
use sqlparser::ast::{
    BinaryOperator, CastKind, CeilFloorKind, DateTimeField, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, InTarget, Query, SetExpr, Spanned, TableFactor, TrimWhereField, UnaryOperator, Value, WindowFrameBound, WindowFrameUnits, WindowType,
};

// Python operator precedence, loosest first.
const COMPARISON: u8 = 5;
const OR: u8 = 6;
const AND: u8 = 8;
const ADDITIVE: u8 = 10;
const MULTIPLICATIVE: u8 = 11;
const UNARY: u8 = 12;
const POWER: u8 = 13;
const ATOM: u8 = 20;

/// A Python expression and how tightly it binds.
#[derive(Clone, Debug)]
pub(crate) struct Py {
    pub code: String,
    prec: u8,
    /// A bare Python literal, which needs `ibis.literal(...)` to receive a method or stand alone.
    literal: bool,
}

impl Py {
    fn atom(code: String) -> Py {
        Py { code, prec: ATOM, literal: false }
    }

    fn literal(code: String) -> Py {
        Py { code, prec: ATOM, literal: true }
    }

    fn op(code: String, prec: u8) -> Py {
        Py { code, prec, literal: false }
    }

    /// The expression as an Ibis value.
    pub fn value(&self) -> String {
        if self.literal { format!("ibis.literal({})", self.code) } else { self.code.clone() }
    }

    /// The expression as the receiver of a method call.
    fn receiver(&self) -> String {
        if self.literal { format!("ibis.literal({})", self.code) } else { self.operand(ATOM) }
    }

    fn operand(&self, min_prec: u8) -> String {
        if self.prec < min_prec { format!("({})", self.code) } else { self.code.clone() }
    }

    fn method(&self, name: &str, args: &[String]) -> Py {
        Py::atom(format!("{}.{name}({})", self.receiver(), args.join(", ")))
    }
}

/// What the columns of an expression refer to.
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

impl Cx<'_> {
    fn without_aliases(&self) -> Cx<'_> {
        let phase = match self.phase {
            Phase::Source => Phase::Source,
            Phase::Aggregated(a) => Phase::Aggregated(a),
        };
        Cx { scope: self.scope, phase, aliases: &[], prefer_alias: false }
    }
}

impl Translator<'_> {
    pub(crate) fn expr(&mut self, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        if let Some(found) = self.lookup(expr, cx)? {
            return Ok(found);
        }
        match expr {
            Expr::Identifier(ident) => self.column(None, &ident.value, expr, cx),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [.., qualifier, column] => self.column(Some(&qualifier.value), &column.value, expr, cx),
                _ => Err(TranspileError::unsupported_at("this identifier", expr)),
            },
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
                Ok(value.method(method, &[python::string(&ty)]))
            }
            Expr::Extract { field, expr: inner, .. } => {
                let value = self.expr(inner, cx)?;
                extract(field_name(field).as_str(), value, expr)
            }
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
                let mut branches = Vec::new();
                for when in conditions {
                    let condition = self.expr(&when.condition, cx)?.code;
                    let result = self.expr(&when.result, cx)?.code;
                    branches.push(format!("({condition}, {result})"));
                }
                if let Some(default) = else_result {
                    let default = self.expr(default, cx)?;
                    if !(default.literal && default.code == "None") && default.code != "ibis.null()" {
                        branches.push(format!("else_={}", default.code));
                    }
                }
                match operand {
                    Some(operand) => Ok(self.expr(operand, cx)?.method("cases", &branches)),
                    None => Ok(Py::atom(format!("ibis.cases({})", branches.join(", ")))),
                }
            }
            Expr::Function(function) => self.function(function, expr, cx),
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
        let resolved = cx.scope.resolve(qualifier, name, expr.span())?;
        if let Phase::Aggregated(_) = cx.phase
            && resolved.depth == 1
        {
            return Err(TranspileError::resolve_at(format!("column `{name}` must appear in GROUP BY or be used in an aggregate function"), expr));
        }
        Ok(Py::atom(cx.scope.reference(&resolved)))
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
        // Date arithmetic by whole days, which Ibis spells with intervals and `delta`.
        if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) {
            let (lt, rt) = (static_type(left, cx), static_type(right, cx));
            let is_date = |t: &Option<String>| t.as_deref() == Some("date");
            let is_integer = |t: &Option<String>| t.as_deref().is_some_and(|t| t.starts_with("int"));
            if is_date(&lt) && is_integer(&rt) {
                return Ok(Py::op(format!("{} {symbol} ibis.interval(days={})", l.operand(ADDITIVE), r.code), ADDITIVE));
            }
            if is_date(&lt) && is_date(&rt) && *op == BinaryOperator::Minus {
                return Ok(l.method("delta", &[r.code, "unit=\"day\"".into()]));
            }
        }
        let mut l = l;
        if l.literal && r.literal {
            l = Py::atom(l.value());
        }
        let left_min = if prec == COMPARISON || prec == POWER { prec + 1 } else { prec };
        let right_min = if prec == POWER { UNARY } else { prec + 1 };
        Ok(Py::op(format!("{} {symbol} {}", l.operand(left_min), r.operand(right_min)), prec))
    }

    /// A 1-based SQL position as Ibis's 0-based one.
    fn zero_based(&mut self, position: &Expr, cx: &Cx) -> Result<String, TranspileError> {
        if let Expr::Value(v) = position
            && let Value::Number(n, _) = &v.value
            && let Ok(n) = n.parse::<i64>()
        {
            return Ok((n - 1).to_string());
        }
        Ok(format!("{} - 1", self.expr(position, cx)?.operand(ADDITIVE)))
    }

    /// A subquery used inside an expression: inline when short, else bound to a name; always
    /// bound when it uses `_`, which would otherwise be taken for the outer table's (and be
    /// rewritten with it by [`deferred_safe`]).
    fn relation_receiver(&mut self, chain: crate::chain::Chain) -> String {
        let inline = chain.inline();
        let uses_deferred = attribute_roots(&inline).iter().any(|(_, name)| *name == "_");
        if inline.len() > 70 || uses_deferred { self.bind("subquery", &chain) } else { inline }
    }

    /// The single column of an `IN (SELECT ...)` subquery.
    fn subquery_column(&mut self, query: &Query, cx: &Cx) -> Result<String, TranspileError> {
        let rel = self.query(query, cx.scope)?;
        let [column] = rel.columns.as_slice() else {
            return Err(TranspileError::resolve_at(format!("an IN subquery must return one column, not {}", rel.columns.len()), query));
        };
        let name = column.name.clone();
        let receiver = self.relation_receiver(rel.chain);
        Ok(python::attribute(&receiver, &name))
    }

    /// EXISTS over one table with a WHERE becomes `(condition).any()`, which Ibis compiles to a
    /// correlated EXISTS; anything else counts the rows of the subquery.
    fn exists(&mut self, query: &Query, cx: &Cx) -> Result<Py, TranspileError> {
        if let SetExpr::Select(select) = query.body.as_ref()
            && query.with.is_none()
            && query.order_by.is_none()
            && query.limit_clause.is_none()
            && select.from.len() == 1
            && select.from[0].joins.is_empty()
            && matches!(select.from[0].relation, TableFactor::Table { .. })
            && matches!(&select.group_by, sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
            && select.having.is_none()
            && select.qualify.is_none()
            && let Some(selection) = &select.selection
        {
            let mut scope = Scope::child(cx.scope);
            self.add_source_for_exists(&select.from[0].relation, &mut scope)?;
            let inner = Cx { scope: &scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
            let condition = self.expr(selection, &inner)?;
            return Ok(condition.method("any", &[]));
        }
        let rel = self.query(query, cx.scope)?;
        let receiver = self.relation_receiver(rel.chain);
        Ok(Py::op(format!("{receiver}.count() > 0"), COMPARISON))
    }

    fn function(&mut self, function: &Function, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        let name = function_name(function);
        if function.null_treatment.is_some() || (!function.within_group.is_empty() && function.over.is_some()) {
            return Err(TranspileError::unsupported_at(&format!("{name}(...) IGNORE NULLS or WITHIN GROUP ... OVER"), expr));
        }
        let (args, star, distinct) = match &function.args {
            FunctionArguments::None => (Vec::new(), false, false),
            FunctionArguments::Subquery(_) => return Err(TranspileError::unsupported_at("a subquery as a function argument", expr)),
            FunctionArguments::List(list) => {
                let mut filter_clause = false;
                for clause in &list.clauses {
                    match clause {
                        FunctionArgumentClause::Where(_) => filter_clause = true,
                        // Read by the aggregates that order their input (`string_agg(x, ',' ORDER BY y)`).
                        FunctionArgumentClause::OrderBy(_) if ORDERED_AGGREGATES.contains(&name.as_str()) && function.over.is_none() => {}
                        _ => return Err(TranspileError::unsupported_at(&format!("{name}(... {clause})"), expr)),
                    }
                }
                if filter_clause {
                    return Err(TranspileError::unsupported_at("WHERE inside function arguments", expr));
                }
                let mut args = Vec::new();
                let mut star = false;
                for arg in &list.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e.clone()),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => return Err(TranspileError::unsupported_at(&format!("named or qualified arguments to {name}"), expr)),
                    }
                }
                (args, star, matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)))
            }
        };
        if let [order] = function.within_group.as_slice() {
            // Ordered-set aggregates: the ordered column is the value.
            if let Phase::Aggregated(_) = cx.phase {
                return Err(TranspileError::unsupported_at("an aggregate that is not computed by the GROUP BY", expr));
            }
            let ascending = crate::query::ascending(&order.options);
            let filter = function.filter.as_deref();
            return match (name.as_str(), args.as_slice()) {
                ("percentile_cont" | "quantile_cont", [fraction]) if ascending => {
                    self.aggregate("quantile_cont", &[order.expr.clone(), fraction.clone()], false, false, filter, expr, cx)
                }
                ("mode", []) => self.aggregate("mode", std::slice::from_ref(&order.expr), false, false, filter, expr, cx),
                _ => Err(TranspileError::unsupported_at(&format!("{name}(...) WITHIN GROUP (ORDER BY ...{})", if ascending { "" } else { " DESC" }), expr)),
            };
        }
        if !function.within_group.is_empty() {
            return Err(TranspileError::unsupported_at(&format!("{name}(...) WITHIN GROUP with several keys"), expr));
        }
        if let Some(over) = &function.over {
            let WindowType::WindowSpec(spec) = over else {
                return Err(TranspileError::unsupported_at("a named window this SELECT does not define", expr));
            };
            if spec.window_name.is_some() {
                return Err(TranspileError::unsupported_at("a named window this SELECT does not define", expr));
            }
            return self.window(&name, &args, star, distinct, function, spec, expr, cx);
        }
        if functions::is_window_only(&name) {
            return Err(TranspileError::resolve_at(format!("{name}() needs an OVER clause"), expr));
        }
        if functions::is_aggregate(&name) {
            if let Phase::Aggregated(_) = cx.phase {
                return Err(TranspileError::unsupported_at("an aggregate that is not computed by the GROUP BY", expr));
            }
            return self.aggregate(&name, &args, star, distinct, function.filter.as_deref(), expr, cx);
        }
        if distinct || function.filter.is_some() {
            return Err(TranspileError::resolve_at(format!("DISTINCT or FILTER on the non-aggregate {name}()"), expr));
        }
        self.scalar_function(&name, &args, expr, cx)
    }

    #[allow(clippy::too_many_arguments)]
    fn aggregate(&mut self, name: &str, args: &[Expr], star: bool, distinct: bool, filter: Option<&Expr>, expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        let mut extra: Vec<String> = Vec::new();
        if let Some(filter) = filter {
            extra.push(format!("where={}", self.expr(filter, cx)?.code));
        }
        if let Some(order) = argument_order(expr) {
            let mut keys = Vec::new();
            for key in order {
                let code = self.expr(&key.expr, cx)?.value();
                keys.push(sort_key(code, &key.options));
            }
            extra.push(format!("order_by=[{}]", keys.join(", ")));
        }
        // Ibis counts distinct values (`nunique`); min and max are the same without DISTINCT.
        if distinct && !matches!(name, "count" | "min" | "max") {
            return Err(TranspileError::unsupported_at(&format!("{name}(DISTINCT ...)"), expr));
        }
        let arity = |n: usize| -> Result<(), TranspileError> {
            if args.len() == n { Ok(()) } else { Err(TranspileError::resolve_at(format!("{name}() takes {n} argument(s) here"), expr)) }
        };
        match name {
            "count" if star || args.is_empty() => Ok(Py::atom(format!("_.count({})", extra.join(", ")))),
            "count" if distinct => {
                arity(1)?;
                Ok(self.expr(&args[0], cx)?.method("nunique", &extra))
            }
            "count_if" | "countif" => {
                arity(1)?;
                let condition = self.expr(&args[0], cx)?.code;
                let condition = match filter {
                    Some(_) => return Err(TranspileError::unsupported_at("count_if with FILTER", expr)),
                    None => condition,
                };
                Ok(Py::atom(format!("_.count(where={condition})")))
            }
            "array_agg" | "list" => {
                arity(1)?;
                // SQL keeps NULL elements; `collect` drops them unless told.
                extra.push("include_null=True".into());
                Ok(self.expr(&args[0], cx)?.method("collect", &extra))
            }
            "string_agg" | "listagg" | "group_concat" => {
                let value = self.expr(&args[0], cx)?;
                let mut call = Vec::new();
                match args.get(1) {
                    Some(separator) => call.push(self.expr(separator, cx)?.code),
                    None => call.push(python::string(",")),
                }
                call.extend(extra);
                Ok(value.method("group_concat", &call))
            }
            "quantile_cont" => {
                arity(2)?;
                let value = self.expr(&args[0], cx)?;
                let mut call = vec![self.expr(&args[1], cx)?.code];
                call.extend(extra);
                Ok(value.method("quantile", &call))
            }
            "corr" | "covar_samp" | "covar_pop" | "arg_max" | "arg_min" | "argmax" | "argmin" | "max_by" | "min_by" => {
                arity(2)?;
                let value = self.expr(&args[0], cx)?;
                let mut call = vec![self.expr(&args[1], cx)?.code];
                let method = match name {
                    "corr" => "corr",
                    "covar_samp" => "cov",
                    "covar_pop" => {
                        call.push("how=\"pop\"".into());
                        "cov"
                    }
                    "arg_max" | "argmax" | "max_by" => "argmax",
                    _ => "argmin",
                };
                call.extend(extra);
                Ok(value.method(method, &call))
            }
            _ => {
                let (method, fixed) =
                    functions::aggregate_method(name).ok_or_else(|| TranspileError::unsupported_at(&format!("the aggregate {name}()"), expr))?;
                arity(1)?;
                let value = self.expr(&args[0], cx)?;
                let mut call: Vec<String> = if fixed.is_empty() { Vec::new() } else { vec![fixed.to_string()] };
                call.extend(extra);
                Ok(value.method(method, &call))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn window(
        &mut self,
        name: &str,
        args: &[Expr],
        star: bool,
        distinct: bool,
        function: &Function,
        spec: &sqlparser::ast::WindowSpec,
        expr: &Expr,
        cx: &Cx,
    ) -> Result<Py, TranspileError> {
        let (base, one_based) = match name {
            "row_number" => (Py::atom("ibis.row_number()".into()), true),
            "rank" => (Py::atom("ibis.rank()".into()), true),
            "dense_rank" => (Py::atom("ibis.dense_rank()".into()), true),
            "percent_rank" => (Py::atom("ibis.percent_rank()".into()), false),
            "cume_dist" => (Py::atom("ibis.cume_dist()".into()), false),
            "ntile" => (Py::atom(format!("ibis.ntile({})", self.expr(first_arg(args, name, expr)?, cx)?.code)), true),
            "lag" | "lead" => {
                let value = self.expr(first_arg(args, name, expr)?, cx)?;
                let mut call = Vec::new();
                for arg in &args[1..] {
                    call.push(self.expr(arg, cx)?.code);
                }
                (value.method(name, &call), false)
            }
            "first_value" => (self.expr(first_arg(args, name, expr)?, cx)?.method("first", &[]), false),
            "last_value" => (self.expr(first_arg(args, name, expr)?, cx)?.method("last", &[]), false),
            "nth_value" => {
                let value = self.expr(first_arg(args, name, expr)?, cx)?;
                let n = args.get(1).ok_or_else(|| TranspileError::resolve_at("nth_value() takes 2 arguments".into(), expr))?;
                let n = self.zero_based(n, cx)?;
                (value.method("nth", &[n]), false)
            }
            _ if functions::is_aggregate(name) => {
                let source_cx = Cx {
                    scope: cx.scope,
                    phase: match cx.phase {
                        Phase::Source => Phase::Source,
                        Phase::Aggregated(a) => Phase::Aggregated(a),
                    },
                    aliases: &[],
                    prefer_alias: false,
                };
                (self.window_aggregate(name, args, star, distinct, function.filter.as_deref(), expr, &source_cx)?, false)
            }
            _ => return Err(TranspileError::unsupported_at(&format!("the window function {name}()"), expr)),
        };
        let mut over = Vec::new();
        if !spec.partition_by.is_empty() {
            let mut keys = Vec::new();
            for key in &spec.partition_by {
                keys.push(self.expr(key, cx)?.value());
            }
            over.push(format!("group_by={}", list_or_single(keys)));
        }
        if !spec.order_by.is_empty() {
            let mut keys = Vec::new();
            for order in &spec.order_by {
                let code = self.expr(&order.expr, cx)?.value();
                keys.push(sort_key(code, &order.options));
            }
            over.push(format!("order_by={}", list_or_single(keys)));
        }
        match &spec.window_frame {
            Some(frame) if !functions::ignores_frame(name) => {
                let keyword = match frame.units {
                    WindowFrameUnits::Rows => "rows",
                    WindowFrameUnits::Range => "range",
                    WindowFrameUnits::Groups => return Err(TranspileError::unsupported_at("GROUPS frames", expr)),
                };
                let start = frame_bound(&frame.start_bound, expr)?;
                let end = match &frame.end_bound {
                    Some(bound) => frame_bound(bound, expr)?,
                    None => "0".into(),
                };
                over.push(format!("{keyword}=({start}, {end})"));
            }
            None if !functions::ignores_frame(name) && !spec.order_by.is_empty() => {
                // SQL's default frame with ORDER BY ends at the current row; Ibis's spans the partition.
                over.push("range=(None, 0)".into());
            }
            _ => {}
        }
        let windowed = base.method("over", &over);
        Ok(if one_based { Py::op(format!("{} + 1", windowed.code), ADDITIVE) } else { windowed })
    }

    #[allow(clippy::too_many_arguments)]
    fn window_aggregate(
        &mut self,
        name: &str,
        args: &[Expr],
        star: bool,
        distinct: bool,
        filter: Option<&Expr>,
        expr: &Expr,
        cx: &Cx,
    ) -> Result<Py, TranspileError> {
        if name == "count" && (star || args.is_empty()) {
            // COUNT(*) counts the rows of the relation at hand, which only `_` names.
            let filter = match filter {
                Some(f) => format!("where={}", self.expr(f, cx)?.code),
                None => String::new(),
            };
            return Ok(Py::atom(format!("_.count({filter})")));
        }
        match cx.phase {
            Phase::Source => self.aggregate(name, args, star, distinct, filter, expr, cx),
            Phase::Aggregated(_) => {
                // An aggregate over the aggregated rows (`SUM(SUM(x)) OVER ()`): its argument is a metric.
                let value = self.expr(first_arg(args, name, expr)?, cx)?;
                let (method, fixed) =
                    functions::aggregate_method(name).ok_or_else(|| TranspileError::unsupported_at(&format!("the window aggregate {name}()"), expr))?;
                Ok(value.method(method, &if fixed.is_empty() { Vec::new() } else { vec![fixed.to_string()] }))
            }
        }
    }

    fn scalar_function(&mut self, name: &str, args: &[Expr], expr: &Expr, cx: &Cx) -> Result<Py, TranspileError> {
        let mut values = Vec::new();
        for arg in args {
            values.push(self.expr(arg, cx)?);
        }
        let need = |n: usize| -> Result<(), TranspileError> {
            if values.len() == n { Ok(()) } else { Err(TranspileError::resolve_at(format!("{name}() takes {n} argument(s) here"), expr)) }
        };
        let unit_of = |e: &Expr| -> Option<String> {
            match e {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => Some(s.to_ascii_lowercase()),
                    _ => None,
                },
                Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
                _ => None,
            }
        };
        let method0 = |m: &str, values: &[Py]| -> Result<Py, TranspileError> { Ok(values[0].method(m, &[])) };
        match name {
            "lower" | "lcase" => {
                need(1)?;
                method0("lower", &values)
            }
            "upper" | "ucase" => {
                need(1)?;
                method0("upper", &values)
            }
            "length" | "char_length" | "character_length" | "len" | "strlen" => {
                need(1)?;
                method0("length", &values)
            }
            "trim" | "btrim" if values.len() == 1 => method0("strip", &values),
            "ltrim" if values.len() == 1 => method0("lstrip", &values),
            "rtrim" if values.len() == 1 => method0("rstrip", &values),
            "reverse" => {
                need(1)?;
                method0("reverse", &values)
            }
            "abs" => {
                need(1)?;
                method0("abs", &values)
            }
            "ceil" | "ceiling" => {
                need(1)?;
                method0("ceil", &values)
            }
            "floor" => {
                need(1)?;
                method0("floor", &values)
            }
            "sqrt" => {
                need(1)?;
                method0("sqrt", &values)
            }
            "exp" => {
                need(1)?;
                method0("exp", &values)
            }
            "ln" => {
                need(1)?;
                method0("ln", &values)
            }
            "log10" | "log" if values.len() == 1 => method0("log10", &values),
            "log2" => {
                need(1)?;
                method0("log2", &values)
            }
            "sign" => {
                need(1)?;
                method0("sign", &values)
            }
            "year" => {
                need(1)?;
                method0("year", &values)
            }
            "month" => {
                need(1)?;
                method0("month", &values)
            }
            "day" | "dayofmonth" => {
                need(1)?;
                method0("day", &values)
            }
            "hour" => {
                need(1)?;
                method0("hour", &values)
            }
            "minute" => {
                need(1)?;
                method0("minute", &values)
            }
            "second" => {
                need(1)?;
                method0("second", &values)
            }
            "quarter" => {
                need(1)?;
                method0("quarter", &values)
            }
            "dayofyear" => {
                need(1)?;
                method0("day_of_year", &values)
            }
            "week" | "weekofyear" => {
                need(1)?;
                method0("week_of_year", &values)
            }
            "dayofweek" | "dow" => {
                need(1)?;
                extract("dow", values.remove(0), expr)
            }
            "isodow" => {
                need(1)?;
                extract("isodow", values.remove(0), expr)
            }
            "epoch" => {
                need(1)?;
                method0("epoch_seconds", &values)
            }
            "round" => match values.len() {
                1 => method0("round", &values),
                2 => Ok(values[0].method("round", &[values[1].code.clone()])),
                _ => Err(TranspileError::resolve_at("round() takes 1 or 2 arguments".into(), expr)),
            },
            "power" | "pow" => {
                need(2)?;
                Ok(Py::op(format!("{} ** {}", values[0].operand(POWER + 1), values[1].operand(UNARY)), POWER))
            }
            "mod" => {
                need(2)?;
                Ok(Py::op(format!("{} % {}", values[0].operand(MULTIPLICATIVE), values[1].operand(MULTIPLICATIVE + 1)), MULTIPLICATIVE))
            }
            "coalesce" | "ifnull" => {
                if values.len() < 2 {
                    return Err(TranspileError::resolve_at(format!("{name}() takes at least 2 arguments"), expr));
                }
                Ok(Py::atom(format!("ibis.coalesce({})", values.iter().map(|v| v.code.clone()).collect::<Vec<_>>().join(", "))))
            }
            "nullif" => {
                need(2)?;
                Ok(values[0].method("nullif", &[values[1].code.clone()]))
            }
            "greatest" | "least" => Ok(Py::atom(format!("ibis.{name}({})", values.iter().map(|v| v.code.clone()).collect::<Vec<_>>().join(", ")))),
            "if" | "iff" => {
                need(3)?;
                Ok(Py::atom(format!("ibis.ifelse({}, {}, {})", values[0].code, values[1].code, values[2].code)))
            }
            "replace" => {
                need(3)?;
                Ok(values[0].method("replace", &[values[1].code.clone(), values[2].code.clone()]))
            }
            "substr" | "substring" => {
                if !(2..=3).contains(&values.len()) {
                    return Err(TranspileError::resolve_at(format!("{name}() takes 2 or 3 arguments"), expr));
                }
                let mut call = vec![self.zero_based(&args[1], cx)?];
                if let Some(length) = values.get(2) {
                    call.push(length.code.clone());
                }
                Ok(values[0].method("substr", &call))
            }
            "left" => {
                need(2)?;
                Ok(values[0].method("left", &[values[1].code.clone()]))
            }
            "right" => {
                need(2)?;
                Ok(values[0].method("right", &[values[1].code.clone()]))
            }
            "starts_with" | "prefix" => {
                need(2)?;
                Ok(values[0].method("startswith", &[values[1].code.clone()]))
            }
            "ends_with" | "suffix" => {
                need(2)?;
                Ok(values[0].method("endswith", &[values[1].code.clone()]))
            }
            "contains" => {
                need(2)?;
                Ok(values[0].method("contains", &[values[1].code.clone()]))
            }
            "strpos" | "instr" => {
                need(2)?;
                Ok(Py::op(format!("{} + 1", values[0].method("find", &[values[1].code.clone()]).code), ADDITIVE))
            }
            "lpad" | "rpad" => {
                need(3)?;
                Ok(values[0].method(name, &[values[1].code.clone(), values[2].code.clone()]))
            }
            "repeat" => {
                need(2)?;
                Ok(values[0].method("repeat", &[values[1].code.clone()]))
            }
            "regexp_matches" | "regexp_like" => {
                need(2)?;
                Ok(values[0].method("re_search", &[values[1].code.clone()]))
            }
            "regexp_extract" => {
                let group = values.get(2).map(|v| v.code.clone()).unwrap_or_else(|| "0".into());
                if values.len() < 2 {
                    return Err(TranspileError::resolve_at("regexp_extract() takes 2 or 3 arguments".into(), expr));
                }
                Ok(values[0].method("re_extract", &[values[1].code.clone(), group]))
            }
            "split_part" => {
                need(3)?;
                // DuckDB counts parts from 1, and past the last part returns '' (NULL only for a
                // NULL string); an Ibis array index past the end is NULL, hence the fill.
                let index = crate::query::positional(&args[2])
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| TranspileError::unsupported_at("split_part with a part number that is not a positive integer literal", &args[2]))?;
                if !values[1].literal || values[1].code.len() <= 2 {
                    return Err(TranspileError::unsupported_at("split_part with a separator that is not a non-empty string literal", &args[1]));
                }
                let part = format!("{}[{}]", values[0].method("split", &[values[1].code.clone()]).code, index - 1);
                let string = values[0].receiver();
                Ok(Py::atom(format!("{string}.isnull().ifelse(ibis.null(\"string\"), {part}.fill_null(\"\"))")))
            }
            "concat_ws" => {
                // DuckDB's concat_ws skips NULL parts; Ibis's `sep.join([...])` compiles to it.
                let Some((separator, parts)) = values.split_first() else {
                    return Err(TranspileError::resolve_at("concat_ws() takes a separator and parts".into(), expr));
                };
                if parts.is_empty() {
                    return Err(TranspileError::resolve_at("concat_ws() takes a separator and parts".into(), expr));
                }
                let separator = if separator.literal { format!("ibis.literal({})", separator.code) } else { separator.operand(ATOM) };
                let parts: Vec<String> = parts.iter().map(|p| p.code.clone()).collect();
                Ok(Py::atom(format!("{separator}.join([{}])", parts.join(", "))))
            }
            "current_date" | "today" if values.is_empty() => Ok(Py::atom("ibis.today()".into())),
            "current_timestamp" | "now" | "get_current_timestamp" if values.is_empty() => Ok(Py::atom("ibis.now()".into())),
            "concat" => {
                if values.is_empty() {
                    return Err(TranspileError::resolve_at("concat() takes arguments".into(), expr));
                }
                // DuckDB's concat() skips NULLs, unlike `||`.
                let parts: Vec<String> =
                    values.iter().map(|v| if v.literal { v.code.clone() } else { v.method("fill_null", &[python::string("")]).code }).collect();
                let first = Py { code: parts[0].clone(), prec: ATOM, literal: values[0].literal };
                Ok(first.method("concat", &parts[1..]))
            }
            "date_trunc" | "datetrunc" => {
                need(2)?;
                let unit = unit_of(&args[0])
                    .and_then(|u| functions::truncate_unit(&u))
                    .ok_or_else(|| TranspileError::unsupported_at("this date_trunc unit", &args[0]))?;
                Ok(values[1].method("truncate", &[python::string(unit)]))
            }
            "date_part" | "datepart" => {
                need(2)?;
                let unit = unit_of(&args[0]).ok_or_else(|| TranspileError::unsupported_at("a date_part unit that is not a literal", &args[0]))?;
                extract(&unit, values.remove(1), expr)
            }
            "date_diff" | "datediff" | "date_sub" => {
                need(3)?;
                let unit =
                    unit_of(&args[0]).and_then(|u| functions::delta_unit(&u)).ok_or_else(|| TranspileError::unsupported_at("this date_diff unit", &args[0]))?;
                Ok(values[2].method("delta", &[values[1].code.clone(), format!("unit={}", python::string(unit))]))
            }
            "date_add" => {
                need(2)?;
                // DuckDB adds a whole number of days to a date; Ibis needs the interval.
                let days = static_type(&args[1], cx).is_some_and(|t| t.starts_with("int"));
                let amount = if days { format!("ibis.interval(days={})", values[1].code) } else { values[1].operand(ADDITIVE + 1) };
                Ok(Py::op(format!("{} + {amount}", values[0].operand(ADDITIVE)), ADDITIVE))
            }
            "strftime" => {
                need(2)?;
                Ok(values[0].method("strftime", &[values[1].code.clone()]))
            }
            "make_date" => {
                need(3)?;
                Ok(Py::atom(format!("ibis.date({}, {}, {})", values[0].code, values[1].code, values[2].code)))
            }
            "to_date" | "date" if values.len() == 1 => Ok(values[0].method("cast", &[python::string("date")])),
            _ => Err(TranspileError::unsupported_at(&format!("the function {name}()"), expr)),
        }
    }

    fn add_source_for_exists(&mut self, factor: &TableFactor, scope: &mut Scope) -> Result<(), TranspileError> {
        self.add_source(factor, scope)
    }
}

fn not(py: Py) -> Py {
    Py::op(format!("~{}", py.operand(UNARY)), UNARY)
}

fn first_arg<'e>(args: &'e [Expr], name: &str, expr: &Expr) -> Result<&'e Expr, TranspileError> {
    args.first().ok_or_else(|| TranspileError::resolve_at(format!("{name}() needs an argument"), expr))
}

fn list_or_single(mut items: Vec<String>) -> String {
    if items.len() == 1 { items.remove(0) } else { format!("[{}]", items.join(", ")) }
}

fn frame_bound(bound: &WindowFrameBound, expr: &Expr) -> Result<String, TranspileError> {
    let offset = |value: &Option<Box<Expr>>| -> Result<Option<String>, TranspileError> {
        match value.as_deref() {
            None => Ok(None),
            Some(Expr::Value(v)) => match &v.value {
                Value::Number(n, _) => Ok(Some(n.clone())),
                _ => Err(TranspileError::unsupported_at("a window frame offset that is not a number or interval", expr)),
            },
            // `RANGE BETWEEN INTERVAL 7 DAY PRECEDING AND CURRENT ROW`: Ibis takes the interval.
            Some(Expr::Interval(interval)) => Ok(Some(interval_literal(interval, expr)?.code)),
            Some(other) => Err(TranspileError::unsupported_at("a window frame offset that is not a number or interval", other)),
        }
    };
    Ok(match bound {
        WindowFrameBound::CurrentRow => "0".into(),
        WindowFrameBound::Preceding(value) => offset(value)?.map(|n| format!("-{n}")).unwrap_or_else(|| "None".into()),
        WindowFrameBound::Following(value) => offset(value)?.unwrap_or_else(|| "None".into()),
    })
}

fn literal(value: &Value, expr: &Expr) -> Result<Py, TranspileError> {
    Ok(match value {
        Value::Number(n, _) => Py::literal(n.clone()),
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::EscapedStringLiteral(s) | Value::NationalStringLiteral(s) => {
            Py::literal(python::string(s))
        }
        Value::Boolean(b) => Py::literal(if *b { "True".into() } else { "False".into() }),
        Value::Null => Py::atom("ibis.null()".into()),
        _ => return Err(TranspileError::unsupported_at(&format!("the literal {value}"), expr)),
    })
}

fn interval_literal(interval: &sqlparser::ast::Interval, expr: &Expr) -> Result<Py, TranspileError> {
    if interval.last_field.is_some() {
        return Err(TranspileError::unsupported_at("intervals with two fields (YEAR TO MONTH)", expr));
    }
    let text = match interval.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            _ => return Err(TranspileError::unsupported_at("this interval value", expr)),
        },
        _ => return Err(TranspileError::unsupported_at("an interval whose value is not a literal", expr)),
    };
    let mut parts = Vec::new();
    match &interval.leading_field {
        Some(field) => {
            let unit = field_name(field);
            let keyword = functions::interval_keyword(&unit).ok_or_else(|| TranspileError::unsupported_at(&format!("{unit} intervals"), expr))?;
            let amount: i64 = text.trim().parse().map_err(|_| TranspileError::unsupported_at("an interval amount that is not a whole number", expr))?;
            parts.push(format!("{keyword}={amount}"));
        }
        None => {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() || words.len() % 2 != 0 {
                return Err(TranspileError::unsupported_at(&format!("the interval '{text}'"), expr));
            }
            for pair in words.chunks(2) {
                let amount: i64 = pair[0].parse().map_err(|_| TranspileError::unsupported_at(&format!("the interval '{text}'"), expr))?;
                let keyword = functions::interval_keyword(&pair[1].to_ascii_lowercase())
                    .ok_or_else(|| TranspileError::unsupported_at(&format!("the interval '{text}'"), expr))?;
                parts.push(format!("{keyword}={amount}"));
            }
        }
    }
    Ok(Py::atom(format!("ibis.interval({})", parts.join(", "))))
}

fn field_name(field: &DateTimeField) -> String {
    match field {
        DateTimeField::Custom(ident) => ident.value.to_ascii_lowercase(),
        DateTimeField::Week(_) => "week".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

fn extract(unit: &str, value: Py, expr: &Expr) -> Result<Py, TranspileError> {
    let method = match unit {
        "year" | "years" | "y" => "year",
        "month" | "months" | "mon" => "month",
        "day" | "days" | "d" | "dayofmonth" => "day",
        "hour" | "hours" | "h" => "hour",
        "minute" | "minutes" | "m" => "minute",
        "second" | "seconds" | "s" => "second",
        "quarter" => "quarter",
        "week" | "weeks" | "isoweek" | "weekofyear" => "week_of_year",
        "doy" | "dayofyear" => "day_of_year",
        "epoch" => "epoch_seconds",
        "dow" | "dayofweek" => {
            // SQL counts from Sunday = 0, Ibis from Monday = 0.
            return Ok(Py::op(format!("({}.day_of_week.index() + 1) % 7", value.receiver()), MULTIPLICATIVE));
        }
        "isodow" => return Ok(Py::op(format!("{}.day_of_week.index() + 1", value.receiver()), ADDITIVE)),
        _ => return Err(TranspileError::unsupported_at(&format!("extracting {unit}"), expr)),
    };
    Ok(value.method(method, &[]))
}

/// The Ibis type of a column reference, typed literal or cast, where it is known without
/// inference.
fn static_type(expr: &Expr, cx: &Cx) -> Option<String> {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
            let scope = match cx.phase {
                Phase::Source => cx.scope,
                Phase::Aggregated(_) => return None,
            };
            plain_column(expr, scope).and_then(|r: Resolved| r.ty)
        }
        Expr::Nested(inner) => static_type(inner, cx),
        Expr::TypedString(typed) => functions::ibis_type(&typed.data_type.to_string()),
        Expr::Cast { data_type, .. } => functions::ibis_type(&data_type.to_string()),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) if n.parse::<i64>().is_ok() => Some("int64".into()),
            _ => None,
        },
        _ => None,
    }
}

/// Two references to the same column, however qualified.
pub(crate) fn same_column(a: &Expr, b: &Expr, scope: &Scope) -> bool {
    if !matches!(a, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) || !matches!(b, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
        return false;
    }
    match (plain_column(a, scope), plain_column(b, scope)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn describe(expr: &Expr) -> String {
    let text = expr.to_string();
    let head: String = text.chars().take(40).collect();
    match expr {
        Expr::AnyOp { .. } | Expr::AllOp { .. } => "ANY/ALL comparisons other than `= ANY` and `<> ALL` over a subquery".into(),
        Expr::Tuple(_) => "row values (tuples)".into(),
        Expr::Array(_) => "array literals".into(),
        Expr::SimilarTo { .. } => "SIMILAR TO".into(),
        Expr::AtTimeZone { .. } => "AT TIME ZONE".into(),
        Expr::Collate { .. } => "COLLATE".into(),
        Expr::Like { .. } | Expr::ILike { .. } => "LIKE ANY".into(),
        Expr::GroupingSets(_) | Expr::Rollup(_) | Expr::Cube(_) => "GROUPING SETS, ROLLUP and CUBE".into(),
        _ => format!("the expression `{head}`"),
    }
}

/// Pre-order walk; `visit` returns whether to descend into the node's children.
pub(crate) fn visit(expr: &Expr, f: &mut dyn FnMut(&Expr) -> bool) {
    if !f(expr) {
        return;
    }
    let mut children: Vec<&Expr> = Vec::new();
    match expr {
        Expr::BinaryOp { left, right, .. } | Expr::IsDistinctFrom(left, right) | Expr::IsNotDistinctFrom(left, right) => {
            children.push(left);
            children.push(right);
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsNotFalse(expr)
        | Expr::Cast { expr, .. }
        | Expr::Extract { expr, .. }
        | Expr::Ceil { expr, .. }
        | Expr::Floor { expr, .. } => children.push(expr),
        Expr::Between { expr, low, high, .. } => children.extend([expr.as_ref(), low, high]),
        Expr::In { expr, target, .. } => {
            children.push(expr);
            if let InTarget::List(items) = target {
                children.extend(items.iter());
            }
        }
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } | Expr::RLike { expr, pattern, .. } => {
            children.push(expr);
            children.push(pattern);
        }
        Expr::Position { expr, r#in } => children.extend([expr.as_ref(), r#in]),
        Expr::Substring { expr, substring_from, substring_for, .. } => {
            children.push(expr);
            children.extend(substring_from.as_deref());
            children.extend(substring_for.as_deref());
        }
        Expr::Trim { expr, .. } => children.push(expr),
        Expr::Case { operand, conditions, else_result, .. } => {
            children.extend(operand.as_deref());
            for when in conditions {
                children.push(&when.condition);
                children.push(&when.result);
            }
            children.extend(else_result.as_deref());
        }
        Expr::Function(function) => {
            if let FunctionArguments::List(list) = &function.args {
                for arg in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                        children.push(e);
                    }
                }
            }
            children.extend(function.filter.as_deref());
            if let Some(WindowType::WindowSpec(spec)) = &function.over {
                children.extend(spec.partition_by.iter());
                children.extend(spec.order_by.iter().map(|o| &o.expr));
            }
        }
        _ => {}
    }
    for child in children {
        visit(child, f);
    }
}

/// Calls `f(qualifier, column, node)` for every column reference outside subqueries.
pub(crate) fn visit_columns(expr: &Expr, f: &mut dyn FnMut(Option<&str>, &str, &Expr)) {
    visit(expr, &mut |e| {
        match e {
            Expr::Identifier(ident) => f(None, &ident.value, e),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => f(Some(&parts[parts.len() - 2].value), &parts[parts.len() - 1].value, e),
            _ => {}
        }
        !matches!(e, Expr::Subquery(_) | Expr::Exists { .. })
    });
}

/// A function's own name (the last part of a qualified one), lowercase; empty when it has none.
pub(crate) fn function_name(function: &Function) -> String {
    function.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default()
}

pub(crate) fn is_aggregate_call(expr: &Expr) -> bool {
    match expr {
        Expr::Function(function) => function.over.is_none() && functions::is_aggregate(&function_name(function)),
        _ => false,
    }
}

pub(crate) fn contains_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if is_aggregate_call(e) {
            found = true;
        }
        !found && !matches!(e, Expr::Subquery(_) | Expr::Exists { .. })
    });
    found
}

pub(crate) fn contains_window(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if matches!(e, Expr::Function(f) if f.over.is_some()) {
            found = true;
        }
        !found
    });
    found
}

pub(crate) fn contains_subquery(expr: &Expr) -> bool {
    let mut found = false;
    visit(expr, &mut |e| {
        if matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: InTarget::Subquery(_), .. }) {
            found = true;
        }
        !found
    });
    found
}

pub(crate) fn first_column_name(expr: &Expr) -> Option<String> {
    let mut name = None;
    visit_columns(expr, &mut |_, column, _| {
        if name.is_none() {
            name = Some(column.to_string());
        }
    });
    name
}

/// Aggregates whose result depends on the order of their input, and which take it as
/// `order_by=` in Ibis.
const ORDERED_AGGREGATES: &[&str] = &["string_agg", "listagg", "group_concat", "array_agg", "list"];

/// The `ORDER BY` inside an aggregate's parentheses.
fn argument_order(expr: &Expr) -> Option<&Vec<sqlparser::ast::OrderByExpr>> {
    let Expr::Function(function) = expr else { return None };
    let FunctionArguments::List(list) = &function.args else { return None };
    list.clauses.iter().find_map(|clause| match clause {
        FunctionArgumentClause::OrderBy(order) => Some(order),
        _ => None,
    })
}

/// `ibis.` functions that build an Ibis value, which cannot take `_` as an operand (ranking
/// functions can: their `.over(...)` takes `_`).
const IBIS_VALUE_MAKERS: &[&str] =
    &["literal", "null", "date", "timestamp", "time", "interval", "now", "today", "random", "uuid", "array", "map", "struct", "pi", "e"];

/// `_` stands for the table a method is called on, but an Ibis expression cannot take a deferred
/// operand (`orders.x.count() / _.count()` fails); such a value becomes `lambda t: ...` with `t`
/// in place of `_`, which Ibis calls with that same table.
pub(crate) fn deferred_safe(code: &str) -> String {
    let roots = attribute_roots(code);
    let deferred: Vec<usize> = roots.iter().filter(|(_, name)| *name == "_").map(|(at, _)| *at).collect();
    // Only where another name starts a chain (`orders.amount`), or an `ibis.` function makes a
    // value (`ibis.literal(50)`), does an Ibis expression meet `_`; `ibis.desc(_.x)` and the
    // like take `_` themselves.
    let mixed = roots.iter().any(|(at, name)| match *name {
        "_" => false,
        "ibis" => IBIS_VALUE_MAKERS.iter().any(|maker| code[at + 5..].starts_with(maker) && code[at + 5 + maker.len()..].starts_with('(')),
        _ => true,
    });
    if deferred.is_empty() || !mixed {
        return code.to_string();
    }
    // The parameter must not shadow a table variable of the code (a self-join's `t`).
    let parameter = ["t", "tbl", "rel", "rows"].into_iter().find(|p| !roots.iter().any(|(_, name)| name == p)).unwrap_or("_t");
    let mut out = String::with_capacity(code.len() + 12);
    let mut last = 0;
    for position in deferred {
        out.push_str(&code[last..position]);
        out.push_str(parameter);
        last = position + 1;
    }
    out.push_str(&code[last..]);
    format!("lambda {parameter}: {out}")
}

/// Every name that starts an attribute chain (followed by `.` or `[`) outside string literals,
/// with its byte offset: `_` and `orders` in `orders.x / _.count()`.
fn attribute_roots(code: &str) -> Vec<(usize, &str)> {
    let bytes = code.as_bytes();
    let mut roots = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if b == b'"' || b == b'\'' {
            quote = Some(b);
            i += 1;
            continue;
        }
        let starts_identifier =
            (b.is_ascii_alphabetic() || b == b'_') && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'.'));
        if starts_identifier {
            let end = (i..bytes.len()).find(|&j| !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')).unwrap_or(bytes.len());
            if matches!(bytes.get(end), Some(b'.') | Some(b'[')) {
                roots.push((i, &code[i..end]));
            }
            i = end;
            continue;
        }
        i += 1;
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::deferred_safe;

    #[test]
    fn deferred_operands_become_lambdas_and_plain_ones_stay() {
        assert_eq!(deferred_safe("_.count()"), "_.count()");
        assert_eq!(deferred_safe("_.total > 5"), "_.total > 5");
        assert_eq!(deferred_safe("orders.amount"), "orders.amount");
        assert_eq!(deferred_safe("100.0 * orders.x.count() / _.count()"), "lambda t: 100.0 * orders.x.count() / t.count()");
        assert_eq!(deferred_safe("ibis.desc(_.n)"), "ibis.desc(_.n)");
        assert_eq!(deferred_safe("(100.0 * _.revenue / _.revenue.sum().over()).round(2)"), "(100.0 * _.revenue / _.revenue.sum().over()).round(2)");
        assert_eq!(deferred_safe("ibis.desc(orders.x.sum() / _.count())"), "lambda t: ibis.desc(orders.x.sum() / t.count())");
        assert_eq!(deferred_safe("t.x.sum() / _.count()"), "lambda tbl: t.x.sum() / tbl.count()", "a table named t is not shadowed");
        assert_eq!(deferred_safe("_.x > ibis.literal(50) / 100.0 * _.y"), "lambda t: t.x > ibis.literal(50) / 100.0 * t.y");
        assert_eq!(deferred_safe("ibis.desc(_.x)"), "ibis.desc(_.x)");
        assert_eq!(deferred_safe("x.like(\"_._\")"), "x.like(\"_._\")");
    }
}

/// The text of a single-quoted string literal.
fn quoted_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A LIKE pattern with an escape character as an anchored regular expression (RE2, as DuckDB's
/// regexp_matches reads it): `%` any run of characters (newlines too), `_` one character, the
/// escape character makes the next one literal.
fn like_regex(pattern: &str, escape: char, case_insensitive: bool) -> String {
    let mut regex = String::from(if case_insensitive { "(?is)^" } else { "(?s)^" });
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = if c == escape {
            match chars.next() {
                Some(next) => next,
                None => break,
            }
        } else if c == '%' {
            regex.push_str(".*");
            continue;
        } else if c == '_' {
            regex.push('.');
            continue;
        } else {
            c
        };
        if "\\.+*?()|[]{}^$".contains(literal) {
            regex.push('\\');
        }
        regex.push(literal);
    }
    regex.push('$');
    regex
}

#[cfg(test)]
mod like_tests {
    use super::like_regex;

    #[test]
    fn escaped_wildcards_are_literal_and_others_match_anything() {
        assert_eq!(like_regex("a!_b%", '!', false), "(?s)^a_b.*$");
        assert_eq!(like_regex("50!%_(x)", '!', true), "(?is)^50%.\\(x\\)$");
    }
}
