//! A model behind any OpenAI-compatible server (`model.provider: openai` in config.yaml): an
//! [`Engine`] whose answers come from `POST {base_url}/chat/completions`, streamed by server-sent
//! events, so the task commands, `ibert eval` and the checked retry loop run unchanged against
//! another `ibert serve`, llama.cpp's server, or a hosted API.
//!
//! The conversation travels as messages, not as text rendered with a template: the server
//! applies its own model's template. [`Engine::chat_prompt`] therefore returns the messages
//! themselves, serialized behind a marker, and [`Engine::generate`] sends a prompt that carries
//! the marker to the chat endpoint and any other text to the completion endpoint.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::chat::ChatMessage;
use crate::engine::{Engine, EngineError, Generation, GenerationOptions, StopReason};

/// Starts a prompt that holds serialized messages rather than text.
const MESSAGES_MARKER: &str = "\u{0}ibert-chat-messages:";

pub struct OpenAiEngine {
    base_url: String,
    model: String,
    agent: ureq::Agent,
}

impl OpenAiEngine {
    /// `base_url` ends before `/chat/completions` (`http://127.0.0.1:8080/v1`); `api_key`, when
    /// given, is sent as a bearer token.
    pub fn new(base_url: &str, model: &str, api_key: Option<&str>) -> OpenAiEngine {
        OpenAiEngine { base_url: base_url.trim_end_matches('/').to_string(), model: model.to_string(), agent: ibert_fetch::agent_with_bearer(api_key) }
    }

    fn post_streaming(&self, endpoint: &str, mut body: Value, options: &GenerationOptions, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError> {
        let url = format!("{}/{endpoint}", self.base_url);
        body["model"] = json!(self.model);
        body["max_tokens"] = json!(options.max_tokens);
        body["temperature"] = json!(options.temperature);
        body["seed"] = json!(options.seed);
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        if let Some(top_p) = options.top_p {
            body["top_p"] = json!(top_p);
        }
        if !options.stop.is_empty() {
            body["stop"] = json!(options.stop);
        }
        let started = Instant::now();
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .map_err(|error| EngineError::Inference(format!("{url}: {error} (is the server of model.base_url running?)")))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text).ok().and_then(|value| value["error"]["message"].as_str().map(str::to_string)).unwrap_or(text);
            return Err(EngineError::Inference(format!("{url}: HTTP {status}: {message}")));
        }
        let reader = BufReader::new(response.into_body().into_reader());
        let (mut text, mut first_token, mut usage, mut finish) = (String::new(), None, None, None);
        for line in reader.lines() {
            let line = line.map_err(|error| EngineError::Inference(format!("{url}: reading the stream: {error}")))?;
            let Some(data) = line.strip_prefix("data:").map(str::trim) else { continue };
            if data == "[DONE]" {
                break;
            }
            let chunk: Value =
                serde_json::from_str(data).map_err(|error| EngineError::Inference(format!("{url}: a stream event is not JSON ({error}): {data}")))?;
            if let Some(message) = chunk["error"]["message"].as_str() {
                return Err(EngineError::Inference(format!("{url}: {message}")));
            }
            if chunk["usage"].is_object() {
                usage = Some(chunk["usage"].clone());
            }
            let Some(choice) = chunk["choices"].get(0) else { continue };
            let piece = choice["delta"]["content"].as_str().or_else(|| choice["text"].as_str()).unwrap_or_default();
            if !piece.is_empty() {
                first_token.get_or_insert_with(|| started.elapsed());
                text.push_str(piece);
                on_text(piece);
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish = Some(reason.to_string());
            }
            if options.cancel.is_cancelled() {
                finish = Some("cancelled".to_string());
                break;
            }
        }
        let count = |key: &str| usage.as_ref().and_then(|usage| usage[key].as_u64()).unwrap_or(0) as usize;
        let prompt_time = first_token.unwrap_or_else(|| started.elapsed());
        Ok(Generation {
            text,
            prompt_tokens: count("prompt_tokens"),
            reused_prompt_tokens: 0,
            generated_tokens: count("completion_tokens"),
            prompt_time,
            generation_time: started.elapsed().saturating_sub(prompt_time).max(Duration::ZERO),
            stop_reason: match finish.as_deref() {
                Some("length") => StopReason::Length,
                Some("cancelled") => StopReason::Cancelled,
                _ => StopReason::EndOfText,
            },
            // The server decides how it decodes, and does not say.
            decoding: crate::speculative::DecodingReport { note: Some("decoded by the server".to_string()), ..Default::default() },
        })
    }
}

impl Engine for OpenAiEngine {
    fn describe(&self) -> String {
        format!("{} at {} (OpenAI-compatible API)", self.model, self.base_url)
    }

    fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        let messages = serde_json::to_string(messages).map_err(|error| EngineError::Inference(error.to_string()))?;
        Ok(format!("{MESSAGES_MARKER}{messages}"))
    }

    fn generate(&mut self, prompt: &str, options: &GenerationOptions, on_text: &mut dyn FnMut(&str)) -> Result<Generation, EngineError> {
        match prompt.strip_prefix(MESSAGES_MARKER) {
            Some(messages) => {
                let messages: Value = serde_json::from_str(messages).map_err(|error| EngineError::Inference(error.to_string()))?;
                self.post_streaming("chat/completions", json!({"messages": messages}), options, on_text)
            }
            None => self.post_streaming("completions", json!({"prompt": prompt}), options, on_text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_server_is_named_with_what_to_check() {
        // Port 9 (discard) on loopback: nothing listens there in a test.
        let mut engine = OpenAiEngine::new("http://127.0.0.1:9/v1/", "m", None);
        let prompt = engine.chat_prompt(&[ChatMessage::new("user", "hi")]).unwrap();
        let error = engine.generate(&prompt, &GenerationOptions::default(), &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains("http://127.0.0.1:9/v1/chat/completions") && error.contains("model.base_url"), "{error}");
    }
}
