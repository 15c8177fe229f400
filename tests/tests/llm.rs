//! LLM calls made through the real SDKs (openai, anthropic) and plain clients
//! (requests, aiohttp against an Ollama-shaped API), traced by `pytrace
//! attach` against a local server that speaks the documented wire formats
//! with known usage and a fixed first-token delay (tests/python/llm_api.py).

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use integration_tests::{Client, Server, Trace, Tracer};
use serde_json::Value;

/// tests/python/llm_api.py waits this long before the first content event.
const FIRST_TOKEN_DELAY_S: f64 = 0.2;
const API_KEY: &str = "sk-test-0123456789abcdefghijklmnop";

fn traced(scenario: &str) -> Trace {
    traced_with(scenario, &[])
}

fn traced_with(scenario: &str, pytrace_args: &[&str]) -> Trace {
    let server = Server::https();
    let mut client = Client::start_llm(&server, scenario);
    let tracer = Tracer::attach(&[client.pid], pytrace_args);
    client.go();
    client.finish();
    let trace = tracer.wait();
    assert!(trace.success, "{}", trace.stderr);
    assert!(!trace.all_output().contains(API_KEY), "the API key leaked");
    trace
}

fn only_span(trace: &Trace) -> &Value {
    assert_eq!(trace.spans.len(), 1, "{}", trace.json_text);
    &trace.spans[0]
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

fn assert_ttft(span: &Value) {
    assert!(attr(span, "pytrace.incomplete").is_null(), "a finished stream is complete: {span}");
    assert_eq!(span["status"]["code"], "unset", "{span}");
    let ttft = attr(span, "gen_ai.response.time_to_first_chunk").as_f64().expect("time to first chunk");
    // At least the server's delay; the upper margin absorbs a loaded CI machine.
    assert!((FIRST_TOKEN_DELAY_S..FIRST_TOKEN_DELAY_S + 0.5).contains(&ttft), "ttft {ttft}");
    let duration =
        (span["end_time_unix_nano"].as_u64().unwrap() - span["start_time_unix_nano"].as_u64().unwrap()) as f64 / 1e9;
    assert!(ttft < duration, "the first chunk arrives before the stream ends: {ttft} vs {duration}");
}

#[test]
fn openai_chat_sync() {
    let trace = traced("openai-chat");
    let span = only_span(&trace);
    assert_eq!(span["name"], "chat gpt-4o-mini");
    assert_eq!(attr(span, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(span, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(span, "gen_ai.request.model"), "gpt-4o-mini");
    assert_eq!(attr(span, "gen_ai.response.model"), "gpt-4o-mini-2024-07-18");
    assert_eq!(attr(span, "gen_ai.response.id"), "chatcmpl-test");
    assert_eq!(attr(span, "gen_ai.request.temperature"), 0.3);
    assert_eq!(attr(span, "gen_ai.request.max_tokens"), 50);
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 21);
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert_eq!(attr(span, "gen_ai.response.finish_reasons"), &serde_json::json!(["stop"]));
    assert_eq!(attr(span, "gen_ai.request.stream"), false);
    assert_eq!(attr(span, "pytrace.gen_ai.request.retry_count"), 0, "the SDK says which attempt this is");
    // gpt-4o-mini: $0.15 in, $0.60 out per million.
    let cost = attr(span, "gen_ai.usage.cost").as_f64().unwrap();
    assert!((cost - (21.0 * 0.15 + 7.0 * 0.6) / 1e6).abs() < 1e-12, "{cost}");
    assert!(trace.stdout.contains("chat gpt-4o-mini"), "the pretty view names the call: {}", trace.stdout);
    assert!(trace.stdout.contains("LLM MODEL"), "and the summary has a per-model table: {}", trace.stdout);
    assert!(attr(span, "gen_ai.input.messages").is_null(), "no content by default");
    assert!(!trace.all_output().contains("Say hello") && !trace.all_output().contains("Hello from the test server"));
    let models = trace.summary["models"].as_array().unwrap();
    assert_eq!(models[0]["model"], "gpt-4o-mini");
    assert_eq!((models[0]["calls"].as_u64(), models[0]["input_tokens"].as_u64()), (Some(1), Some(21)));
}

#[test]
fn openai_chat_async_concurrent() {
    let trace = traced("openai-chat-async");
    assert_eq!(trace.spans.len(), 3);
    for span in &trace.spans {
        assert_eq!(span["name"], "chat gpt-4o-mini");
        assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 7);
    }
}

#[test]
fn openai_stream_with_usage() {
    let trace = traced("openai-stream");
    let span = only_span(&trace);
    assert_eq!(attr(span, "gen_ai.request.stream"), true);
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 21);
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert!(attr(span, "pytrace.usage.estimated").is_null());
    assert_ttft(span);
}

#[test]
fn openai_stream_without_usage_is_estimated() {
    let trace = traced("openai-stream-no-usage");
    let span = only_span(&trace);
    assert_eq!(attr(span, "pytrace.usage.estimated"), true);
    // "Hello from the test server." is 6 o200k tokens.
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 6);
    // "You are a test." (5) + "Say hello." (3) + 3 per message + 3 priming.
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 17);
    assert_ttft(span);
    assert!(trace.stdout.contains("~"), "estimates are marked in the pretty view: {}", trace.stdout);
}

