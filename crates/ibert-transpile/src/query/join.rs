//! JOIN clauses, and the names Ibis gives the columns of a join chain.

use super::Translator;
use super::from::{exact_column, object_name};
use crate::ast::{contains_subquery, plain_column, split_conjuncts, visit_columns};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Cx, Phase};
use crate::python;
use crate::scope::{Resolved, Scope};
use sqlparser::ast::{BinaryOperator, Expr, Join, JoinConstraint, JoinOperator, Spanned};
use std::collections::{HashMap, HashSet};

impl Translator<'_> {
    pub(super) fn join(&mut self, join: &Join, scope: &mut Scope, chain: &mut Chain, steps: &mut Vec<JoinStep>) -> Result<(), TranspileError> {
        let at = join.relation.span().start;
        if let Some(mark) = self.asof_tables.iter_mut().find(|(table, _)| *table == at) {
            mark.1 = true;
            return self.asof_join(join, scope, chain, steps);
        }
        let (how, constraint) = match &join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => ("inner", c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => ("left", c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => ("right", c),
            JoinOperator::FullOuter(c) => ("outer", c),
            JoinOperator::CrossJoin(c) => ("cross", c),
            JoinOperator::Semi(c) | JoinOperator::LeftSemi(c) => ("semi", c),
            JoinOperator::Anti(c) | JoinOperator::LeftAnti(c) => ("anti", c),
            _ => return Err(TranspileError::unsupported_at("this kind of join", &join.relation)),
        };
        self.add_source(&join.relation, scope)?;
        let right = scope.sources.len() - 1;
        let var = scope.sources[right].var.clone();
        let mut predicates: Vec<String> = Vec::new();
        let mut equalities = Vec::new();
        let mut all_equalities = true;
        match constraint {
            JoinConstraint::On(on) => {
                let mut parts = Vec::new();
                split_conjuncts(on, &mut parts);
                let cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
                for part in parts {
                    predicates.push(self.expr(part, &cx)?.code);
                    match column_equality(part, scope) {
                        Some(pair) => equalities.push(pair),
                        None => all_equalities = false,
                    }
                }
            }
            JoinConstraint::Using(names) => {
                for name in names {
                    let column = object_name(name);
                    let left = (0..right)
                        .find(|i| scope.sources[*i].columns.iter().any(|c| c.name.eq_ignore_ascii_case(&column)))
                        .ok_or_else(|| TranspileError::resolve_at(format!("no table before the join has the USING column `{column}`"), name))?;
                    let left_ref = Resolved { depth: 0, source: left, column: exact_column(scope, left, &column), ty: None, value_ty: None };
                    let right_ref = Resolved { depth: 0, source: right, column: exact_column(scope, right, &column), ty: None, value_ty: None };
                    predicates.push(format!("{} == {}", scope.reference(&left_ref), scope.reference(&right_ref)));
                    equalities.push(((left, left_ref.column.clone()), (right, right_ref.column.clone())));
                    if how != "outer" {
                        scope.using.push((column.clone(), left));
                    }
                }
            }
            JoinConstraint::None if how == "cross" => {}
            JoinConstraint::Natural => return Err(TranspileError::unsupported_at("NATURAL JOIN", &join.relation)),
            _ => return Err(TranspileError::unsupported_at("a join without a condition", &join.relation)),
        }
        let rname = right_name_template(scope, steps, right);
        if how == "cross" {
            chain.call("cross_join", &with_rname(vec![var], &rname));
        } else {
            let mut args = vec![var, predicate_argument(predicates)];
            if how != "inner" {
                args.push(format!("how={}", python::string(how)));
            }
            chain.call("join", &with_rname(args, &rname));
        }
        steps.push(JoinStep { how, right, equalities, all_equalities: all_equalities && how == "inner", rname, filter: None });
        Ok(())
    }

    /// DuckDB's `ASOF [LEFT] JOIN r ON <equalities> AND <one inequality>` as
    /// `asof_join(r, inequality, equalities)`. Ibis's asof join keeps every left row, as ASOF LEFT
    /// JOIN does; an inner ASOF JOIN drops the rows without a match, whose column of `r` in the
    /// inequality is NULL.
    fn asof_join(&mut self, join: &Join, scope: &mut Scope, chain: &mut Chain, steps: &mut Vec<JoinStep>) -> Result<(), TranspileError> {
        let (inner, constraint) = match &join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (true, c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (false, c),
            _ => return Err(TranspileError::unsupported_at("this kind of ASOF join", &join.relation)),
        };
        let JoinConstraint::On(on) = constraint else {
            return Err(TranspileError::unsupported_at("ASOF JOIN without ON", &join.relation));
        };
        self.add_source(&join.relation, scope)?;
        let right = scope.sources.len() - 1;
        let var = scope.sources[right].var.clone();
        let mut parts = Vec::new();
        split_conjuncts(on, &mut parts);
        let cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut inequality = None;
        let mut predicates = Vec::new();
        for part in parts {
            match part {
                Expr::BinaryOp { left, op: BinaryOperator::Gt | BinaryOperator::GtEq | BinaryOperator::Lt | BinaryOperator::LtEq, right: other }
                    if inequality.is_none() =>
                {
                    let Some(right_column) = [left, other].into_iter().filter_map(|side| plain_column(side, scope)).find(|c| c.depth == 0 && c.source == right)
                    else {
                        return Err(TranspileError::unsupported_at("an ASOF JOIN inequality without a column of the joined table", part));
                    };
                    inequality = Some((self.expr(part, &cx)?.code, right_column));
                }
                _ => predicates.push(self.expr(part, &cx)?.code),
            }
        }
        let Some((on_code, right_column)) = inequality else {
            return Err(TranspileError::unsupported_at("an ASOF JOIN without an inequality", on));
        };
        let rname = right_name_template(scope, steps, right);
        let mut args = vec![var, on_code];
        if !predicates.is_empty() {
            args.push(predicate_argument(predicates));
        }
        chain.call("asof_join", &with_rname(args, &rname));
        let filter = inner.then(|| format!("{}.notnull()", scope.reference(&right_column)));
        steps.push(JoinStep { how: "left", right, equalities: Vec::new(), all_equalities: false, rname, filter });
        Ok(())
    }
}

