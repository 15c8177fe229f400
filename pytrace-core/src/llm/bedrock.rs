//! AWS Bedrock Runtime without streaming: `invoke` (the model's own body
//! format; token counts in `X-Amzn-Bedrock-*-Token-Count` headers) and
//! `converse` (Bedrock's uniform format, usage in the body).

use crate::model::semconv as gc;
use serde_json::Value;

use super::Response;
use super::model::json::{At, str_at, u64_at};
use super::model::{LlmCall, LlmError, Message};

pub fn parse_request(call: &mut LlmCall, converse: bool, body: &Value) {
    if converse {
        super::params(
            call,
            body,
            &[
                ("/inferenceConfig/temperature", gc::REQUEST_TEMPERATURE),
                ("/inferenceConfig/topP", gc::REQUEST_TOP_P),
                ("/inferenceConfig/maxTokens", gc::REQUEST_MAX_TOKENS),
                ("/inferenceConfig/stopSequences", gc::REQUEST_STOP_SEQUENCES),
            ],
        );
        for block in body.get("system").and_then(Value::as_array).into_iter().flatten() {
            call.system.extend(str_at(block, "/text"));
        }
        for message in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
            let text: String = message
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            call.input_messages.push(Message { role: str_at(message, "/role").unwrap_or_default(), text });
        }
    } else {
        // invoke: the model provider's own request format (Anthropic's for Claude).
        super::anthropic::parse_request(call, body);
        call.request_model = None;
    }
}

pub fn parse_response(call: &mut LlmCall, response: &Response<'_>) {
    let header = |name: &str| response.headers.get(name).and_then(|v| v.parse::<u64>().ok());
    let body = response.json();
    if response.status >= 400 {
        call.error = Some(LlmError {
            kind: response
                .headers
                .get("x-amzn-errortype")
                .map_or_else(|| response.status.to_string(), |t| t.split(':').next().unwrap_or_default().to_owned()),
            message: body.as_ref().and_then(|b| str_at(b, "/message").or_else(|| str_at(b, "/Message"))),
        });
        return;
    }
    if let Some(body) = &body {
        for reason in [str_at(body, "/stopReason"), str_at(body, "/stop_reason")].into_iter().flatten() {
            call.add_finish_reason(&reason);
        }
        for block in body.at("/output/message/content").and_then(Value::as_array).into_iter().flatten() {
            call.output_text.push_str(&str_at(block, "/text").unwrap_or_default());
            call.tool_calls.extend(str_at(block, "/toolUse/name"));
        }
        call.usage.input = u64_at(body, "/usage/inputTokens");
        call.usage.output = u64_at(body, "/usage/outputTokens");
        call.usage.cache_read = u64_at(body, "/usage/cacheReadInputTokens");
        call.usage.cache_creation = u64_at(body, "/usage/cacheWriteInputTokens");
    }
    call.usage.input = header("x-amzn-bedrock-input-token-count").or(call.usage.input);
    call.usage.output = header("x-amzn-bedrock-output-token-count").or(call.usage.output);
}
