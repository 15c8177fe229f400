//! Anthropic's Messages API, plain and streamed. Input tokens are reported
//! the OpenTelemetry way: `input_tokens + cache_read_input_tokens +
//! cache_creation_input_tokens`; streamed `output_tokens` are cumulative, so
//! the last value wins.

use crate::model::semconv as gc;
use serde_json::Value;

use super::Response;
use super::model::json::{At, content_text, str_at, u64_at};
use super::model::{LlmCall, LlmError, Message};
use super::stream::arrival_time;

pub fn parse_request(call: &mut LlmCall, body: &Value) {
    call.request_model = str_at(body, "/model");
    call.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    super::params(
        call,
        body,
        &[
            ("/temperature", gc::REQUEST_TEMPERATURE),
            ("/top_p", gc::REQUEST_TOP_P),
            ("/top_k", gc::REQUEST_TOP_K),
            ("/max_tokens", gc::REQUEST_MAX_TOKENS),
            ("/stop_sequences", gc::REQUEST_STOP_SEQUENCES),
        ],
    );
    if let Some(system) = body.get("system") {
        call.system.push(content_text(system));
    }
    for message in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = str_at(message, "/role").unwrap_or_default();
        let text = message.get("content").map(content_text).unwrap_or_default();
        call.input_messages.push(Message { role, text });
    }
    call.tool_definitions = body.get("tools").cloned();
}

pub fn parse_response(call: &mut LlmCall, response: &Response<'_>) {
    if response.status >= 400 {
        call.error = Some(error_of(response.json().as_ref(), response.status));
        return;
    }
    if !response.is_event_stream() {
        if let Some(body) = response.json() {
            message_object(call, &body);
        }
        return;
    }
    for event in response.sse() {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { continue };
        let name = event.name.as_deref().or_else(|| data.get("type").and_then(Value::as_str)).unwrap_or_default();
        let mut carries_content = false;
        match name {
            "message_start" => {
                if let Some(message) = data.get("message") {
                    call.response_id = str_at(message, "/id");
                    call.response_model = str_at(message, "/model");
                    if let Some(usage) = message.get("usage") {
                        usage_of(call, usage);
                    }
                }
            }
            "content_block_start" if str_at(&data, "/content_block/type").as_deref() == Some("tool_use") => {
                call.tool_calls.extend(str_at(&data, "/content_block/name"));
            }
            "content_block_delta" => {
                let delta = data.get("delta");
                let piece = ["/text", "/partial_json", "/thinking"]
                    .iter()
                    .find_map(|p| delta.and_then(|d| d.at(p)).and_then(Value::as_str));
                if let Some(piece) = piece {
                    call.output_text.push_str(piece);
                    carries_content = true;
                }
            }
            "message_delta" => {
                if let Some(reason) = str_at(&data, "/delta/stop_reason") {
                    call.add_finish_reason(&reason);
                }
                if let Some(usage) = data.get("usage") {
                    usage_of(call, usage);
                }
            }
            "error" => call.error = Some(error_of(Some(&data), response.status)),
            "message_stop" => call.stream_finished = true,
            _ => {}
        }
        if carries_content && call.first_chunk_ns.is_none() {
            call.first_chunk_ns = arrival_time(response.arrivals, event.end);
        }
    }
}

fn message_object(call: &mut LlmCall, body: &Value) {
    call.response_id = str_at(body, "/id");
    call.response_model = str_at(body, "/model");
    if let Some(reason) = str_at(body, "/stop_reason") {
        call.add_finish_reason(&reason);
    }
    for block in body.get("content").and_then(Value::as_array).into_iter().flatten() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => call.output_text.push_str(&str_at(block, "/text").unwrap_or_default()),
            Some("tool_use") => {
                call.tool_calls.extend(str_at(block, "/name"));
                call.output_text.push_str(&block.get("input").map(Value::to_string).unwrap_or_default());
            }
            _ => {}
        }
    }
    if let Some(usage) = body.get("usage") {
        usage_of(call, usage);
    }
}

/// Merges a usage object; fields a later event omits keep their earlier value.
fn usage_of(call: &mut LlmCall, usage: &Value) {
    let usage_part = |key: &str| u64_at(usage, &format!("/{key}"));
    let fresh_input = usage_part("input_tokens");
    call.usage.cache_read = usage_part("cache_read_input_tokens").or(call.usage.cache_read);
    call.usage.cache_creation = usage_part("cache_creation_input_tokens").or(call.usage.cache_creation);
    if let Some(fresh) = fresh_input {
        call.usage.input = Some(fresh + call.usage.cache_read.unwrap_or(0) + call.usage.cache_creation.unwrap_or(0));
    }
    call.usage.output = usage_part("output_tokens").or(call.usage.output);
}

fn error_of(body: Option<&Value>, status: u16) -> LlmError {
    let error = body.and_then(|b| b.get("error"));
    LlmError {
        kind: error.and_then(|e| str_at(e, "/type")).unwrap_or_else(|| status.to_string()),
        message: error.and_then(|e| str_at(e, "/message")),
    }
}
