//! OpenAI's wire formats — Chat Completions, Responses, Embeddings and legacy
//! Completions — as served by OpenAI, Azure OpenAI and every
//! OpenAI-compatible server (vLLM, llama.cpp, LiteLLM, Groq, Mistral, …).

use crate::model::semconv as gc;
use serde_json::Value;

use super::Response;
use super::detect::Api;
use super::model::json::{At, content_text, str_at, u64_at};
use super::model::{LlmCall, LlmError, Message};
use super::stream::{SseEvent, arrival_time};

pub fn parse_request(call: &mut LlmCall, api: Api, body: &Value) {
    call.request_model = str_at(body, "/model");
    call.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    super::params(
        call,
        body,
        &[
            ("/temperature", gc::REQUEST_TEMPERATURE),
            ("/top_p", gc::REQUEST_TOP_P),
            ("/max_tokens", gc::REQUEST_MAX_TOKENS),
            ("/max_completion_tokens", gc::REQUEST_MAX_TOKENS),
            ("/max_output_tokens", gc::REQUEST_MAX_TOKENS),
            ("/frequency_penalty", gc::REQUEST_FREQUENCY_PENALTY),
            ("/presence_penalty", gc::REQUEST_PRESENCE_PENALTY),
            ("/seed", gc::REQUEST_SEED),
            ("/n", gc::REQUEST_CHOICE_COUNT),
            ("/stop", gc::REQUEST_STOP_SEQUENCES),
        ],
    );
    call.tool_definitions = body.get("tools").cloned();
    match api {
        Api::OpenAiChat => {
            call.api_type = Some("chat_completions");
            for message in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
                let role = str_at(message, "/role").unwrap_or_default();
                let text = message.get("content").map(content_text).unwrap_or_default();
                if role == "system" || role == "developer" {
                    call.system.push(text);
                } else {
                    call.input_messages.push(Message { role, text });
                }
            }
        }
        Api::OpenAiResponses => {
            call.api_type = Some("responses");
            call.system.extend(str_at(body, "/instructions"));
            match body.get("input") {
                Some(Value::String(text)) => {
                    call.input_messages.push(Message { role: "user".into(), text: text.clone() })
                }
                Some(Value::Array(items)) => {
                    for item in items {
                        let role = str_at(item, "/role").unwrap_or_else(|| "user".into());
                        let text = item.get("content").map(content_text).unwrap_or_default();
                        call.input_messages.push(Message { role, text });
                    }
                }
                _ => {}
            }
        }
        Api::OpenAiCompletions | Api::OpenAiEmbeddings => {
            let key = if api == Api::OpenAiCompletions { "prompt" } else { "input" };
            let texts: Vec<String> = match body.get(key) {
                Some(Value::String(text)) => vec![text.clone()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            };
            call.input_messages.extend(texts.into_iter().map(|text| Message { role: "user".into(), text }));
        }
        _ => {}
    }
}

pub fn parse_response(call: &mut LlmCall, api: Api, response: &Response<'_>) {
    if response.status >= 400 {
        call.error = Some(error_of(response.json().as_ref(), response.status));
        return;
    }
    match (api, response.is_event_stream()) {
        (Api::OpenAiResponses, true) => response.sse().iter().for_each(|event| responses_event(call, event, response)),
        (_, true) => response.sse().iter().for_each(|event| chat_chunk(call, event, response)),
        (Api::OpenAiResponses, false) => {
            if let Some(body) = response.json() {
                responses_object(call, &body);
            }
        }
        (_, false) => {
            if let Some(body) = response.json() {
                chat_object(call, &body);
            }
        }
    }
}

fn error_of(body: Option<&Value>, status: u16) -> LlmError {
    let error = body.and_then(|b| b.get("error"));
    let kind =
        error.and_then(|e| str_at(e, "/type").or_else(|| str_at(e, "/code"))).unwrap_or_else(|| status.to_string());
    LlmError { kind, message: error.and_then(|e| str_at(e, "/message")) }
}

/// A non-streamed chat completion, legacy completion or embeddings response.
fn chat_object(call: &mut LlmCall, body: &Value) {
    call.response_id = str_at(body, "/id");
    call.response_model = str_at(body, "/model");
    for choice in body.get("choices").and_then(Value::as_array).into_iter().flatten() {
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            call.add_finish_reason(reason);
        }
        if let Some(content) = choice.at("/message/content").or_else(|| choice.get("text")) {
            call.output_text.push_str(&content_text(content));
        }
        for tool_call in choice.at("/message/tool_calls").and_then(Value::as_array).into_iter().flatten() {
            call.tool_calls.extend(str_at(tool_call, "/function/name"));
            call.output_text.push_str(&str_at(tool_call, "/function/arguments").unwrap_or_default());
        }
    }
    if let Some(usage) = body.get("usage") {
        chat_usage(call, usage);
    }
}

