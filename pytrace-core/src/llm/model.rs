//! What pytrace learns about one LLM API call, independent of provider:
//! filled by the provider parsers, read by the span builder, the token
//! estimator, the price table and the content recorder.

use crate::model::AttrValue;
use serde_json::Value;

/// Token counts. `input` includes cached tokens (the OpenTelemetry rule);
/// `None` means the provider did not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_creation: Option<u64>,
    pub reasoning: Option<u64>,
}

/// A provider-reported error (HTTP error body, or an error event in a stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmError {
    /// The provider's error type or code, else the HTTP status.
    pub kind: String,
    pub message: Option<String>,
}

/// A message of the conversation, reduced to role and text parts (for token
/// estimates and, when enabled, content capture).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub text: String,
}

/// One recognised LLM call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmCall {
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// `gen_ai.operation.name`.
    pub operation: &'static str,
    /// `openai.api.type` for OpenAI-shaped APIs.
    pub api_type: Option<&'static str>,
    pub request_model: Option<String>,
    pub stream: bool,
    /// Request parameters as (semconv key, value).
    pub params: Vec<(&'static str, AttrValue)>,
    pub response_id: Option<String>,
    pub response_model: Option<String>,
    pub finish_reasons: Vec<String>,
    pub usage: Usage,
    /// Names of the tools the model asked to call, in order.
    pub tool_calls: Vec<String>,
    pub error: Option<LlmError>,
    /// Return of the read that delivered the first event carrying content.
    pub first_chunk_ns: Option<u64>,
    /// System instructions, request messages and tool definitions.
    pub system: Vec<String>,
    pub input_messages: Vec<Message>,
    pub tool_definitions: Option<Value>,
    /// The model's output text (and tool-call arguments) as seen.
    pub output_text: String,
    /// `x-stainless-retry-count` (openai and anthropic SDKs).
    pub retry_count: Option<u64>,
    /// Why a body could not be read (an encoding refused or corrupt).
    pub undecodable: Option<String>,
    /// Bytes of the request (response) body were never captured: what was
    /// read of it is partial, and nothing is estimated from it.
    pub request_incomplete: bool,
    pub response_incomplete: bool,
    /// The stream's terminal event arrived (`[DONE]`, `message_stop`,
    /// `response.completed`, `done: true`, a finish reason): the call is
    /// complete even if the client closed the connection before the HTTP
    /// body's last bytes (the openai SDK stops reading at `[DONE]`).
    pub stream_finished: bool,
}

impl LlmCall {
    pub fn new(provider: &'static str, operation: &'static str) -> Self {
        Self { provider, operation, ..Self::default() }
    }

    /// The model to name the span after and price: what the request asked for,
    /// else what the response reported.
    pub fn model(&self) -> Option<&str> {
        self.request_model.as_deref().or(self.response_model.as_deref())
    }

    pub fn add_finish_reason(&mut self, reason: &str) {
        if !reason.is_empty() && !self.finish_reasons.iter().any(|r| r == reason) {
            self.finish_reasons.push(reason.to_owned());
        }
    }
}

/// JSON helpers shared by the provider parsers.
pub mod json {
    use serde_json::Value;

    /// `Value::pointer` without its allocations (it unescapes every
    /// segment): the pointers here are literals with no `~` escapes.
    pub trait At {
        fn at(&self, pointer: &str) -> Option<&Value>;
    }

    impl At for Value {
        fn at(&self, pointer: &str) -> Option<&Value> {
            let path = pointer.strip_prefix('/')?;
            path.split('/').try_fold(self, |value, segment| match value {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
                _ => None,
            })
        }
    }

    pub fn str_at(value: &Value, pointer: &str) -> Option<String> {
        value.at(pointer).and_then(Value::as_str).map(str::to_owned)
    }

    pub fn u64_at(value: &Value, pointer: &str) -> Option<u64> {
        value.at(pointer).and_then(Value::as_u64)
    }

    /// Text of a message `content`: a string, or an array of parts with `text`.
    pub fn content_text(content: &Value) -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    }
}
