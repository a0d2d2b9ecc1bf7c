//! Reading docstrings: their style (Google or NumPy), their summary, and the programs in their
//! `>>>` examples.

use ibert_records::DocStyle;

/// The style a docstring is written in, if it is one of the two the dataset knows.
pub fn style(docstring: &str) -> Option<DocStyle> {
    let lines: Vec<&str> = docstring.lines().map(str::trim_end).collect();
    let numpy = lines.windows(2).any(|pair| ["Parameters", "Returns", "Examples"].contains(&pair[0].trim()) && pair[1].trim().starts_with("---"));
    if numpy {
        return Some(DocStyle::Numpy);
    }
    let google = lines.iter().any(|line| ["Args:", "Arguments:", "Returns:", "Raises:", "Examples:"].contains(&line.trim()));
    google.then_some(DocStyle::Google)
}

/// The text before the first section: what the function does.
pub fn summary(docstring: &str) -> String {
    let mut kept = Vec::new();
    let lines: Vec<&str> = docstring.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let next = lines.get(index + 1).map_or("", |l| l.trim());
        let section = next.starts_with("---")
            || line.trim().ends_with(':') && ["Args:", "Arguments:", "Returns:", "Raises:", "Examples:", "Example:", "Note:", "Notes:"].contains(&line.trim());
        if section || line.trim_start().starts_with(">>>") {
            break;
        }
        kept.push(line.trim_end());
    }
    kept.join("\n").trim().to_string()
}

/// The doctest programs of a docstring: the `>>>` and `...` lines of each example run, joined
/// (outputs dropped), with display-only settings (`ibis.options.interactive`) left out.
pub fn examples(docstring: &str) -> Vec<String> {
    let mut programs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in docstring.lines() {
        let trimmed = line.trim_start();
        if let Some(code) = trimmed.strip_prefix(">>>") {
            let code = code.strip_prefix(' ').unwrap_or(code);
            if !code.starts_with("ibis.options.") {
                current.push(code.to_string());
            }
        } else if let Some(code) = trimmed.strip_prefix("...") {
            if !current.is_empty() {
                current.push(code.strip_prefix(' ').unwrap_or(code).to_string());
            }
        } else if trimmed.is_empty() && !current.is_empty() {
            // A blank line ends a run of examples.
            programs.push(std::mem::take(&mut current).join("\n"));
        }
    }
    if !current.is_empty() {
        programs.push(current.join("\n"));
    }
    // Each program is complete on its own when later runs rely on earlier ones: join them.
    let mut complete: Vec<String> = Vec::new();
    let mut prefix = String::new();
    for program in programs {
        prefix = if prefix.is_empty() { program } else { format!("{prefix}\n{program}") };
        complete.push(prefix.clone());
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMPY: &str = "Filter rows.\n\nMore words.\n\nParameters\n----------\npredicates\n    Conditions.\n\nExamples\n--------\n>>> import ibis\n>>> ibis.options.interactive = True\n>>> t = ibis.table({\"a\": \"int\"}, name=\"t\")\n>>> t.filter(\n...     t.a > 1\n... )\n┏━━━┓\n\n>>> t.count()\n3\n";

    #[test]
    fn styles_are_recognized() {
        assert_eq!(style(NUMPY), Some(DocStyle::Numpy));
        assert_eq!(style("Do it.\n\nArgs:\n    x: a thing.\n"), Some(DocStyle::Google));
        assert_eq!(style("Just words."), None);
    }

    #[test]
    fn the_summary_stops_at_the_first_section() {
        assert_eq!(summary(NUMPY), "Filter rows.\n\nMore words.");
        assert_eq!(summary("Do it.\n\nArgs:\n    x: a thing."), "Do it.");
    }

    #[test]
    fn examples_are_whole_programs_without_outputs() {
        let programs = examples(NUMPY);
        assert_eq!(programs.len(), 2);
        assert_eq!(programs[0], "import ibis\nt = ibis.table({\"a\": \"int\"}, name=\"t\")\nt.filter(\n    t.a > 1\n)");
        assert!(programs[1].ends_with("t.filter(\n    t.a > 1\n)\nt.count()"), "later runs keep the earlier ones: {}", programs[1]);
    }
}
