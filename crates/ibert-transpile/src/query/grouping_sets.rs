//! ROLLUP, CUBE and GROUPING SETS, which Ibis does not have: one aggregation per grouping set
//! over the same rows, united.

use super::Translator;
use super::select::{Output, named_arguments, select_arguments};
use crate::ast::{function_name, plain_column, same_column, visit};
use crate::chain::Chain;
use crate::error::TranspileError;
use crate::expr::{Cx, Phase, ibis_type};
use crate::python;
use crate::scope::{Resolved, Scope};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByWithModifier, InTarget, Select};

/// What each grouping set's aggregation computes.
pub(super) struct GroupedColumns<'a> {
    /// The `group_by` arguments of every key.
    pub key_args: &'a [Output],
    /// Each key's expression and name, in the order of `key_args`.
    pub keys: &'a [(Expr, String)],
    pub metric_args: &'a [Output],
    /// `GROUPING(...)` calls and the names of their columns.
    pub flags: &'a [(Expr, String)],
}

impl Translator<'_> {
    /// One aggregation per grouping set over the same rows, united: the keys a set leaves out
    /// are typed NULLs, and each `GROUPING(...)` is the constant bit mask of its set (1 for an
    /// argument the set leaves out, the first argument the highest bit). Ibis has no grouping
    /// sets; this is what they mean.
    pub(super) fn grouping_set_union(&mut self, input: &Chain, scope: &Scope, sets: &[Vec<Expr>], columns: &GroupedColumns) -> Result<Chain, TranspileError> {
        let GroupedColumns { key_args, keys, metric_args, flags } = *columns;
        let rows = if sets.len() > 1 && !input.is_plain() { Chain::new(self.bind("grouped_rows", input)) } else { input.clone() };
        let order: Vec<String> =
            key_args.iter().chain(metric_args).map(|output| &output.name).chain(flags.iter().map(|(_, name)| name)).map(|name| python::string(name)).collect();
        let in_set = |set: &[Expr], key: &Expr| set.iter().any(|e| e == key || same_column(e, key, scope));
        // Each set's aggregation, before the keys it leaves out are added as NULLs.
        let mut bases = Vec::new();
        for set in sets {
            let present: Vec<Output> = key_args.iter().zip(keys).filter(|(_, (key, _))| in_set(set, key)).map(|(arg, _)| arg.clone()).collect();
            let mut branch = rows.clone();
            if metric_args.is_empty() && present.is_empty() {
                return Err(TranspileError::unsupported_at("an empty grouping set without aggregates", &keys[0].0));
            }
            if metric_args.is_empty() {
                branch.call("select", &select_arguments(&present));
                branch.call("distinct", &[]);
            } else {
                if !present.is_empty() {
                    branch.call("group_by", &select_arguments(&present));
                }
                branch.call("aggregate", &named_arguments(metric_args));
            }
            bases.push(branch);
        }
        // The type of each key's NULLs: the column's or the expression's where it is known, else
        // read off the grouped rows (a column computed upstream) or off an aggregation that
        // groups by the key (bound to a name for that).
        let source_cx = Cx { scope, phase: Phase::Source, aliases: &[], prefer_alias: false };
        let mut null_types = Vec::new();
        for (key, name) in keys {
            let ty = match plain_column(key, scope) {
                Some(Resolved { ty: Some(ty), .. }) => Some(python::string(&ty)),
                Some(resolved) if scope.sources.len() == 1 && rows.is_plain() => {
                    Some(format!("{}.type()", python::attribute(&rows.inline(), &resolved.column)))
                }
                _ => ibis_type(key, &source_cx).map(|ty| python::string(&ty)),
            };
            null_types.push((name, ty));
        }
        let left_out = |index: usize| sets.iter().any(|set| !in_set(set, &keys[index].0));
        if null_types.iter().enumerate().any(|(index, (_, ty))| ty.is_none() && left_out(index)) {
            for base in &mut bases {
                *base = Chain::new(self.bind("grouping_set", base));
            }
            for (index, (name, ty)) in null_types.iter_mut().enumerate() {
                if ty.is_none() && left_out(index) {
                    let grouped = sets.iter().position(|set| in_set(set, &keys[index].0)).unwrap_or(0);
                    *ty = Some(format!("{}.type()", python::attribute(&bases[grouped].inline(), name)));
                }
            }
        }
        let mut branches = Vec::new();
        for (set, mut branch) in sets.iter().zip(bases) {
            let mut constants = Vec::new();
            for ((Output { name, .. }, (key, _)), (_, ty)) in key_args.iter().zip(keys).zip(&null_types) {
                if !in_set(set, key) {
                    let ty = ty.as_deref().expect("every key's NULL type is known by now");
                    constants.push(Output::computed(name.clone(), format!("ibis.null({ty})")));
                }
            }
            for (call, name) in flags {
                let mask = grouping_mask(call, &|key: &Expr| in_set(set, key))?;
                constants.push(Output::computed(name.clone(), format!("ibis.literal({mask})")));
            }
            if !constants.is_empty() {
                branch.call("mutate", &named_arguments(&constants));
            }
            if sets.len() > 1 {
                branch.call("select", &order);
            }
            branches.push(branch);
        }
        let mut branches = branches.into_iter();
        let first = branches.next().expect("at least one grouping set");
        if sets.len() == 1 {
            return Ok(first);
        }
        let mut chain = Chain::new(self.bind("grouping_set", &first));
        let rest: Vec<String> = branches.map(|branch| self.bind("grouping_set", &branch)).collect();
        chain.call("union", &rest);
        Ok(chain)
    }
}