#[test]
fn large_rag_prompts_keep_the_parameters_the_sdk_writes_after_them() {
    // 300 KB and 1.2 MB prompts: one TLS write each beyond the 256 KiB capture
    // limit, with `model`, `max_tokens`, `stream` and `tools` after `messages`.
    for (scenario, body_at_least) in [("openai-rag-300k", 300_000), ("openai-rag-1200k", 1_200_000)] {
        let trace = traced(scenario);
        let span = only_span(&trace);
        assert_eq!(span["name"], "chat gpt-4o-mini", "{scenario}: {span}");
        assert_eq!(attr(span, "gen_ai.request.model"), "gpt-4o-mini", "{scenario}");
        assert_eq!(attr(span, "gen_ai.request.max_tokens"), 64, "{scenario}");
        assert_eq!(attr(span, "gen_ai.request.temperature"), 0.2, "{scenario}");
        assert_eq!(attr(span, "gen_ai.request.stream"), true, "{scenario}");
        assert_eq!(attr(span, "pytrace.capture.bytes_missing"), true, "{scenario}");
        assert!(attr(span, "http.request.body.size").as_i64().unwrap() > body_at_least, "{scenario}");
        assert_ttft(span);
        if scenario == "openai-rag-300k" {
            assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 21, "reported usage is taken as is");
            assert!(attr(span, "pytrace.usage.estimated").is_null());
        } else {
            assert!(attr(span, "gen_ai.usage.input_tokens").is_null(), "no estimate from a prompt with a hole: {span}");
            assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 6, "the answer was seen whole");
            assert_eq!(attr(span, "pytrace.usage.estimated"), true);
        }
    }
}

#[test]
fn openai_tool_calls() {
    let trace = traced("openai-tools");
    let span = only_span(&trace);
    assert_eq!(attr(span, "pytrace.gen_ai.tool_call.count"), 1);
    assert_eq!(attr(span, "pytrace.gen_ai.tool_call.names"), &serde_json::json!(["get_weather"]));
    assert_eq!(attr(span, "gen_ai.response.finish_reasons"), &serde_json::json!(["tool_calls"]));
}

#[test]
fn openai_responses_api() {
    let plain = traced("openai-responses");
    let span = only_span(&plain);
    assert_eq!(span["name"], "chat gpt-4.1-mini");
    assert_eq!(attr(span, "openai.api.type"), "responses");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 19);
    assert_eq!(attr(span, "gen_ai.usage.reasoning.output_tokens"), 2);

    let streamed = traced("openai-responses-stream");
    let span = only_span(&streamed);
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 6);
    assert_eq!(attr(span, "gen_ai.response.id"), "resp_test");
    assert_ttft(span);
}

#[test]
fn openai_embeddings() {
    let trace = traced("openai-embeddings");
    let span = only_span(&trace);
    assert_eq!(span["name"], "embeddings text-embedding-3-small");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 8);
    assert!(attr(span, "gen_ai.usage.cost").as_f64().unwrap() > 0.0);
}

#[test]
fn anthropic_messages_and_stream() {
    for scenario in ["anthropic-messages", "anthropic-stream"] {
        let trace = traced(scenario);
        let span = only_span(&trace);
        assert_eq!(span["name"], "chat claude-sonnet-4-5", "{scenario}");
        assert_eq!(attr(span, "gen_ai.provider.name"), "anthropic");
        assert_eq!(attr(span, "gen_ai.response.model"), "claude-sonnet-4-5-20250929");
        assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 117, "{scenario}: 17 + 100 cached");
        assert_eq!(attr(span, "gen_ai.usage.cache_read.input_tokens"), 100);
        assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 9);
        assert_eq!(attr(span, "gen_ai.response.finish_reasons"), &serde_json::json!(["end_turn"]));
        assert_eq!(attr(span, "gen_ai.request.max_tokens"), 100);
        if scenario == "anthropic-stream" {
            assert_ttft(span);
        }
        // claude-sonnet-4-5: $3 in, $0.30 cached, $15 out per million.
        let cost = attr(span, "gen_ai.usage.cost").as_f64().unwrap();
        assert!((cost - (17.0 * 3.0 + 100.0 * 0.3 + 9.0 * 15.0) / 1e6).abs() < 1e-12, "{cost}");
    }
}

#[test]
fn ollama_with_requests_and_aiohttp() {
    let trace = traced("ollama-requests");
    let span = only_span(&trace);
    assert_eq!(span["name"], "chat llama3.2");
    assert_eq!(attr(span, "gen_ai.provider.name"), "ollama");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), 26);
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 5);
    assert_ttft(span);
    assert!(attr(span, "gen_ai.usage.cost").is_null(), "a local model has no price");
    assert!(trace.stderr.contains("no price is known for model \"llama3.2\""), "one warning: {}", trace.stderr);

    let generate = traced("ollama-aiohttp");
    let span = only_span(&generate);
    assert_eq!(span["name"], "text_completion llama3.2");
    assert_eq!(attr(span, "gen_ai.request.stream"), false);
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), 5);
}

#[test]
fn content_is_captured_only_on_request_and_redacted() {
    let trace = traced_with("openai-tools", &["--capture-content", "--redact", "Paris"]);
    let span = only_span(&trace);
    let json = |key: &str| -> Value { serde_json::from_str(attr(span, key).as_str().unwrap()).unwrap() };
    assert_eq!(
        json("gen_ai.input.messages"),
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "Say hello."}]}])
    );
    assert_eq!(json("gen_ai.system_instructions"), serde_json::json!([{"type": "text", "content": "You are a test."}]));
    assert_eq!(
        json("gen_ai.output.messages")[0]["parts"][0],
        serde_json::json!({"type": "tool_call", "name": "get_weather"})
    );
    assert_eq!(json("gen_ai.tool.definitions")[0]["name"], "get_weather");

    let streamed = traced_with("openai-stream", &["--capture-content"]);
    let output: Value =
        serde_json::from_str(attr(only_span(&streamed), "gen_ai.output.messages").as_str().unwrap()).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], "Hello from the test server.");
    assert_eq!(output[0]["finish_reason"], "stop");
}
