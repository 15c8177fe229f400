//! Ollama's native API: `/api/chat`, `/api/generate` (NDJSON streams by
//! default; the final `done: true` object carries the token counts) and
//! `/api/embed`.

use crate::model::semconv as gc;
use serde_json::Value;

use super::Response;
use super::detect::Api;
use super::model::json::{At, content_text, str_at, u64_at};
use super::model::{LlmCall, LlmError, Message};
use super::stream::arrival_time;

pub fn parse_request(call: &mut LlmCall, api: Api, body: &Value) {
    call.request_model = str_at(body, "/model");
    // Ollama streams unless asked not to (embeddings never stream).
    call.stream = api != Api::OllamaEmbed && body.get("stream").and_then(Value::as_bool).unwrap_or(true);
    super::params(
        call,
        body,
        &[
            ("/options/temperature", gc::REQUEST_TEMPERATURE),
            ("/options/top_p", gc::REQUEST_TOP_P),
            ("/options/top_k", gc::REQUEST_TOP_K),
            ("/options/num_predict", gc::REQUEST_MAX_TOKENS),
            ("/options/seed", gc::REQUEST_SEED),
            ("/options/stop", gc::REQUEST_STOP_SEQUENCES),
        ],
    );
    call.system.extend(str_at(body, "/system"));
    for message in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = str_at(message, "/role").unwrap_or_default();
        let text = message.get("content").map(content_text).unwrap_or_default();
        if role == "system" {
            call.system.push(text);
        } else {
            call.input_messages.push(Message { role, text });
        }
    }
    for key in ["/prompt", "/input"] {
        if let Some(text) = str_at(body, key) {
            call.input_messages.push(Message { role: "user".into(), text });
        }
    }
    call.tool_definitions = body.get("tools").cloned();
}

pub fn parse_response(call: &mut LlmCall, response: &Response<'_>) {
    if response.status >= 400 {
        let body = response.json();
        call.error = Some(LlmError {
            kind: response.status.to_string(),
            message: body.as_ref().and_then(|b| str_at(b, "/error")),
        });
        return;
    }
    for line in super::stream::parse_lines(response.body) {
        let Ok(object) = serde_json::from_str::<Value>(&line.text) else { continue };
        if let Some(message) = str_at(&object, "/error") {
            call.error = Some(LlmError { kind: "error".into(), message: Some(message) });
            continue;
        }
        call.response_model = str_at(&object, "/model").or(call.response_model.take());
        let text = str_at(&object, "/message/content").or_else(|| str_at(&object, "/response")).unwrap_or_default();
        let tools = object.at("/message/tool_calls").and_then(Value::as_array);
        for tool_call in tools.into_iter().flatten() {
            call.tool_calls.extend(str_at(tool_call, "/function/name"));
        }
        if (!text.is_empty() || tools.is_some_and(|t| !t.is_empty())) && call.first_chunk_ns.is_none() && call.stream {
            call.first_chunk_ns = arrival_time(response.arrivals, line.end);
        }
        call.output_text.push_str(&text);
        if object.get("done").and_then(Value::as_bool) == Some(true) {
            call.stream_finished = true;
        }
        if object.get("done").and_then(Value::as_bool) == Some(true) || call.operation == gc::OPERATION_EMBEDDINGS {
            if let Some(reason) = str_at(&object, "/done_reason") {
                call.add_finish_reason(&reason);
            }
            call.usage.input = u64_at(&object, "/prompt_eval_count").or(call.usage.input);
            call.usage.output = u64_at(&object, "/eval_count").or(call.usage.output);
        }
    }
    if call.operation == gc::OPERATION_EMBEDDINGS && call.usage.input.is_some() {
        call.usage.output.get_or_insert(0);
    }
}
