//! Templates -> candidates: one per variation and grid combination, with its rendered SQL and
//! Ibis, its tables and its metadata.

use std::collections::BTreeMap;

use ibert_records::TableSchemas;

use crate::template::{ParamValue, Template, TemplateError, render_placeholders};

/// An unverified (SQL, Ibis) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `<template>.<variation>`, plus `.<n>` for each grid combination.
    pub id: String,
    pub template: String,
    pub variation: String,
    pub sql: String,
    pub ibis: String,
    /// The variable holding the result (`expr` by convention).
    pub expr_name: String,
    pub tables: TableSchemas,
    pub features: Vec<String>,
    pub difficulty: Option<String>,
    /// The verified example this candidate was made from (augmentation).
    pub derived_from: Option<String>,
    /// A machine translation whose result columns may be cast to the SQL's numeric types
    /// ([`ibert_verify::Verifier::verify_aligned`]); hand-written and user pairs are checked as
    /// they are.
    pub align_types: bool,
    /// Default fixtures shared with other candidates over the same schema (synthesized
    /// queries); `None`: fixtures of its own.
    pub shared_fixtures: Option<std::sync::Arc<ibert_verify::SharedFixtures>>,
}

/// Every candidate of one template, in variation order, grid combinations in key order.
pub fn expand_template(template: &Template) -> Result<Vec<Candidate>, TemplateError> {
    let tables = template.tables();
    let mut candidates = Vec::new();
    for (variation_name, variation) in template.variations() {
        let combinations = grid_combinations(&variation.grid);
        let numbered = combinations.len() > 1;
        for (index, grid_values) in combinations.into_iter().enumerate() {
            let mut params: BTreeMap<&str, &ParamValue> = variation.params.iter().map(|(k, v)| (k.as_str(), v)).collect();
            params.extend(grid_values.iter().map(|(k, v)| (k.as_str(), *v)));
            let render = |text: &str| {
                render_placeholders(text, &mut |name| params.get(name).map(|value| value.render()))
                    .map_err(|message| TemplateError::Invalid { origin: template.origin.clone(), message: format!("variation `{variation_name}`: {message}") })
            };
            let id = if numbered { format!("{}.{variation_name}.{index}", template.name) } else { format!("{}.{variation_name}", template.name) };
            candidates.push(Candidate {
                id,
                template: template.name.clone(),
                variation: variation_name.clone(),
                sql: render(&template.sql_template)?.trim().to_string(),
                ibis: render(&template.ibis_template)?.trim().to_string(),
                expr_name: "expr".into(),
                tables: tables.clone(),
                features: template.features.clone(),
                difficulty: template.difficulty.clone(),
                derived_from: None,
                align_types: false,
                shared_fixtures: None,
            });
        }
    }
    Ok(candidates)
}

/// The cartesian product of a grid, each combination as (key, value) pairs in key order.
fn grid_combinations(grid: &BTreeMap<String, Vec<ParamValue>>) -> Vec<Vec<(&String, &ParamValue)>> {
    let mut combinations: Vec<Vec<(&String, &ParamValue)>> = vec![Vec::new()];
    for (key, values) in grid {
        combinations = combinations
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |value| {
                    let mut next = prefix.clone();
                    next.push((key, value));
                    next
                })
            })
            .collect();
    }
    combinations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse_template;

    #[test]
    fn grid_expands_to_the_cartesian_product() {
        let text = r#"
name: g
context: {tables: {t: {schema: {a: int64, b: string}}}}
sql_template: SELECT * FROM t WHERE a > {x} AND b = '{y}'
ibis_template: t.filter((t.a > {x}) & (t.b == "{y}"))
variations:
  - name: one
    params: {x: 1, y: q}
  - name: many
    params: {x: 5}
    grid: {y: [p, q, r]}
"#;
        let candidates = expand_template(&parse_template(text, "g.yaml").unwrap()).unwrap();
        let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["g.one", "g.many.0", "g.many.1", "g.many.2"]);
        assert_eq!(candidates[3].sql, "SELECT * FROM t WHERE a > 5 AND b = 'r'");
        assert_eq!(candidates[3].ibis, "t.filter((t.a > 5) & (t.b == \"r\"))");
    }
}
