//! `--schema`, `--schema-file` and `--table-name`, read into a transpiler catalog, and the
//! program or query read from a file or standard input.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use ibert_transpile::Catalog;

use crate::cli::SchemaOptions;

/// The catalog the options describe, or None when no schema was given.
pub fn catalog(options: &SchemaOptions) -> anyhow::Result<Option<Catalog>> {
    let table_name = options.table_name.as_deref();
    if let Some(text) = &options.schema {
        return Ok(Some(Catalog::parse(text, table_name).context("reading --schema")?));
    }
    let Some(path) = &options.schema_file else {
        if options.table_name.is_some() {
            bail!("--table-name names the table of a `column: type, ...` schema; pass the schema with --schema");
        }
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the schema file {}", path.display()))?;
    let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    let catalog = if is_yaml {
        let value: serde_json::Value = serde_yaml_ng::from_str(&text).with_context(|| format!("{}: not valid YAML", path.display()))?;
        let tables = value.get("tables").unwrap_or(&value);
        Catalog::from_json(tables)
    } else {
        Catalog::parse(&text, table_name)
    };
    Ok(Some(catalog.with_context(|| format!("reading the schema file {}", path.display()))?))
}

/// The whole of `file`, or of standard input when there is none.
pub fn read_input(file: Option<&Path>, what: &str) -> anyhow::Result<String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
            text
        }
    };
    if text.trim().is_empty() {
        let source = file.map_or("standard input".to_string(), |p| p.display().to_string());
        bail!("{source} holds no {what}");
    }
    Ok(text)
}
