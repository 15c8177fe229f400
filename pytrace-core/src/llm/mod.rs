//! LLM calls recognised in HTTP exchanges: which API (from host, path and
//! body shape), the request's model and parameters, and the response's
//! model, finish reasons, usage, tool calls, errors and time to first chunk —
//! streamed (SSE, NDJSON) or not, compressed or not. Pure: an [`Exchange`]
//! in, an [`LlmCall`] out.

pub mod anthropic;
pub mod bedrock;
pub mod bpe;
pub mod content;
pub mod detect;
pub mod fragments;
pub mod gemini;
pub mod model;
pub mod ollama;
pub mod openai;
pub mod pricing;
pub mod stream;
pub mod tokens;

use crate::http::Exchange;
use crate::http::body::{Arrival, Body};
use crate::http::encoding;
use crate::http::head::Headers;
use crate::model::{AttrValue, semconv as sc};
use detect::Api;
use model::json::At;
pub use model::{LlmCall, LlmError, Message, Usage};
use serde_json::Value;

/// A response as the provider parsers see it: status, headers, the decoded
/// body, and when its bytes arrived (empty when the body was compressed, as
/// offsets then no longer match).
pub struct Response<'a> {
    pub status: u16,
    pub headers: &'a Headers,
    pub body: &'a [u8],
    pub arrivals: &'a [Arrival],
}

impl Response<'_> {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body).ok()
    }

    pub fn is_event_stream(&self) -> bool {
        self.headers.get("content-type").is_some_and(|t| t.to_ascii_lowercase().contains("text/event-stream"))
    }

    pub fn sse(&self) -> Vec<stream::SseEvent> {
        stream::parse_sse(self.body)
    }
}

/// Recognises and reads an LLM call, or `None` for other traffic.
pub fn analyze<C>(exchange: &Exchange<C>) -> Option<LlmCall> {
    let request = &exchange.request;
    let host = request.headers.get("host").or_else(|| exchange.connection.server_name.clone()).unwrap_or_default();
    // Method, host and path first: ordinary traffic never has its body decoded.
    detect::detect(&request.method, &host, &request.target, None)?;
    let mut undecodable = None;
    let mut read = |headers: &Headers, body: &Body| match decoded(headers, body) {
        Ok(bytes) => bytes,
        Err(error) => {
            undecodable.get_or_insert_with(|| error.to_string());
            None
        }
    };
    let whole_request: Option<Value> =
        read(&request.headers, &exchange.request_body).and_then(|b| serde_json::from_slice(&b).ok());
    let response_body = exchange.response.as_ref().and_then(|head| read(&head.headers, &exchange.response_body));
    let detected = detect::detect(&request.method, &host, &request.target, whole_request.as_ref())?;
    // A body with a hole is not judged by its shape, but its parameters count.
    let request_json = whole_request.or_else(|| partial_request(&request.headers, &exchange.request_body));
    let mut call = LlmCall::new(detected.provider, operation(detected.api));
    call.undecodable = undecodable;
    call.request_incomplete = !exchange.request_body.is_whole();
    call.response_incomplete = !exchange.response_body.is_whole();
    call.retry_count = request.headers.get("x-stainless-retry-count").and_then(|v| v.parse().ok());
    if let Some(body) = &request_json {
        match detected.api {
            Api::AnthropicMessages => anthropic::parse_request(&mut call, body),
            Api::Gemini { .. } => gemini::parse_request(&mut call, body),
            Api::OllamaChat | Api::OllamaGenerate | Api::OllamaEmbed => {
                ollama::parse_request(&mut call, detected.api, body)
            }
            Api::Bedrock { converse } => bedrock::parse_request(&mut call, converse, body),
            _ => openai::parse_request(&mut call, detected.api, body),
        }
    }
    if let Api::Gemini { stream } = detected.api {
        call.stream = stream;
    }
    // Azure deployments and path-addressed models: the path names the model.
    if call.request_model.is_none() || matches!(detected.api, Api::Gemini { .. } | Api::Bedrock { .. }) {
        call.request_model = detected.path_model.clone().or(call.request_model.take());
    }
    if let Some(head) = &exchange.response {
        let compressed = !head.headers.tokens("content-encoding").iter().all(|e| e == "identity");
        let body = response_body.unwrap_or_default();
        let arrivals = if compressed { &[][..] } else { &exchange.response_body.arrivals[..] };
        let response = Response { status: head.status, headers: &head.headers, body: &body, arrivals };
        match detected.api {
            Api::AnthropicMessages => anthropic::parse_response(&mut call, &response),
            Api::Gemini { .. } => gemini::parse_response(&mut call, &response),
            Api::OllamaChat | Api::OllamaGenerate | Api::OllamaEmbed => ollama::parse_response(&mut call, &response),
            Api::Bedrock { .. } => bedrock::parse_response(&mut call, &response),
            _ => openai::parse_response(&mut call, detected.api, &response),
        }
        if head.status >= 400 && call.error.is_none() {
            call.error = Some(LlmError { kind: head.status.to_string(), message: None });
        }
    }
    Some(call)
}

fn operation(api: Api) -> &'static str {
    match api {
        Api::OpenAiChat | Api::AnthropicMessages | Api::OllamaChat | Api::Bedrock { .. } => sc::OPERATION_CHAT,
        Api::OpenAiResponses => sc::OPERATION_CHAT,
        Api::OpenAiCompletions | Api::OllamaGenerate => sc::OPERATION_TEXT_COMPLETION,
        Api::OpenAiEmbeddings | Api::OllamaEmbed => sc::OPERATION_EMBEDDINGS,
        Api::Gemini { .. } => sc::OPERATION_GENERATE_CONTENT,
    }
}

/// The captured body, content-decoded; `None` when bytes are missing.
fn decoded(headers: &Headers, body: &Body) -> Result<Option<Vec<u8>>, encoding::ContentDecodeError> {
    if !body.is_whole() {
        return Ok(None);
    }
    encoding::decode(&headers.tokens("content-encoding"), &body.kept).map(Some)
}

/// The top-level members whole on either side of the holes of an
/// uncompressed request body that was not captured whole.
fn partial_request(headers: &Headers, body: &Body) -> Option<Value> {
    let compressed = !headers.tokens("content-encoding").iter().all(|e| e == "identity");
    if body.is_whole() || compressed {
        return None;
    }
    fragments::partial_object(&body.kept, body.tail())
}

/// Copies request parameters found at JSON `pointer`s into `call.params`.
fn params(call: &mut LlmCall, body: &Value, table: &[(&str, &'static str)]) {
    for (pointer, key) in table {
        let Some(value) = body.at(pointer) else { continue };
        let value = match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64().map(AttrValue::Int),
            Value::Number(n) => n.as_f64().map(AttrValue::F64),
            Value::String(s) if *key == sc::GEN_AI_REQUEST_STOP_SEQUENCES => Some(AttrValue::StrArray(vec![s.clone()])),
            Value::Array(items) => {
                Some(AttrValue::StrArray(items.iter().filter_map(Value::as_str).map(str::to_owned).collect()))
            }
            _ => None,
        };
        if let Some(value) = value
            && !call.params.iter().any(|(k, _)| k == key)
        {
            call.params.push((key, value));
        }
    }
}
