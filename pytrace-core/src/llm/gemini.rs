//! Google's Gemini `generateContent` and `streamGenerateContent` (server-sent
//! events with `alt=sse`, else a streamed JSON array), on the Gemini API and
//! Vertex AI. Errors may arrive inside a 200 stream. Output tokens count the
//! candidates' and the thoughts' tokens (both are billed as output).

use crate::model::semconv as gc;
use serde_json::Value;

use super::Response;
use super::model::json::{At, str_at, u64_at};
use super::model::{LlmCall, LlmError, Message};
use super::stream::arrival_time;

pub fn parse_request(call: &mut LlmCall, body: &Value) {
    super::params(
        call,
        body,
        &[
            ("/generationConfig/temperature", gc::REQUEST_TEMPERATURE),
            ("/generationConfig/topP", gc::REQUEST_TOP_P),
            ("/generationConfig/topK", gc::REQUEST_TOP_K),
            ("/generationConfig/maxOutputTokens", gc::REQUEST_MAX_TOKENS),
            ("/generationConfig/stopSequences", gc::REQUEST_STOP_SEQUENCES),
            ("/generationConfig/candidateCount", gc::REQUEST_CHOICE_COUNT),
            ("/generationConfig/seed", gc::REQUEST_SEED),
        ],
    );
    if let Some(system) = body.get("systemInstruction").or_else(|| body.get("system_instruction")) {
        call.system.push(parts_text(system));
    }
    for content in body.get("contents").and_then(Value::as_array).into_iter().flatten() {
        let role = str_at(content, "/role").unwrap_or_else(|| "user".into());
        call.input_messages.push(Message { role, text: parts_text(content) });
    }
    call.tool_definitions = body.get("tools").cloned();
}

fn parts_text(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("")
}

pub fn parse_response(call: &mut LlmCall, response: &Response<'_>) {
    if response.status >= 400 {
        call.error = Some(error_of(response.json().as_ref(), response.status));
        return;
    }
    if response.is_event_stream() {
        for event in response.sse() {
            if let Ok(chunk) = serde_json::from_str::<Value>(&event.data)
                && chunk_of(call, &chunk, response.status)
                && call.first_chunk_ns.is_none()
            {
                call.first_chunk_ns = arrival_time(response.arrivals, event.end);
            }
        }
        return;
    }
    match response.json() {
        Some(Value::Array(chunks)) => {
            for chunk in &chunks {
                chunk_of(call, chunk, response.status);
            }
            if call.stream && !call.output_text.is_empty() {
                call.first_chunk_ns = response.arrivals.first().map(|a| a.at_ns);
            }
        }
        Some(body) => {
            chunk_of(call, &body, response.status);
        }
        None => {}
    }
}

/// One response object (or stream chunk); true when it carried content.
fn chunk_of(call: &mut LlmCall, chunk: &Value, status: u16) -> bool {
    if chunk.get("error").is_some() {
        call.error = Some(error_of(Some(chunk), status));
        return false;
    }
    call.response_id = str_at(chunk, "/responseId").or(call.response_id.take());
    call.response_model = str_at(chunk, "/modelVersion").or(call.response_model.take());
    let mut carries_content = false;
    for candidate in chunk.get("candidates").and_then(Value::as_array).into_iter().flatten() {
        for part in candidate.at("/content/parts").and_then(Value::as_array).into_iter().flatten() {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                call.output_text.push_str(text);
                carries_content = true;
            }
            if let Some(name) = part.at("/functionCall/name").and_then(Value::as_str) {
                call.tool_calls.push(name.to_owned());
                call.output_text.push_str(&part.at("/functionCall/args").map(Value::to_string).unwrap_or_default());
                carries_content = true;
            }
        }
        if let Some(reason) = str_at(candidate, "/finishReason") {
            call.add_finish_reason(&reason);
            call.stream_finished = true;
        }
    }
    if let Some(usage) = chunk.get("usageMetadata") {
        call.usage.input = u64_at(usage, "/promptTokenCount").or(call.usage.input);
        let thoughts = u64_at(usage, "/thoughtsTokenCount");
        if let Some(candidates) = u64_at(usage, "/candidatesTokenCount") {
            call.usage.output = Some(candidates + thoughts.unwrap_or(0));
        }
        call.usage.reasoning = thoughts.or(call.usage.reasoning);
        call.usage.cache_read = u64_at(usage, "/cachedContentTokenCount").or(call.usage.cache_read);
    }
    carries_content
}

fn error_of(body: Option<&Value>, status: u16) -> LlmError {
    let error = body.and_then(|b| b.get("error"));
    LlmError {
        kind: error.and_then(|e| str_at(e, "/status")).unwrap_or_else(|| status.to_string()),
        message: error.and_then(|e| str_at(e, "/message")),
    }
}
