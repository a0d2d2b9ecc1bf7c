//! Templates: a pair of SQL and Ibis texts with `{param}` placeholders, the tables they use, and
//! variations that fill the placeholders (each variation may add a grid of values whose
//! cartesian product gives more examples). The format is documented in `docs/templates.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/embedded_templates.rs"));

pub type Schema = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub difficulty: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
    /// `context.tables.<table>.schema`: column -> Ibis type.
    #[serde(default)]
    pub context: Option<TemplateContext>,
    /// The reference tool's older form: `schema.<table>.<column>: type`.
    #[serde(default)]
    pub schema: Option<BTreeMap<String, Schema>>,
    pub sql_template: String,
    pub ibis_template: String,
    #[serde(default)]
    pub variations: Vec<RawVariation>,
    /// Where it was read from, for messages.
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateContext {
    pub tables: BTreeMap<String, TableSchema>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    pub schema: Schema,
}

/// A variation as written: `{name, params, grid}`, or (reference form) a flat map of params.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawVariation {
    Structured(Variation),
    Flat(BTreeMap<String, ParamValue>),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Variation {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Each combination of these lists becomes one example.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<ParamValue>>,
}

/// A parameter value: inserted verbatim; a list is inserted as its items joined by `, `.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct ParamValue(pub serde_yaml_ng::Value);

impl ParamValue {
    pub fn render(&self) -> String {
        render_yaml(&self.0)
    }
}

fn render_yaml(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::Null => "None".into(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Sequence(items) => items.iter().map(render_yaml).collect::<Vec<_>>().join(", "),
        other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{origin}:{line}:{column}: {message}")]
    Yaml { origin: String, line: usize, column: usize, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{action} `{path}`: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// Names asked for that no template has (each in backticks).
    #[error("no template named {0}")]
    Unknown(String),
}

impl Template {
    /// Table name -> schema, from `context.tables` or the older top-level `schema`.
    pub fn tables(&self) -> ibert_records::TableSchemas {
        if let Some(context) = &self.context {
            return context.tables.iter().map(|(name, table)| (name.clone(), table.schema.clone())).collect();
        }
        self.schema.clone().unwrap_or_default()
    }

    /// Variations in the structured form, named `v1`, `v2`, ... when they have no name.
    pub fn variations(&self) -> Vec<(String, Variation)> {
        if self.variations.is_empty() {
            return vec![("base".into(), Variation::default())];
        }
        self.variations
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let variation = match raw {
                    RawVariation::Structured(variation) => variation.clone(),
                    RawVariation::Flat(params) => Variation { name: None, params: params.clone(), grid: BTreeMap::new() },
                };
                let name = variation.name.clone().unwrap_or_else(|| format!("v{}", index + 1));
                (name, variation)
            })
            .collect()
    }
}

/// Parses one template and checks it: tables present, placeholders well formed, every
/// placeholder filled by every variation, variation names unique.
pub fn parse_template(text: &str, origin: &str) -> Result<Template, TemplateError> {
    let mut template: Template = serde_yaml_ng::from_str(text).map_err(|error| {
        let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
        TemplateError::Yaml { origin: origin.into(), line, column, message: error.to_string() }
    })?;
    template.origin = origin.to_string();
    let invalid = |message: String| TemplateError::Invalid { origin: origin.into(), message };

    if template.name.trim().is_empty() {
        return Err(invalid("`name` is empty".into()));
    }
    if template.tables().is_empty() {
        return Err(invalid("no tables: add `context.tables.<name>.schema`".into()));
    }
    let mut placeholders = BTreeSet::new();
    for (field, text) in [("sql_template", &template.sql_template), ("ibis_template", &template.ibis_template)] {
        placeholders.extend(placeholders_in(text).map_err(|message| invalid(format!("`{field}`: {message}")))?);
    }
    let mut names = BTreeSet::new();
    for (name, variation) in template.variations() {
        if !names.insert(name.clone()) {
            return Err(invalid(format!("two variations are named `{name}`")));
        }
        for (key, values) in &variation.grid {
            if values.is_empty() {
                return Err(invalid(format!("variation `{name}`: grid `{key}` is an empty list")));
            }
        }
        let given: BTreeSet<&String> = variation.params.keys().chain(variation.grid.keys()).collect();
        if let Some(missing) = placeholders.iter().find(|p| !given.contains(p)) {
            return Err(invalid(format!("variation `{name}` gives no value for placeholder `{{{missing}}}`")));
        }
    }
    Ok(template)
}

/// The `{name}` placeholders of a template text; `{{` and `}}` are literal braces.
pub fn placeholders_in(text: &str) -> Result<BTreeSet<String>, String> {
    let mut found = BTreeSet::new();
    render_placeholders(text, &mut |name| {
        found.insert(name.to_string());
        Some(String::new())
    })?;
    Ok(found)
}

