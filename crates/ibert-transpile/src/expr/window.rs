//! Window functions: `.over(group_by=..., order_by=..., rows=/range=...)`.

use super::function::Call;
use super::literal::interval_literal;
use super::py::{ADDITIVE, Py, list_or_single};
use super::{Cx, Phase};
use crate::error::TranspileError;
use crate::functions;
use crate::query::{Translator, sort_key};
use sqlparser::ast::{Expr, Value, WindowFrameBound, WindowFrameUnits, WindowSpec};

impl Translator<'_> {
    /// `f(...) OVER (...)`: the function, then `.over(...)` with the partition, order and frame.
    pub(super) fn window(&mut self, call: &Call, spec: &WindowSpec, cx: &Cx) -> Result<Py, TranspileError> {
        let Call { name, args, expr, .. } = *call;
        let (base, one_based) = match name {
            "row_number" => (Py::atom("ibis.row_number()".into()), true),
            "rank" => (Py::atom("ibis.rank()".into()), true),
            "dense_rank" => (Py::atom("ibis.dense_rank()".into()), true),
            "percent_rank" => (Py::atom("ibis.percent_rank()".into()), false),
            "cume_dist" => (Py::atom("ibis.cume_dist()".into()), false),
            "ntile" => (Py::atom(format!("ibis.ntile({})", self.expr(call.first_arg()?, cx)?.code)), true),
            "lag" | "lead" => {
                let value = self.expr(call.first_arg()?, cx)?;
                let mut rest = Vec::new();
                for arg in &args[1..] {
                    rest.push(self.expr(arg, cx)?.code);
                }
                (value.method(name, &rest), false)
            }
            "first_value" => (self.expr(call.first_arg()?, cx)?.method("first", &[]), false),
            "last_value" => (self.expr(call.first_arg()?, cx)?.method("last", &[]), false),
            "nth_value" => {
                let value = self.expr(call.first_arg()?, cx)?;
                let n = args.get(1).ok_or_else(|| TranspileError::resolve_at("nth_value() takes 2 arguments".into(), expr))?;
                let n = self.zero_based(n, cx)?;
                (value.method("nth", &[n]), false)
            }
            _ if functions::is_aggregate(name) => (self.window_aggregate(call, &cx.without_aliases())?, false),
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

    /// An aggregate over a window of rows.
    fn window_aggregate(&mut self, call: &Call, cx: &Cx) -> Result<Py, TranspileError> {
        let Call { name, args, star, filter, expr, .. } = *call;
        if name == "count" && (star || args.is_empty()) {
            // COUNT(*) counts the rows of the relation at hand, which only `_` names.
            let filter = match filter {
                Some(f) => format!("where={}", self.expr(f, cx)?.code),
                None => String::new(),
            };
            return Ok(Py::atom(format!("_.count({filter})")));
        }
        match cx.phase {
            Phase::Source => self.aggregate(call, cx),
            Phase::Aggregated(_) => {
                // An aggregate over the aggregated rows (`SUM(SUM(x)) OVER ()`): its argument is a metric.
                let value = self.expr(call.first_arg()?, cx)?;
                let (method, fixed) =
                    functions::aggregate_method(name).ok_or_else(|| TranspileError::unsupported_at(&format!("the window aggregate {name}()"), expr))?;
                Ok(value.method(method, &if fixed.is_empty() { Vec::new() } else { vec![fixed.to_string()] }))
            }
        }
    }
}

/// One end of a window frame: `None` unbounded, `0` the current row, else the offset.
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
