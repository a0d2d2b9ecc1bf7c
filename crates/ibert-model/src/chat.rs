//! A model's chat template (`tokenizer.chat_template`, Jinja as Hugging Face writes it), rendered
//! with minijinja and Python-compatible string methods, so that prompts are exactly what the model
//! was trained on.

use minijinja::{Environment, Error, ErrorKind, context};

pub use ibert_records::ChatMessage;

#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    #[error("the model's chat template does not parse: {0}")]
    Syntax(String),
    #[error("rendering the model's chat template failed: {0}")]
    Render(String),
}

/// A chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Checks that the template parses.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, ChatTemplateError> {
        let environment = environment();
        environment.template_from_str(source).map_err(|error| ChatTemplateError::Syntax(describe(&error)))?;
        Ok(ChatTemplate { source: source.to_string(), bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The prompt for `messages`, ending with the assistant's turn opened when
    /// `add_generation_prompt` is set.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ChatTemplateError> {
        let environment = environment();
        let template = environment.template_from_str(&self.source).map_err(|error| ChatTemplateError::Syntax(describe(&error)))?;
        template
            .render(context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|error| ChatTemplateError::Render(describe(&error)))
    }
}

fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    // Hugging Face templates call this to refuse conversations they cannot format.
    environment.add_function("raise_exception", |message: String| -> Result<String, Error> { Err(Error::new(ErrorKind::InvalidOperation, message)) });
    environment
}

fn describe(error: &Error) -> String {
    match error.detail() {
        Some(detail) => format!("{} ({detail}, line {})", error.kind(), error.line().unwrap_or(0)),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_messages_and_the_generation_prompt() {
        let source =
            "{% for m in messages %}<{{ m.role }}>{{ m.content.strip() }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
        let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let prompt = template.render(&[ChatMessage::new("system", "Be brief."), ChatMessage::new("user", " hi ")], true).unwrap();
        assert_eq!(prompt, "<system>Be brief.</s><user>hi</s><assistant>");
        assert_eq!(template.render(&[ChatMessage::new("user", "x")], false).unwrap(), "<user>x</s>");
    }

    #[test]
    fn a_broken_template_and_raise_exception_are_clear_errors() {
        let error = ChatTemplate::new("{% for m in messages %}", "", "").unwrap_err().to_string();
        assert!(error.contains("does not parse"), "{error}");
        let template = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let error = template.render(&[], true).unwrap_err().to_string();
        assert!(error.contains("roles must alternate"), "{error}");
    }
}
