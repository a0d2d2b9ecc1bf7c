//! Table schemas that SQL names are resolved against.

use crate::types::split_top_level;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One table: its name and its columns with their Ibis type strings, in declaration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

/// The tables a query may read. Lookups ignore ASCII case, as unquoted SQL names do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    tables: Vec<TableDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the schema is not valid JSON: {0}")]
    Json(String),
    #[error("the JSON schema must map table names to objects of column -> type, as in {{\"orders\": {{\"id\": \"int64\"}}}}; {0}")]
    Shape(String),
    #[error("column {index} of the schema (`{item}`) must be written `name: type`")]
    Column { index: usize, item: String },
    #[error("the schema `{0}` names no table; pass --table-name, or give JSON {{\"table\": {{\"column\": \"type\"}}}}")]
    NoTableName(String),
    #[error("the schema declares no columns")]
    Empty,
}

impl Catalog {
    pub fn new(tables: Vec<TableDef>) -> Catalog {
        Catalog { tables }
    }

    /// Reads either JSON `{"table": {"column": "type"}}` or the reference form
    /// `"id: int, name: string"`, which needs `table_name`.
    pub fn parse(text: &str, table_name: Option<&str>) -> Result<Catalog, CatalogError> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let value: Value = serde_json::from_str(trimmed).map_err(|error| CatalogError::Json(error.to_string()))?;
            return Catalog::from_json(&value);
        }
        let name = table_name.ok_or_else(|| CatalogError::NoTableName(trimmed.to_string()))?;
        let mut columns = Vec::new();
        for (index, item) in split_top_level(trimmed).into_iter().enumerate() {
            let (column, column_type) = item.split_once(':').ok_or_else(|| CatalogError::Column { index: index + 1, item: item.to_string() })?;
            let (column, column_type) = (column.trim(), column_type.trim());
            if column.is_empty() || column_type.is_empty() {
                return Err(CatalogError::Column { index: index + 1, item: item.to_string() });
            }
            columns.push((column.to_string(), normalize_type(column_type)));
        }
        if columns.is_empty() {
            return Err(CatalogError::Empty);
        }
        Ok(Catalog { tables: vec![TableDef { name: name.to_string(), columns }] })
    }

    pub fn from_json(value: &Value) -> Result<Catalog, CatalogError> {
        let tables = value.as_object().ok_or_else(|| CatalogError::Shape("the top level is not an object".into()))?;
        let mut defs = Vec::new();
        for (name, columns) in tables {
            let columns = columns.as_object().ok_or_else(|| CatalogError::Shape(format!("`{name}` is not an object")))?;
            let mut def = TableDef { name: name.clone(), columns: Vec::new() };
            for (column, column_type) in columns {
                let column_type = column_type.as_str().ok_or_else(|| CatalogError::Shape(format!("the type of `{name}.{column}` is not a string")))?;
                def.columns.push((column.clone(), normalize_type(column_type)));
            }
            defs.push(def);
        }
        if defs.is_empty() {
            return Err(CatalogError::Empty);
        }
        Ok(Catalog { tables: defs })
    }

    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|table| table.name == name).or_else(|| self.tables.iter().find(|table| table.name.eq_ignore_ascii_case(name)))
    }

    pub fn tables(&self) -> &[TableDef] {
        &self.tables
    }

    /// The subset of tables named in `names`, as the verifier and the oracle take them.
    /// Every table of the catalog, as schemas.
    pub fn schemas(&self) -> BTreeMap<String, Map<String, Value>> {
        let names: Vec<String> = self.tables.iter().map(|t| t.name.clone()).collect();
        self.schemas_of(&names)
    }

    pub fn schemas_of(&self, names: &[String]) -> BTreeMap<String, Map<String, Value>> {
        names
            .iter()
            .filter_map(|name| self.table(name))
            .map(|table| {
                let columns = table.columns.iter().map(|(c, t)| (c.clone(), Value::String(t.clone()))).collect();
                (table.name.clone(), columns)
            })
            .collect()
    }
}

/// The reference tool's short type names, spelled as Ibis spells them.
fn normalize_type(text: &str) -> String {
    let lower = text.trim().to_ascii_lowercase();
    match lower.as_str() {
        "int" | "integer" | "bigint" | "long" => "int64".into(),
        "smallint" => "int16".into(),
        "tinyint" => "int8".into(),
        "float" | "double" | "real" | "number" => "float64".into(),
        "str" | "text" | "varchar" => "string".into(),
        "bool" => "boolean".into(),
        "datetime" => "timestamp".into(),
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_form_needs_a_table_name_and_keeps_nested_types_whole() {
        let catalog = Catalog::parse("id: int, price: decimal(10, 2), name: string", Some("items")).unwrap();
        let table = catalog.table("ITEMS").unwrap();
        assert_eq!(table.columns, vec![("id".into(), "int64".into()), ("price".into(), "decimal(10, 2)".into()), ("name".into(), "string".into())]);
        assert!(matches!(Catalog::parse("id: int", None), Err(CatalogError::NoTableName(_))));
        assert!(matches!(Catalog::parse("id int", Some("t")), Err(CatalogError::Column { index: 1, .. })));
    }

    #[test]
    fn json_form_keeps_table_and_column_order() {
        let catalog = Catalog::parse(r#"{"b": {"y": "date", "x": "int32"}, "a": {"k": "text"}}"#, None).unwrap();
        let names: Vec<_> = catalog.tables().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(catalog.table("a").unwrap().columns, vec![("k".into(), "string".into())]);
        assert!(matches!(Catalog::parse(r#"{"a": 1}"#, None), Err(CatalogError::Shape(_))));
        assert!(matches!(Catalog::parse("{oops", None), Err(CatalogError::Json(_))));
    }
}
