//! A program's goal stated as SQL, so that an answer to `complete` or `fix` can be checked by
//! execution against it (the SQL's result on the fixtures), as `from-sql`'s translations are: a
//! leading comment that holds a query (`# SELECT ...`, or `# Goal: SELECT ...` over several
//! comment lines), or the `--goal-sql` flag.

/// Labels a goal comment may start with (case aside).
const LABELS: [&str; 5] = ["goal:", "sql:", "goal (sql):", "query:", "equivalent sql:"];

/// The SQL of the leading comment block of `program`, when it holds a query (`SELECT` or
/// `WITH` first, after an optional label).
pub fn goal_sql(program: &str) -> Option<String> {
    let comment: Vec<&str> = program
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .take_while(|line| line.trim_start().starts_with('#'))
        .map(|line| line.trim_start().trim_start_matches('#').trim())
        .collect();
    let text = comment.join("\n");
    let mut text = text.trim();
    for label in LABELS {
        if text.len() >= label.len() && text[..label.len()].eq_ignore_ascii_case(label) {
            text = text[label.len()..].trim_start();
            break;
        }
    }
    let first = text.split_whitespace().next()?.to_ascii_uppercase();
    (first == "SELECT" || first == "WITH").then(|| text.trim_end_matches(';').trim().to_string())
}

/// `sql` as the leading comment [`goal_sql`] reads back (`# Goal: SELECT ...`, a line each).
pub fn as_comment(sql: &str) -> String {
    let lines: Vec<String> = sql.trim().lines().enumerate().map(|(i, line)| if i == 0 { format!("# Goal: {line}") } else { format!("# {line}") }).collect();
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_comment_with_a_query_is_the_goal() {
        let program = "# Goal: SELECT name, SUM(amount) AS total\n#   FROM orders GROUP BY name;\nexpr = orders.group_by('name')";
        assert_eq!(goal_sql(program).as_deref(), Some("SELECT name, SUM(amount) AS total\nFROM orders GROUP BY name"));
        assert_eq!(goal_sql("\n# with t as (select 1) select * from t\nexpr = t").as_deref(), Some("with t as (select 1) select * from t"));
    }

    #[test]
    fn a_goal_written_as_a_comment_reads_back() {
        let sql = "SELECT name,\n       SUM(amount) AS total\nFROM orders\nGROUP BY name";
        let program = format!("{}expr = orders.group_by('name')", as_comment(sql));
        assert!(program.starts_with("# Goal: SELECT name,\n#        SUM(amount) AS total\n# FROM orders\n"), "{program}");
        assert_eq!(goal_sql(&program).as_deref(), Some("SELECT name,\nSUM(amount) AS total\nFROM orders\nGROUP BY name"));
    }

    #[test]
    fn other_comments_and_later_comments_are_not_goals() {
        assert_eq!(goal_sql("# the customers who ordered twice\nexpr = customers"), None);
        assert_eq!(goal_sql("expr = customers\n# SELECT * FROM customers"), None);
        assert_eq!(goal_sql("# selection of columns\nexpr = t"), None);
        assert_eq!(goal_sql(""), None);
    }
}
