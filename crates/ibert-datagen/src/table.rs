//! Plain text tables for summaries: a header row and rows, columns aligned, numbers aligned right.

pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(index, (cell, width))| {
                let numeric = index > 0 && !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '%');
                if numeric { format!("{cell:>width$}") } else { format!("{cell:<width$}") }
            })
            .collect();
        format!("  {}", line.join("  ").trim_end())
    };
    let mut out = render(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&render(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let text = super::table(&["name", "n"], &[vec!["a".into(), "10".into()], vec!["long name".into(), "2".into()]]);
        assert_eq!(text, "  name       n\n  a          10\n  long name   2\n");
    }
}
