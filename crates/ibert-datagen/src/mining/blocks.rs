//! Code blocks of documentation: fenced blocks of Markdown and Quarto files, and the cells of
//! Jupyter notebooks, each with its language and first line.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Sql,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeBlock {
    pub language: Language,
    pub code: String,
    /// 1-based line of the first line of code (for notebooks: the cell number).
    pub line: u64,
}

/// The Python and SQL fenced blocks of a Markdown or Quarto text.
pub fn markdown_blocks(text: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Option<Language>, u64, Vec<&str>)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                let fence = if trimmed.starts_with("```") {
                    "```"
                } else if trimmed.starts_with("~~~") {
                    "~~~"
                } else {
                    continue;
                };
                let marker: String = trimmed.chars().take_while(|c| *c == fence.as_bytes()[0] as char).collect();
                let info = trimmed[marker.len()..].trim().trim_start_matches('{').trim_end_matches('}');
                let word = info.split([' ', ',', '}']).next().unwrap_or("").trim_start_matches('.').to_ascii_lowercase();
                let language = match word.as_str() {
                    "python" | "py" | "python3" | "ipython" | "pycon" => Some(Language::Python),
                    "sql" => Some(Language::Sql),
                    _ => None,
                };
                open = Some((marker, language, index as u64 + 2, Vec::new()));
            }
            Some((marker, language, first, lines)) => {
                if trimmed.starts_with(marker.as_str()) && trimmed.trim_start_matches(marker.chars().next().unwrap_or('`')).trim().is_empty() {
                    if let Some(language) = language {
                        let code = lines.join("\n");
                        // A console transcript (`>>>` prompts) is its program without the outputs.
                        let code = if code.trim_start().starts_with(">>>") {
                            super::docstrings::examples(&code).pop().unwrap_or_default()
                        } else {
                            strip_quarto_options(&code)
                        };
                        if !code.trim().is_empty() {
                            blocks.push(CodeBlock { language: *language, code, line: *first });
                        }
                    }
                    open = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    blocks
}

/// Quarto cell options (`#| echo: false`) are not code.
fn strip_quarto_options(code: &str) -> String {
    code.lines().filter(|line| !line.trim_start().starts_with("#|")).collect::<Vec<_>>().join("\n")
}

/// The blocks of a notebook: code cells (SQL when they start with `%%sql`), and the fenced
/// blocks of markdown cells. `Err` says why the notebook cannot be read.
pub fn notebook_blocks(text: &str) -> Result<Vec<CodeBlock>, String> {
    let notebook: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let cells = notebook.get("cells").and_then(Value::as_array).ok_or("no `cells` list")?;
    let mut blocks = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        let source = match cell.get("source") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(lines)) => lines.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let number = index as u64 + 1;
        match cell.get("cell_type").and_then(Value::as_str) {
            Some("code") => {
                if let Some(sql) = source.strip_prefix("%%sql") {
                    let sql = sql.split_once('\n').map_or("", |(_, rest)| rest);
                    blocks.push(CodeBlock { language: Language::Sql, code: sql.trim().to_string(), line: number });
                } else if !source.trim_start().starts_with(['%', '!']) && !source.trim().is_empty() {
                    blocks.push(CodeBlock { language: Language::Python, code: source, line: number });
                }
            }
            Some("markdown") => blocks.extend(markdown_blocks(&source).into_iter().map(|b| CodeBlock { line: number, ..b })),
            _ => {}
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_blocks_keep_language_and_line() {
        let text = "# Title\n\n```sql\nSELECT a FROM t\n```\n\nText\n\n```{python}\n#| echo: false\nexpr = t.select('a')\n```\n~~~bash\nls\n~~~\n";
        let blocks = markdown_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].language, blocks[0].code.as_str(), blocks[0].line), (Language::Sql, "SELECT a FROM t", 4));
        assert_eq!((blocks[1].language, blocks[1].code.as_str()), (Language::Python, "expr = t.select('a')"));
    }

    #[test]
    fn notebooks_give_cells_and_broken_ones_a_reason() {
        let notebook = r##"{"cells": [{"cell_type": "code", "source": ["%%sql\n", "SELECT 1"]}, {"cell_type": "code", "source": "t.count()"}, {"cell_type": "markdown", "source": "```python\nx = 1\n```"}, {"cell_type": "code", "source": "!pip install ibis"}]}"##;
        let blocks = notebook_blocks(notebook).unwrap();
        assert_eq!(
            blocks.iter().map(|b| (b.language, b.code.as_str(), b.line)).collect::<Vec<_>>(),
            [(Language::Sql, "SELECT 1", 1), (Language::Python, "t.count()", 2), (Language::Python, "x = 1", 3)]
        );
        assert!(notebook_blocks("{\"cells\": [").unwrap_err().starts_with("not JSON"));
        assert_eq!(notebook_blocks("{}").unwrap_err(), "no `cells` list");
    }
}
