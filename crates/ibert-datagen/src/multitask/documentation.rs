//! Documentation examples: a verified program wrapped in a function whose parameters are the
//! tables it reads, and the docstring for it in Google or NumPy style. The parameter section
//! lists exactly the function's parameters, and the return section the columns real Ibis said
//! the result has.

use ibert_records::DocStyle;

use super::mutation::Schemas;
use crate::python_tokens::{Kind, tokenize};

/// What a docstring describes.
pub struct Documented {
    /// The function, without its docstring.
    pub function: String,
    pub docstring: String,
}

/// The tables `code` reads, in order of first use.
pub fn tables_used(code: &str, schemas: &Schemas) -> Vec<String> {
    let tokens = tokenize(code).unwrap_or_default();
    let mut used: Vec<String> = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let name = token.text(code);
        // Not an attribute (`_.orders`) or a keyword argument (`agg(orders=...)`).
        let attribute = index > 0 && tokens[index - 1].text(code) == ".";
        let keyword = token.depth > 0 && tokens.get(index + 1).is_some_and(|t| t.text(code) == "=");
        if token.kind == Kind::Name && schemas.contains_key(name) && !attribute && !keyword && !used.iter().any(|u| u == name) {
            used.push(name.to_string());
        }
    }
    used
}

/// `code` (whose result is `expr_name`) as `def name(tables...):`, and its docstring.
pub fn document(name: &str, summary: &str, code: &str, expr_name: &str, schemas: &Schemas, result_columns: &[(String, String)], style: DocStyle) -> Documented {
    let tables = tables_used(code, schemas);
    let body: String = code.lines().map(|line| if line.is_empty() { "\n".to_string() } else { format!("    {line}\n") }).collect();
    let function = format!("def {name}({}):\n{body}    return {expr_name}\n", tables.join(", "));
    let summary = sentence(summary);
    let describe_table = |table: &str| {
        let columns = schemas[table].iter().map(|(column, ty)| format!("{column} ({})", ty.as_str().unwrap_or("?"))).collect::<Vec<_>>();
        format!("The `{table}` table, with columns {}.", columns.join(", "))
    };
    let result = if result_columns.is_empty() {
        "The result expression.".to_string()
    } else {
        format!("A table with columns {}.", result_columns.iter().map(|(c, t)| format!("{c} ({t})")).collect::<Vec<_>>().join(", "))
    };
    let docstring = match style {
        DocStyle::Google => {
            let args: String = tables.iter().map(|t| format!("    {t}: {}\n", describe_table(t))).collect();
            format!("{summary}\n\nArgs:\n{args}\nReturns:\n    ibis.Table: {result}\n")
        }
        DocStyle::Numpy => {
            let params: String = tables.iter().map(|t| format!("{t} : ibis.Table\n    {}\n", describe_table(t))).collect();
            format!("{summary}\n\nParameters\n----------\n{params}\nReturns\n-------\nibis.Table\n    {result}\n")
        }
    };
    Documented { function, docstring }
}

/// A Python identifier for a function named after `text` (a template or example name).
pub fn function_name(text: &str) -> String {
    let mut name: String = text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_').to_string();
    let keyword = [
        "and", "as", "class", "def", "del", "for", "from", "global", "if", "import", "in", "is", "lambda", "not", "or", "pass", "return", "while", "with",
        "yield",
    ]
    .contains(&name.as_str());
    if name.is_empty() || keyword || name.starts_with(|c: char| c.is_ascii_digit()) { format!("query_{name}") } else { name }
}

/// `text` as a sentence: capitalized, ending with a period.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let capitalized = match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => "Compute the query.".to_string(),
    };
    if capitalized.ends_with('.') { capitalized } else { format!("{capitalized}.") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        serde_json::from_str(r#"{"orders": {"id": "int64", "amount": "float64"}, "customers": {"id": "int64"}, "unused": {"x": "string"}}"#).unwrap()
    }

    #[test]
    fn the_parameters_are_the_tables_the_code_reads() {
        let code = "joined = customers.join(orders, orders.id == customers.id)\nexpr = joined.filter(_.amount > 1).agg(unused=_.count())";
        let doc = document("big_orders", "orders above one", code, "expr", &schemas(), &[("id".into(), "int64".into())], DocStyle::Google);
        assert!(doc.function.starts_with("def big_orders(customers, orders):\n    joined = "), "{}", doc.function);
        assert!(doc.function.ends_with("    return expr\n"));
        assert_eq!(
            doc.docstring,
            "Orders above one.\n\nArgs:\n    customers: The `customers` table, with columns id (int64).\n    orders: The `orders` table, with columns id (int64), amount (float64).\n\nReturns:\n    ibis.Table: A table with columns id (int64).\n"
        );
        let numpy = document("big_orders", "Orders above one.", code, "expr", &schemas(), &[], DocStyle::Numpy);
        assert!(
            numpy.docstring.contains("Parameters\n----------\ncustomers : ibis.Table\n") && numpy.docstring.contains("orders : ibis.Table\n"),
            "{}",
            numpy.docstring
        );
        assert!(!numpy.docstring.contains("unused"));
    }

    #[test]
    fn function_names_are_identifiers() {
        assert_eq!(function_name("window_top-n.per group"), "window_top_n_per_group");
        assert_eq!(function_name("2024 report"), "query_2024_report");
        assert_eq!(function_name("class"), "query_class");
    }
}
