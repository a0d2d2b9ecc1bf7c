//! The messages a model sees for each task: a system message (what Ibis is here, the tables),
//! optional worked examples, then the request. The same functions render a record's prompt in
//! `data all`, a command's prompt, and an eval prompt.

use ibert_records::{ChatMessage, DocStyle, Example, Payload, Task};

pub use ibert_records::TableSchemas as Tables;

/// What a model is asked, for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskInput<'a> {
    SqlToIbis { sql: &'a str },
    IbisToSql { ibis: &'a str, dialect: &'a str },
    CodeCompletion { partial_code: &'a str },
    ErrorResolution { broken_code: &'a str, error: &'a str, context: Option<&'a str> },
    Qa { question: &'a str },
    Documentation { code: &'a str, style: DocStyle },
}

impl<'a> TaskInput<'a> {
    /// The input of a record.
    pub fn of(example: &'a Example) -> TaskInput<'a> {
        match &example.payload {
            Payload::SqlToIbis { input, .. } => TaskInput::SqlToIbis { sql: &input.sql },
            Payload::IbisToSql { input, .. } => TaskInput::IbisToSql { ibis: &input.ibis, dialect: &input.dialect },
            Payload::CodeCompletion { input, .. } => TaskInput::CodeCompletion { partial_code: &input.partial_code },
            Payload::ErrorResolution { input, .. } => {
                TaskInput::ErrorResolution { broken_code: &input.broken_code, error: &input.error, context: input.context_info.as_deref() }
            }
            Payload::Qa { input, .. } => TaskInput::Qa { question: &input.question },
            Payload::Documentation { input, .. } => TaskInput::Documentation { code: &input.code, style: input.style },
        }
    }

    pub fn task(&self) -> Task {
        match self {
            TaskInput::SqlToIbis { .. } => Task::SqlToIbis,
            TaskInput::IbisToSql { .. } => Task::IbisToSql,
            TaskInput::CodeCompletion { .. } => Task::CodeCompletion,
            TaskInput::ErrorResolution { .. } => Task::ErrorResolution,
            TaskInput::Qa { .. } => Task::Qa,
            TaskInput::Documentation { .. } => Task::Documentation,
        }
    }
}

/// A worked example shown before the request: the request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    pub user: String,
    pub assistant: String,
}

impl Shot {
    /// A record as a worked example: its request and its target as the answer.
    pub fn of(example: &Example) -> Shot {
        Shot { user: user_message(&TaskInput::of(example)), assistant: assistant_message(example) }
    }
}

/// The messages of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub messages: Vec<ChatMessage>,
}

impl Prompt {
    /// System message, worked examples, request.
    pub fn render(input: &TaskInput, tables: &Tables, shots: &[Shot]) -> Prompt {
        let mut messages = vec![ChatMessage::new("system", &system_message(input.task(), tables))];
        for shot in shots {
            messages.push(ChatMessage::new("user", &shot.user));
            messages.push(ChatMessage::new("assistant", &shot.assistant));
        }
        messages.push(ChatMessage::new("user", &user_message(input)));
        Prompt { messages }
    }

    /// The prompt of a record, without worked examples: what `data all` stores with it.
    pub fn of(example: &Example) -> Prompt {
        Prompt::render(&TaskInput::of(example), &example.context.schemas(), &[])
    }
}

const IBIS: &str = "You write Python code with the Ibis dataframe library (ibis-framework 12: `import ibis`, `from ibis import _`). \
Tables are Python variables named after the table. A program leaves its result, an Ibis expression, in the variable `expr`.";

/// The system message of a task, naming the tables and their column types.
pub fn system_message(task: Task, tables: &Tables) -> String {
    let role = match task {
        Task::SqlToIbis => "Translate SQL queries into Ibis programs that return the same rows, columns and types.",
        Task::IbisToSql => "Translate Ibis programs into the SQL they compile to.",
        Task::CodeCompletion => "Complete unfinished Ibis programs: keep the given lines as they are and finish the program.",
        Task::ErrorResolution => "Fix Ibis programs that fail: change as little as possible.",
        Task::Qa => "Answer questions about Ibis briefly; show code in ```python blocks.",
        Task::Documentation => "Write Python docstrings for Ibis code.",
    };
    let mut text = format!("{IBIS} {role}");
    if !tables.is_empty() {
        text.push_str(" The tables:");
        for (name, columns) in tables {
            let columns: Vec<String> = columns.iter().map(|(column, kind)| format!("{column} {}", kind.as_str().unwrap_or("?"))).collect();
            text.push_str(&format!(" {name}({});", columns.join(", ")));
        }
    }
    text
}

/// The request of one input.
pub fn user_message(input: &TaskInput) -> String {
    match *input {
        TaskInput::SqlToIbis { sql } => format!("Translate this SQL query into an Ibis program whose result is `expr`.\n```sql\n{}\n```", sql.trim()),
        TaskInput::IbisToSql { ibis, dialect } => format!("Write the {dialect} SQL of this Ibis program.\n```python\n{}\n```", ibis.trim_end()),
        TaskInput::CodeCompletion { partial_code } => {
            format!("Complete this Ibis program. Reply with the whole program, starting with the lines given.\n```python\n{}\n```", partial_code.trim_end())
        }
        TaskInput::ErrorResolution { broken_code, error, context } => {
            let mut text = format!("This Ibis program fails with: {error}\n```python\n{}\n```\n", broken_code.trim_end());
            if let Some(context) = context {
                text.push_str(&format!("It is meant to: {context}\n"));
            }
            text.push_str("Reply with the corrected program.");
            text
        }
        TaskInput::Qa { question } => question.trim().to_string(),
        TaskInput::Documentation { code, style } => {
            let style = match style {
                DocStyle::Google => "Google style (Args:, Returns:)",
                DocStyle::Numpy => "NumPy style (Parameters and Returns sections underlined with dashes)",
            };
            format!("Write the docstring, in {style}, for:\n```python\n{}\n```\nReply with the docstring only, in triple quotes.", code.trim_end())
        }
    }
}

/// The answer a model should give for a record: its target, as the assistant would write it.
pub fn assistant_message(example: &Example) -> String {
    match &example.payload {
        Payload::SqlToIbis { target, .. } => python_block(&target.ibis),
        Payload::IbisToSql { target, .. } => format!("```sql\n{}\n```", target.sql.trim_end()),
        Payload::CodeCompletion { target, .. } => python_block(&target.completed_code),
        Payload::ErrorResolution { target, .. } => {
            let block = python_block(&target.fixed_code);
            match &target.explanation {
                Some(explanation) => format!("{block}\n{}", explanation.trim()),
                None => block,
            }
        }
        Payload::Qa { target, .. } => target.answer.trim().to_string(),
        Payload::Documentation { target, .. } => format!("\"\"\"{}\"\"\"", target.docstring.trim_end()),
    }
}

fn python_block(code: &str) -> String {
    format!("```python\n{}\n```", code.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Tables {
        serde_json::from_value(serde_json::json!({"orders": {"id": "int64", "amount": "decimal(10, 2)"}})).unwrap()
    }

    #[test]
    fn the_system_message_names_the_tables_and_the_task() {
        let text = system_message(Task::SqlToIbis, &tables());
        assert!(text.contains("orders(id int64, amount decimal(10, 2));"), "{text}");
        assert!(text.contains("Translate SQL queries"), "{text}");
    }

    #[test]
    fn a_record_renders_to_system_then_request_and_shots_come_between() {
        let record: Example = serde_json::from_value(serde_json::json!({
            "id": "x", "task": "sql_to_ibis", "input": {"sql": "SELECT id FROM orders"}, "target": {"ibis": "expr = orders.select('id')"},
            "context": {"tables": {"orders": {"schema": {"id": "int64"}}}}
        }))
        .unwrap();
        let prompt = Prompt::of(&record);
        assert_eq!(prompt.messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["system", "user"]);
        assert!(prompt.messages[1].content.contains("SELECT id FROM orders"));
        let shot = Shot::of(&record);
        assert_eq!(shot.assistant, "```python\nexpr = orders.select('id')\n```");
        let with_shot = Prompt::render(&TaskInput::of(&record), &record.context.schemas(), &[shot]);
        assert_eq!(with_shot.messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["system", "user", "assistant", "user"]);
    }
}
