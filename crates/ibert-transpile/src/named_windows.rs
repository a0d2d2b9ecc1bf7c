//! `WINDOW w AS (...)` clauses: every `OVER w` and `OVER (w ORDER BY ...)` of the SELECT is given
//! the definition it names, so that the rest of the translator only meets inline window specs.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, NamedWindowExpr, Select, WindowSpec, WindowType, visit_expressions_mut};

use crate::error::TranspileError;

/// The SELECT with its named windows written into each use; `None` when it has none.
pub(crate) fn inline_named_windows(select: &Select) -> Result<Option<Select>, TranspileError> {
    if select.named_window.is_empty() {
        return Ok(None);
    }
    let mut definitions: HashMap<String, WindowSpec> = HashMap::new();
    for definition in &select.named_window {
        let spec = match &definition.1 {
            NamedWindowExpr::WindowSpec(spec) => resolve(spec, &definitions, &definition.0.value)?,
            NamedWindowExpr::NamedWindow(other) => {
                definitions.get(&other.value.to_ascii_lowercase()).cloned().ok_or_else(|| unknown_window(&other.value, select))?
            }
        };
        definitions.insert(definition.0.value.to_ascii_lowercase(), spec);
    }
    let mut select = select.clone();
    select.named_window.clear();
    let outcome = visit_expressions_mut(&mut select, |expr| {
        let Expr::Function(function) = expr else { return ControlFlow::Continue(()) };
        let inlined = match &function.over {
            // A name this SELECT does not define belongs to a subquery's own WINDOW clause.
            Some(WindowType::NamedWindow(name)) => match definitions.get(&name.value.to_ascii_lowercase()) {
                Some(spec) => spec.clone(),
                None => return ControlFlow::Continue(()),
            },
            Some(WindowType::WindowSpec(spec)) if spec.window_name.is_some() => match resolve(spec, &definitions, "") {
                Ok(spec) => spec,
                Err(_) => return ControlFlow::Continue(()),
            },
            _ => return ControlFlow::Continue(()),
        };
        function.over = Some(WindowType::WindowSpec(inlined));
        ControlFlow::<TranspileError>::Continue(())
    });
    if let ControlFlow::Break(error) = outcome {
        return Err(error);
    }
    Ok(Some(select))
}

/// `(w ORDER BY x)`: the named window's partition, order and frame, each overridden where the
/// spec gives its own (SQL allows adding ORDER BY and a frame to a window without them).
fn resolve(spec: &WindowSpec, definitions: &HashMap<String, WindowSpec>, defining: &str) -> Result<WindowSpec, TranspileError> {
    let Some(base_name) = &spec.window_name else { return Ok(spec.clone()) };
    let base = definitions.get(&base_name.value.to_ascii_lowercase()).ok_or_else(|| {
        TranspileError::resolve_in(
            format!("unknown window `{}`{}", base_name.value, if defining.is_empty() { String::new() } else { format!(" in the definition of `{defining}`") }),
            base_name.span,
        )
    })?;
    Ok(WindowSpec {
        window_name: None,
        partition_by: if spec.partition_by.is_empty() { base.partition_by.clone() } else { spec.partition_by.clone() },
        order_by: if spec.order_by.is_empty() { base.order_by.clone() } else { spec.order_by.clone() },
        window_frame: spec.window_frame.clone().or_else(|| base.window_frame.clone()),
    })
}

fn unknown_window(name: &str, select: &Select) -> TranspileError {
    TranspileError::resolve_at(format!("unknown window `{name}`"), select)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::DuckDbDialect;
    use sqlparser::parser::Parser;

    fn first_select(sql: &str) -> Select {
        let statement = Parser::parse_sql(&DuckDbDialect {}, sql).unwrap().remove(0);
        let sqlparser::ast::Statement::Query(query) = statement else { panic!("a query") };
        let sqlparser::ast::SetExpr::Select(select) = *query.body else { panic!("a select") };
        *select
    }

    #[test]
    fn uses_of_named_windows_get_their_definitions() {
        let select = first_select(
            "SELECT rank() OVER w AS r, sum(x) OVER (w ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s, lag(x) OVER v AS l \
             FROM t WINDOW w AS (PARTITION BY g ORDER BY x), v AS (w ORDER BY y)",
        );
        let inlined = inline_named_windows(&select).unwrap().expect("rewritten");
        let text = inlined.to_string();
        assert!(!text.contains("WINDOW"), "{text}");
        assert!(text.contains("rank() OVER (PARTITION BY g ORDER BY x) AS r"), "{text}");
        assert!(text.contains("sum(x) OVER (PARTITION BY g ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s"), "{text}");
        assert!(text.contains("lag(x) OVER (PARTITION BY g ORDER BY y) AS l"), "{text}");
        assert!(inline_named_windows(&first_select("SELECT 1 FROM t")).unwrap().is_none());
    }

    #[test]
    fn an_unknown_window_in_a_definition_is_an_error() {
        let error = inline_named_windows(&first_select("SELECT rank() OVER w FROM t WINDOW w AS (nope ORDER BY x)")).unwrap_err();
        assert!(error.to_string().contains("unknown window `nope`"), "{error}");
    }
}