fn chat_usage(call: &mut LlmCall, usage: &Value) {
    call.usage.input = u64_at(usage, "/prompt_tokens").or(call.usage.input);
    call.usage.output = u64_at(usage, "/completion_tokens").or(call.usage.output);
    call.usage.cache_read = u64_at(usage, "/prompt_tokens_details/cached_tokens").or(call.usage.cache_read);
    call.usage.reasoning = u64_at(usage, "/completion_tokens_details/reasoning_tokens").or(call.usage.reasoning);
    if call.operation == gc::OPERATION_EMBEDDINGS && call.usage.output.is_none() {
        call.usage.output = Some(0);
    }
}

/// One `data:` event of a streamed chat or legacy completion.
fn chat_chunk(call: &mut LlmCall, event: &SseEvent, response: &Response<'_>) {
    if event.data.trim() == "[DONE]" {
        call.stream_finished = true;
        return;
    }
    let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else { return };
    if chunk.get("error").is_some() {
        call.error = Some(error_of(Some(&chunk), response.status));
        return;
    }
    call.response_id = call.response_id.take().or_else(|| str_at(&chunk, "/id"));
    call.response_model = call.response_model.take().or_else(|| str_at(&chunk, "/model"));
    let mut carries_content = false;
    for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
        let text = choice.at("/delta/content").or_else(|| choice.get("text")).and_then(Value::as_str);
        let refusal = choice.at("/delta/refusal").and_then(Value::as_str);
        for piece in [text, refusal].into_iter().flatten().filter(|t| !t.is_empty()) {
            call.output_text.push_str(piece);
            carries_content = true;
        }
        for tool_call in choice.at("/delta/tool_calls").and_then(Value::as_array).into_iter().flatten() {
            call.tool_calls.extend(str_at(tool_call, "/function/name"));
            call.output_text.push_str(&str_at(tool_call, "/function/arguments").unwrap_or_default());
            carries_content = true;
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            call.add_finish_reason(reason);
        }
    }
    if carries_content && call.first_chunk_ns.is_none() {
        call.first_chunk_ns = arrival_time(response.arrivals, event.end);
    }
    if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
        chat_usage(call, usage);
    }
}

/// A non-streamed Responses API object (also the payload of its final event).
fn responses_object(call: &mut LlmCall, body: &Value) {
    call.response_id = str_at(body, "/id").or(call.response_id.take());
    call.response_model = str_at(body, "/model").or(call.response_model.take());
    if let Some(status) = str_at(body, "/status") {
        call.add_finish_reason(&status);
    }
    if let Some(reason) = str_at(body, "/incomplete_details/reason") {
        call.add_finish_reason(&reason);
    }
    let streamed_text_seen = !call.output_text.is_empty();
    for item in body.get("output").and_then(Value::as_array).into_iter().flatten() {
        match item.get("type").and_then(Value::as_str) {
            Some("function_call") => {
                let name = str_at(item, "/name").unwrap_or_default();
                if !call.tool_calls.contains(&name) {
                    call.tool_calls.push(name);
                }
            }
            Some("message") if !streamed_text_seen => {
                call.output_text.push_str(&item.get("content").map(content_text).unwrap_or_default());
            }
            _ => {}
        }
    }
    if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
        call.error = Some(LlmError {
            kind: str_at(error, "/code").unwrap_or_else(|| "error".into()),
            message: str_at(error, "/message"),
        });
    }
    if let Some(usage) = body.get("usage").filter(|u| !u.is_null()) {
        call.usage.input = u64_at(usage, "/input_tokens");
        call.usage.output = u64_at(usage, "/output_tokens");
        call.usage.cache_read = u64_at(usage, "/input_tokens_details/cached_tokens");
        call.usage.reasoning = u64_at(usage, "/output_tokens_details/reasoning_tokens");
    }
}

/// One named event of a streamed Responses API call.
fn responses_event(call: &mut LlmCall, event: &SseEvent, response: &Response<'_>) {
    let Ok(data) = serde_json::from_str::<Value>(&event.data) else { return };
    let name = event.name.as_deref().or_else(|| data.get("type").and_then(Value::as_str)).unwrap_or_default();
    let mut carries_content = false;
    match name {
        "response.created" | "response.in_progress" => {
            call.response_id = str_at(&data, "/response/id");
            call.response_model = str_at(&data, "/response/model");
        }
        "response.output_text.delta" | "response.refusal.delta" | "response.function_call_arguments.delta" => {
            call.output_text.push_str(&str_at(&data, "/delta").unwrap_or_default());
            carries_content = true;
        }
        "response.output_item.added" if str_at(&data, "/item/type").as_deref() == Some("function_call") => {
            call.tool_calls.extend(str_at(&data, "/item/name"));
            carries_content = true;
        }
        "response.completed" | "response.incomplete" | "response.failed" => {
            call.stream_finished = true;
            if let Some(body) = data.get("response") {
                responses_object(call, body);
            }
        }
        "error" => {
            call.error = Some(LlmError {
                kind: str_at(&data, "/code").unwrap_or_else(|| "error".into()),
                message: str_at(&data, "/message"),
            });
        }
        _ => {}
    }
    if carries_content && call.first_chunk_ns.is_none() {
        call.first_chunk_ns = arrival_time(response.arrivals, event.end);
    }
}