/// Replaces each `{name}` with `value(name)`; `{{`/`}}` become `{`/`}`.
pub fn render_placeholders(text: &str, value: &mut dyn FnMut(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, next)| *next) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, next)| *next) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &text[index + 1..];
                let end = rest.find('}').ok_or_else(|| format!("unclosed `{{` at byte {index} (write `{{{{` for a literal brace)"))?;
                let name = &rest[..end];
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(format!("`{{{name}}}` at byte {index} is not a placeholder (write `{{{{` for a literal brace)"));
                }
                let replacement = value(name).ok_or_else(|| format!("no value for placeholder `{{{name}}}`"))?;
                out.push_str(&replacement);
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => return Err(format!("lone `}}` at byte {index} (write `}}}}` for a literal brace)")),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The templates shipped inside the binary.
pub fn load_embedded_templates() -> Result<Vec<Template>, TemplateError> {
    let templates = EMBEDDED_TEMPLATES.iter().map(|(name, text)| parse_template(text, &format!("templates/{name}"))).collect::<Result<Vec<_>, _>>()?;
    check_unique_names(templates)
}

/// Every `*.yaml` / `*.yml` file of a folder, in file-name order.
pub fn load_templates_dir(dir: &Path) -> Result<Vec<Template>, TemplateError> {
    let io_error = |action, source| TemplateError::Io { action, path: dir.into(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error("reading the template folder", e))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    let mut templates = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| TemplateError::Io { action: "reading", path: file.clone(), source })?;
        templates.push(parse_template(&text, &file.display().to_string())?);
    }
    check_unique_names(templates)
}

fn check_unique_names(templates: Vec<Template>) -> Result<Vec<Template>, TemplateError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for template in &templates {
        if let Some(first) = seen.insert(&template.name, &template.origin) {
            return Err(TemplateError::Invalid {
                origin: template.origin.clone(),
                message: format!("template name `{}` is also used by {first}", template.name),
            });
        }
    }
    Ok(templates)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: select_where
description: filter
difficulty: easy
features: [select, where]
context:
  tables:
    events: {schema: {user_id: int64, amount: float64}}
sql_template: SELECT user_id FROM events WHERE amount > {threshold}
ibis_template: events.filter(events.amount > {threshold}).select("user_id")
variations:
  - name: low
    params: {threshold: 10}
  - name: grid
    grid: {threshold: [1, 2]}
"#;

    #[test]
    fn parses_and_names_variations() {
        let template = parse_template(GOOD, "t.yaml").unwrap();
        let names: Vec<String> = template.variations().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["low", "grid"]);
        assert_eq!(template.tables()["events"].keys().collect::<Vec<_>>(), ["user_id", "amount"]);
    }

    #[test]
    fn reference_form_with_flat_variations_and_top_level_schema() {
        let text = "name: ref\nschema:\n  events: {user_id: int64}\nsql_template: SELECT {columns} FROM {table}\nibis_template: '{table}.select({columns})'\nvariations:\n  - {columns: user_id, table: events}\n";
        let template = parse_template(text, "ref.yaml").unwrap();
        let (name, variation) = &template.variations()[0];
        assert_eq!(name, "v1");
        assert_eq!(variation.params["table"].render(), "events");
    }

    #[test]
    fn yaml_error_gives_file_line_and_column() {
        let error = parse_template("name: x\nsql_template: [unclosed\n", "bad.yaml").unwrap_err().to_string();
        assert!(error.starts_with("bad.yaml:"), "{error}");
        let error = parse_template(&GOOD.replace("sql_template", "sqll_template"), "typo.yaml").unwrap_err().to_string();
        assert!(error.contains("typo.yaml:") && error.contains("sqll_template"), "{error}");
    }

    #[test]
    fn missing_placeholder_value_names_variation_and_placeholder() {
        let text = GOOD.replace("params: {threshold: 10}", "params: {limit: 10}");
        let error = parse_template(&text, "t.yaml").unwrap_err().to_string();
        assert_eq!(error, "t.yaml: variation `low` gives no value for placeholder `{threshold}`");
    }

    #[test]
    fn braces_escape_and_bad_braces_are_explained() {
        let rendered = render_placeholders("{{'a': {x}}}", &mut |_| Some("1".into())).unwrap();
        assert_eq!(rendered, "{'a': 1}");
        let error = render_placeholders("ibis.struct({'a': 1})", &mut |_| Some(String::new())).unwrap_err();
        assert!(error.contains("not a placeholder"), "{error}");
    }

    #[test]
    fn embedded_templates_all_parse() {
        let templates = load_embedded_templates().unwrap();
        assert!(templates.len() >= 40, "only {} templates", templates.len());
    }
}