/// The grouping sets of a GROUP BY with ROLLUP, CUBE or GROUPING SETS, as lists of key
/// expressions (before alias and position resolution); `None` for a plain GROUP BY.
pub(super) fn expand_grouping_sets(exprs: &[Expr], modifiers: &[GroupByWithModifier], at: &Select) -> Result<Option<Vec<Vec<Expr>>>, TranspileError> {
    let has_sets = exprs.iter().any(|e| matches!(e, Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)));
    if modifiers.is_empty() && !has_sets {
        return Ok(None);
    }
    let rollup = |lists: &[Vec<Expr>]| -> Vec<Vec<Expr>> { (0..=lists.len()).rev().map(|n| lists[..n].concat()).collect() };
    let cube = |lists: &[Vec<Expr>]| -> Vec<Vec<Expr>> {
        let n = lists.len();
        (0..1u32 << n).rev().map(|mask| (0..n).filter(|i| mask & (1 << (n - 1 - i)) != 0).flat_map(|i| lists[i].clone()).collect()).collect()
    };
    let too_many = || TranspileError::unsupported_at("more than 64 grouping sets", at);
    let mut sets: Vec<Vec<Expr>> = vec![Vec::new()];
    for expr in exprs {
        if let Expr::Rollup(lists) | Expr::Cube(lists) | Expr::GroupingSets(lists) = expr
            && lists.len() > 64
        {
            return Err(too_many());
        }
        if matches!(expr, Expr::Cube(lists) if lists.len() > 6) {
            return Err(too_many());
        }
        let options = match expr {
            Expr::Rollup(lists) => rollup(lists),
            Expr::Cube(lists) => cube(lists),
            Expr::GroupingSets(lists) => lists.clone(),
            other => vec![vec![other.clone()]],
        };
        if sets.len() * options.len() > 64 {
            return Err(too_many());
        }
        sets = sets.iter().flat_map(|set| options.iter().map(move |option| [set.clone(), option.clone()].concat())).collect();
    }
    for modifier in modifiers {
        let whole: Vec<Vec<Expr>> = match (modifier, sets.as_slice()) {
            (GroupByWithModifier::Cube, [only]) if only.len() > 6 => return Err(too_many()),
            (GroupByWithModifier::Rollup | GroupByWithModifier::Cube, [only]) => only.iter().map(|e| vec![e.clone()]).collect(),
            _ => return Err(TranspileError::unsupported_at(&format!("GROUP BY ... {modifier}"), at)),
        };
        sets = if matches!(modifier, GroupByWithModifier::Rollup) { rollup(&whole) } else { cube(&whole) };
    }
    if sets.len() > 64 {
        return Err(too_many());
    }
    Ok(Some(sets))
}

/// `GROUPING(a, b, ...)` calls, each once.
pub(super) fn collect_grouping_calls(expr: &Expr, out: &mut Vec<Expr>) {
    visit(expr, &mut |e| {
        if let Expr::Function(function) = e
            && function.over.is_none()
            && function_name(function) == "grouping"
        {
            if !out.contains(e) {
                out.push(e.clone());
            }
            return false;
        }
        !matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: InTarget::Subquery(_), .. })
    });
}

/// The value of a `GROUPING(...)` call in the grouping set that `in_set` describes.
fn grouping_mask(call: &Expr, in_set: &dyn Fn(&Expr) -> bool) -> Result<u64, TranspileError> {
    let Expr::Function(function) = call else { unreachable!("collected as a function call") };
    let FunctionArguments::List(list) = &function.args else {
        return Err(TranspileError::resolve_at("GROUPING() needs the grouped columns as arguments".into(), call));
    };
    let mut mask = 0u64;
    for arg in &list.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) = arg else {
            return Err(TranspileError::resolve_at("GROUPING() takes column expressions".into(), call));
        };
        mask = (mask << 1) | u64::from(!in_set(arg));
    }
    Ok(mask)
}