/// A column of one FROM source: the source's index and the column's name.
type SourceColumn = (usize, String);

/// One join of a chain, kept to work out the column names Ibis gives the joined table.
pub(super) struct JoinStep {
    pub how: &'static str,
    pub right: usize,
    pub equalities: Vec<(SourceColumn, SourceColumn)>,
    pub all_equalities: bool,
    /// How colliding right-hand names are renamed (Ibis's `rname`).
    pub rname: String,
    /// A condition on the joined rows (an inner ASOF join keeps only the matched ones).
    pub filter: Option<String>,
}

const DEFAULT_RNAME: &str = "{name}_right";

/// Ibis renames a colliding right-hand column `{name}_right`; when that name is taken too (a
/// third table with an `id`), the join names the right table instead: `{name}_<variable>`.
pub(super) fn right_name_template(scope: &Scope, steps: &[JoinStep], right: usize) -> String {
    let (names, _) = join_output_names(scope, steps);
    let taken: HashSet<&String> = names.values().collect();
    let collides = scope.sources[right].columns.iter().any(|c| taken.contains(&format!("{}_right", c.name)));
    if collides { format!("{{name}}_{}", scope.sources[right].var) } else { DEFAULT_RNAME.to_string() }
}

pub(super) fn with_rname(mut args: Vec<String>, rname: &str) -> Vec<String> {
    if rname != DEFAULT_RNAME {
        args.push(format!("rname={}", python::string(rname)));
    }
    args
}

/// Ibis's names for the columns of a join chain: a right-hand column whose name is taken is
/// merged into the column of that name when an inner equi-join makes them equal (returned too,
/// as (source, column) -> the column kept), and is otherwise renamed `{name}_right`.
pub(super) fn join_output_names(scope: &Scope, steps: &[JoinStep]) -> (HashMap<SourceColumn, String>, HashMap<SourceColumn, SourceColumn>) {
    let mut names: HashMap<(usize, String), String> = HashMap::new();
    let mut merged = HashMap::new();
    let mut taken: Vec<(String, (usize, String))> = Vec::new();
    let mut groups: Vec<HashSet<(usize, String)>> = Vec::new();
    for column in &scope.sources[0].columns {
        names.insert((0, column.name.clone()), column.name.clone());
        taken.push((column.name.clone(), (0, column.name.clone())));
    }
    for step in steps {
        if step.how == "semi" || step.how == "anti" {
            continue;
        }
        if step.all_equalities {
            for (a, b) in &step.equalities {
                let ia = groups.iter().position(|g| g.contains(a));
                let ib = groups.iter().position(|g| g.contains(b));
                match (ia, ib) {
                    (Some(x), Some(y)) if x != y => {
                        let other = groups.remove(x.max(y));
                        groups[x.min(y)].extend(other);
                    }
                    (Some(x), None) => {
                        groups[x].insert(b.clone());
                    }
                    (None, Some(y)) => {
                        groups[y].insert(a.clone());
                    }
                    (None, None) => groups.push([a.clone(), b.clone()].into_iter().collect()),
                    _ => {}
                }
            }
        }
        for column in &scope.sources[step.right].columns {
            let key = (step.right, column.name.clone());
            match taken.iter().find(|(name, _)| name == &column.name) {
                None => {
                    names.insert(key.clone(), column.name.clone());
                    taken.push((column.name.clone(), key));
                }
                Some((_, owner)) => {
                    let equal = groups.iter().any(|g| g.contains(owner) && g.contains(&key));
                    if equal {
                        names.insert(key.clone(), column.name.clone());
                        merged.insert(key, owner.clone());
                    } else {
                        let renamed = step.rname.replace("{name}", &column.name);
                        names.insert(key.clone(), renamed.clone());
                        taken.push((renamed, key));
                    }
                }
            }
        }
    }
    (names, merged)
}

/// `a.x = b.y` between two columns of the current block.
pub(super) fn column_equality(expr: &Expr, scope: &Scope) -> Option<(SourceColumn, SourceColumn)> {
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = expr else { return None };
    let left = plain_column(left, scope)?;
    let right = plain_column(right, scope)?;
    (left.depth == 0 && right.depth == 0).then_some(((left.source, left.column), (right.source, right.column)))
}

/// The sources of the current block that `expr` reads, or None when it holds a subquery or a
/// name that does not resolve here.
pub(super) fn sources_of(expr: &Expr, scope: &Scope) -> Option<Vec<usize>> {
    if contains_subquery(expr) {
        return None;
    }
    let mut used = Vec::new();
    let mut ok = true;
    visit_columns(expr, &mut |qualifier, name, node| match scope.resolve(qualifier, name, node.span()) {
        Ok(resolved) if resolved.depth == 0 => {
            if !used.contains(&resolved.source) {
                used.push(resolved.source);
            }
        }
        _ => ok = false,
    });
    ok.then_some(used)
}

pub(super) fn predicate_argument(mut predicates: Vec<String>) -> String {
    if predicates.len() == 1 { predicates.remove(0) } else { format!("[{}]", predicates.join(", ")) }
}
