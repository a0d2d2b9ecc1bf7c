//! `POST /v1/chat/completions`, `POST /v1/completions` and `GET /v1/models`, in the shapes
//! OpenAI clients send and read, streaming by server-sent events (`data: {chunk}` ... `data:
//! [DONE]`). A chat request goes through the model's own chat template; a completion request's
//! prompt is run as it is. Fields clients send that change nothing here (`user`, penalties,
//! `logprobs: false`) are accepted and ignored; `n` above 1 is refused.

use std::convert::Infallible;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State as AxumState;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use ibert_model::{ChatMessage, Engine, EngineError, Generation, GenerationOptions, StopReason};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::errors::{ApiError, JsonBody};
use crate::generation::{CancelOnDrop, deadline_passed};
use crate::state::State;
use crate::timings::Timings;

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<RequestMessage>,
    #[serde(flatten)]
    pub sampling: Sampling,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub prompt: PromptText,
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// The sampling fields both endpoints share.
#[derive(Debug, Default, Deserialize)]
pub struct Sampling {
    pub max_tokens: Option<usize>,
    /// The newer name of `max_tokens` in the chat API.
    pub max_completion_tokens: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: bool,
    pub n: Option<u32>,
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PromptText {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct RequestMessage {
    pub role: String,
    pub content: Content,
}

/// A message's content: a string, or parts of which only text is read.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    fn text(self) -> Result<String, ApiError> {
        match self {
            Content::Text(text) => Ok(text),
            Content::Parts(parts) => parts
                .into_iter()
                .map(|part| match (part.kind.as_str(), part.text) {
                    ("text", Some(text)) => Ok(text),
                    (kind, _) => Err(ApiError::bad_request(format!("message parts of type `{kind}` are not supported; send text"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|texts| texts.join("")),
        }
    }
}

pub async fn models(AxumState(state): AxumState<State>) -> Result<Json<Value>, ApiError> {
    let ready = state.ready()?;
    let data: Vec<Value> = ready
        .generation
        .iter()
        .map(|queue| json!({"id": queue.model_id, "object": "model", "created": 0, "owned_by": "ibert", "description": queue.describe}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn chat_completions(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<ChatRequest>) -> Result<Response, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::bad_request("`messages` is empty"));
    }
    let messages = request
        .messages
        .into_iter()
        .map(|message| {
            if !matches!(message.role.as_str(), "system" | "user" | "assistant" | "developer") {
                return Err(ApiError::bad_request(format!("message role `{}` is not one of system, developer, user, assistant", message.role)));
            }
            let role = if message.role == "developer" { "system".to_string() } else { message.role };
            Ok(ChatMessage::new(&role, &message.content.text()?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let _ = request.model;
    generate(state, Prompt::Chat(messages), request.sampling, Kind::Chat).await
}

pub async fn completions(AxumState(state): AxumState<State>, JsonBody(request): JsonBody<CompletionRequest>) -> Result<Response, ApiError> {
    let prompt = match request.prompt {
        PromptText::One(text) => text,
        PromptText::Many(mut texts) if texts.len() == 1 => texts.remove(0),
        PromptText::Many(_) => return Err(ApiError::bad_request("one prompt per request: `prompt` as a list must hold exactly one string")),
    };
    if prompt.is_empty() {
        return Err(ApiError::bad_request("`prompt` is empty"));
    }
    let _ = request.model;
    generate(state, Prompt::Text(prompt), request.sampling, Kind::Text).await
}

enum Prompt {
    Chat(Vec<ChatMessage>),
    Text(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Text,
}

impl Kind {
    fn object(self, streamed: bool) -> &'static str {
        match (self, streamed) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Text, _) => "text_completion",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Kind::Chat => "chatcmpl",
            Kind::Text => "cmpl",
        }
    }

    /// One choice: the whole message, a streamed piece of it, or the closing piece.
    fn choice(self, text: &str, streamed: bool, finish_reason: Option<&str>) -> Value {
        match (self, streamed) {
            (Kind::Chat, false) => json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}),
            (Kind::Chat, true) => {
                let delta = if finish_reason.is_some() { json!({}) } else { json!({"role": "assistant", "content": text}) };
                json!({"index": 0, "delta": delta, "finish_reason": finish_reason})
            }
            (Kind::Text, _) => json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}),
        }
    }
}

/// A streamed piece of the answer, or its end.
enum Piece {
    Text(String),
    Done(Result<Generation, String>),
}

async fn generate(state: State, prompt: Prompt, sampling: Sampling, kind: Kind) -> Result<Response, ApiError> {
    let started = Instant::now();
    let ready = state.ready()?;
    let queue = ready.model()?;
    if sampling.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("`n` must be 1: this server generates one answer per request"));
    }
    let defaults = &state.options.generation;
    let options = GenerationOptions {
        max_tokens: state.max_tokens(sampling.max_completion_tokens.or(sampling.max_tokens))?,
        temperature: sampling.temperature.unwrap_or(defaults.temperature),
        top_p: sampling.top_p.or(defaults.top_p),
        seed: sampling.seed.unwrap_or(defaults.seed),
        stop: match sampling.stop {
            None => Vec::new(),
            Some(Stop::One(stop)) => vec![stop],
            Some(Stop::Many(stops)) => stops,
        },
        ..defaults.clone()
    };
    if options.stop.len() > 4 || options.stop.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("`stop` holds at most 4 non-empty strings"));
    }
    if !(0.0..=2.0).contains(&options.temperature) {
        return Err(ApiError::bad_request(format!("`temperature` must be between 0 and 2; got {}", options.temperature)));
    }
    let id = format!("{}-{:x}", kind.id_prefix(), SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| t.as_nanos()));
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| t.as_secs());
    let model = queue.model_id.clone();
    let guard = CancelOnDrop::default();
    let cancel = guard.0.cancel.clone();
    // The deadline cancels generation wherever it is; a finished request is unaffected.
    let deadline = state.options.deadline;
    let on_deadline = guard.0.clone();
    tokio::spawn(async move {
        tokio::time::sleep(deadline).await;
        on_deadline.expire();
    });
    let (pieces, received) = mpsc::unbounded_channel();
    let streamed = sampling.stream;
    let options = GenerationOptions { cancel: cancel.clone(), ..options };
    queue.submit(&guard.0, move |engine: &mut dyn Engine| {
        let mut run = || -> Result<Generation, EngineError> {
            let text = match &prompt {
                Prompt::Chat(messages) => engine.chat_prompt(messages)?,
                Prompt::Text(text) => text.clone(),
            };
            let mut on_text = |piece: &str| {
                if streamed && pieces.send(Piece::Text(piece.to_string())).is_err() {
                    options.cancel.cancel();
                }
            };
            engine.generate(&text, &options, &mut on_text)
        };
        let _ = pieces.send(Piece::Done(run().map_err(|error| error.to_string())));
    })?;
    let finish = |generation: &Generation| match generation.stop_reason {
        StopReason::Length => "length",
        StopReason::EndOfText | StopReason::StopText | StopReason::Cancelled => "stop",
    };
    let usage = |generation: &Generation| json!({"prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.generated_tokens, "total_tokens": generation.prompt_tokens + generation.generated_tokens});
    // The engine's own times (an extension that OpenAI clients ignore).
    let timings = |generation: &Generation| serde_json::to_value(Timings::of(std::slice::from_ref(generation))).expect("timings serialize");
    if !streamed {
        let mut received = received;
        let done = loop {
            match received.recv().await {
                Some(Piece::Done(done)) => break done,
                Some(Piece::Text(_)) => continue,
                None => return Err(ApiError::internal("the model's thread dropped the request")),
            }
        };
        let generation = done.map_err(|error| engine_error(&error))?;
        if generation.stop_reason == StopReason::Cancelled {
            return Err(deadline_passed(deadline));
        }
        drop(guard);
        let body = json!({
            "id": id, "object": kind.object(false), "created": created, "model": model,
            "choices": [kind.choice(&generation.text, false, Some(finish(&generation)))],
            "usage": usage(&generation),
            "timings": timings(&generation),
        });
        return Ok(Json(body).into_response());
    }
    let include_usage = sampling.stream_options.is_some_and(|options| options.include_usage);
    let first_token = state.clone();
    let mut first = true;
    let chunk = move |choices: Vec<Value>, extra: Option<(&str, Value)>| {
        let mut body = json!({"id": id, "object": kind.object(true), "created": created, "model": model, "choices": choices});
        if let Some((key, value)) = extra {
            body[key] = value;
        }
        Event::default().data(body.to_string())
    };
    let events = UnboundedReceiverStream::new(received).flat_map(move |piece| {
        // The guard lives as long as the stream: a client that disconnects cancels generation.
        let _guard = &guard;
        let events = match piece {
            Piece::Text(text) => {
                if std::mem::take(&mut first) {
                    first_token.metrics.first_token.observe(started.elapsed().as_secs_f64());
                }
                vec![chunk(vec![kind.choice(&text, true, None)], None)]
            }
            Piece::Done(Ok(generation)) => {
                let mut events = vec![chunk(vec![kind.choice("", true, Some(finish(&generation)))], Some(("timings", timings(&generation))))];
                if include_usage {
                    events.push(chunk(Vec::new(), Some(("usage", usage(&generation)))));
                }
                events.push(Event::default().data("[DONE]"));
                events
            }
            Piece::Done(Err(error)) => {
                vec![Event::default().data(json!({"error": {"message": error, "type": "server_error"}}).to_string()), Event::default().data("[DONE]")]
            }
        };
        futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

fn engine_error(error: &str) -> ApiError {
    if error.contains("exceeds the model's context") { ApiError::bad_request(error.to_string()) } else { ApiError::internal(error.to_string()) }
}
