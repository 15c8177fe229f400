//! Golden tests: wire transcripts of each LLM API, in the documented formats,
//! replayed through the whole pipeline (events → HTTP → LLM analysis → span)
//! split into calls of many sizes, checked attribute by attribute.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use pytrace_core::build::http::build_span;
use pytrace_core::build::llm::enrich;
use pytrace_core::events::{ConnKey, DataChunk, Event, Transport};
use pytrace_core::http::Exchange;
use pytrace_core::llm::pricing::PriceTable;
use pytrace_core::model::Clock;
use pytrace_core::model::{AttrValue, Resource, Span, Status, TestIds};
use pytrace_core::tracker::Tracker;
use serde_json::{Value, json};
use tracer_common::Direction;

const CONN: ConnKey = ConnKey { pid: 1, conn_id: 0x77 };

fn request(host: &str, path: &str, body: &Value, extra_headers: &str) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn json_response(status: u16, body: &Value, extra_headers: &str) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn gzip_json_response(body: &Value) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.to_string().as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap();
    let mut wire = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        compressed.len()
    )
    .into_bytes();
    wire.extend_from_slice(&compressed);
    wire
}

/// A chunked streaming response; each item is one chunk (one read, in replay).
fn stream_response(content_type: &str, chunks: &[String]) -> Vec<Vec<u8>> {
    let mut reads = vec![
        format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes(),
    ];
    for chunk in chunks {
        reads.push(format!("{:x}\r\n{chunk}\r\n", chunk.len()).into_bytes());
    }
    reads.push(b"0\r\n\r\n".to_vec());
    reads
}

fn sse(events: &[(Option<&str>, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(name, data)| match name {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        })
        .collect()
}

fn data_event(conn: ConnKey, direction: Direction, bytes: &[u8], at: u64) -> Event {
    Event::Data(DataChunk {
        conn,
        transport: Transport::Tls,
        tid: 1,
        direction,
        call_start_ns: at,
        call_end_ns: at,
        call_len: bytes.len() as u64,
        chunk_offset: 0,
        data: Bytes::copy_from_slice(bytes),
        last: true,
        truncated: false,
    })
}

/// Replays a request and a response given as reads; the request is written
/// at t=1000 ns and read `k` returns at 1000 + 1000·(k+1) ns. Reads are
/// further split into `piece`-byte calls (same timestamp) when `piece` > 0.
fn replay(request: &[u8], reads: &[Vec<u8>], piece: usize, close: bool) -> Exchange {
    let mut tracker = Tracker::new();
    let mut out = Vec::new();
    tracker.handle(&data_event(CONN, Direction::Egress, request, 1000), &mut out);
    for (k, read) in reads.iter().enumerate() {
        let at = 1000 + 1000 * (k as u64 + 1);
        let size = if piece == 0 { read.len().max(1) } else { piece };
        for part in read.chunks(size) {
            tracker.handle(&data_event(CONN, Direction::Ingress, part, at), &mut out);
        }
    }
    if close {
        tracker.handle(&Event::Closed { conn: CONN, at_ns: 99_999 }, &mut out);
    }
    tracker.finish(&mut out);
    assert_eq!(out.len(), 1, "one exchange");
    out.remove(0)
}

fn span_of(exchange: &Exchange) -> Span {
    let mut span = build_span(exchange, Clock::with_offset(0), Arc::new(Resource::default()), &mut TestIds);
    let call = pytrace_core::llm::analyze(exchange).expect("an LLM call");
    enrich(&mut span, &call, exchange.start_ns, &PriceTable::built_in());
    span
}

/// Runs the transcript whole and split at many sizes; all spans must agree.
fn golden(request: &[u8], reads: &[Vec<u8>]) -> Span {
    let whole = span_of(&replay(request, reads, 0, false));
    for piece in [1, 2, 3, 7, 16, 61, 200] {
        let split = span_of(&replay(request, reads, piece, false));
        assert_eq!(summary(&split), summary(&whole), "split into {piece}-byte calls");
    }
    whole
}

fn summary(span: &Span) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = span
        .attributes
        .iter()
        .filter(|(k, _)| !k.starts_with("http.") && *k != "thread.id")
        .map(|(k, v)| (k.to_owned(), format!("{v:?}")))
        .collect();
    pairs.push(("name".into(), span.name.clone()));
    pairs.sort();
    pairs
}

fn s(span: &Span, key: &str) -> Option<String> {
    match span.attributes.get(key)? {
        AttrValue::Str(v) => Some(v.clone()),
        AttrValue::StrArray(v) => Some(v.join(",")),
        AttrValue::Int(v) => Some(v.to_string()),
        AttrValue::Bool(v) => Some(v.to_string()),
        AttrValue::F64(v) => Some(format!("{v:.6}")),
        AttrValue::IntArray(v) => Some(format!("{v:?}")),
    }
}

fn cost(span: &Span) -> f64 {
    match span.attributes.get("gen_ai.usage.cost") {
        Some(AttrValue::F64(c)) => *c,
        other => panic!("no cost: {other:?}"),
    }
}

#[test]
fn openai_chat_gzip_with_tool_calls() {
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
        "temperature": 0.2, "max_completion_tokens": 100, "tools": [{"type": "function", "function": {"name": "get_weather"}}]});
    let response = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 20, "total_tokens": 1220,
            "prompt_tokens_details": {"cached_tokens": 1000}, "completion_tokens_details": {"reasoning_tokens": 0}}});
    let span = golden(
        &request("api.openai.com", "/v1/chat/completions", &body, "x-stainless-retry-count: 1\r\n"),
        &[gzip_json_response(&response)],
    );
    assert_eq!(span.name, "chat gpt-4o-mini");
    assert_eq!(s(&span, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(s(&span, "gen_ai.provider.name").as_deref(), Some("openai"));
    assert_eq!(s(&span, "openai.api.type").as_deref(), Some("chat_completions"));
    assert_eq!(s(&span, "gen_ai.response.model").as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(s(&span, "gen_ai.response.id").as_deref(), Some("chatcmpl-1"));
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("tool_calls"));
    assert_eq!(s(&span, "gen_ai.request.temperature").as_deref(), Some("0.200000"));
    assert_eq!(s(&span, "gen_ai.request.max_tokens").as_deref(), Some("100"));
    assert_eq!(s(&span, "gen_ai.request.stream").as_deref(), Some("false"));
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("1200"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("20"));
    assert_eq!(s(&span, "gen_ai.usage.cache_read.input_tokens").as_deref(), Some("1000"));
    assert_eq!(s(&span, "pytrace.gen_ai.tool_call.count").as_deref(), Some("1"));
    assert_eq!(s(&span, "pytrace.gen_ai.tool_call.names").as_deref(), Some("get_weather"));
    assert_eq!(s(&span, "pytrace.gen_ai.request.retry_count").as_deref(), Some("1"));
    assert_eq!(s(&span, "pytrace.usage.estimated"), None);
    // 200 uncached × $0.15 + 1000 cached × $0.075 + 20 × $0.60, per million.
    assert!((cost(&span) - (200.0 * 0.15 + 1000.0 * 0.075 + 20.0 * 0.6) / 1e6).abs() < 1e-12);
}

fn chat_stream_chunks(with_usage: bool) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![
        (None, chunk(json!({"role": "assistant", "content": ""}), Value::Null)),
        (None, chunk(json!({"content": "Hello"}), Value::Null)),
        (None, chunk(json!({"content": ", world!"}), Value::Null)),
        (None, chunk(json!({}), json!("stop"))),
    ];
    if with_usage {
        events.push((
            None,
            json!({"id": "chatcmpl-2", "model": "gpt-4o-2024-08-06", "choices": [],
            "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}),
        ));
    }
    let mut chunks = sse(&events);
    chunks.insert(1, ": keep-alive comment\n\n".into());
    chunks.push("data: [DONE]\n\n".into());
    chunks
}

#[test]
fn openai_chat_stream_with_usage_and_time_to_first_chunk() {
    let body = json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]});
    let reads = stream_response("text/event-stream; charset=utf-8", &chat_stream_chunks(true));
    let span = golden(&request("api.openai.com", "/v1/chat/completions", &body, ""), &reads);
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(s(&span, "gen_ai.request.stream").as_deref(), Some("true"));
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("11"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("4"));
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("stop"));
    // Reads: head at 2000, the empty role chunk at 3000, a comment at 4000,
    // "Hello" at 5000: the first chunk carrying content. Request at 1000.
    assert_eq!(s(&span, "gen_ai.response.time_to_first_chunk").as_deref(), Some("0.000004"));
    assert_eq!(s(&span, "pytrace.usage.estimated"), None);
}

#[test]
fn a_stream_closed_right_after_its_last_event_is_complete() {
    // The openai SDK stops reading at `[DONE]` and closes the connection
    // before the chunked body's terminating `0\r\n\r\n`.
    let body = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let reads = stream_response("text/event-stream", &chat_stream_chunks(true));
    let exchange =
        replay(&request("api.openai.com", "/v1/chat/completions", &body, ""), &reads[..reads.len() - 1], 0, true);
    assert!(exchange.incomplete.is_some(), "the HTTP body itself was cut short");
    let span = span_of(&exchange);
    assert_eq!(s(&span, "pytrace.incomplete"), None);
    assert_eq!(s(&span, "error.type"), None);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("4"));
}

#[test]
fn openai_chat_stream_without_usage_is_estimated() {
    let body = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Hello, world!"}]});
    let reads = stream_response("text/event-stream", &chat_stream_chunks(false));
    let span = golden(&request("api.openai.com", "/v1/chat/completions", &body, ""), &reads);
    assert_eq!(s(&span, "pytrace.usage.estimated").as_deref(), Some("true"));
    // "Hello, world!" is 4 o200k tokens; + 3 message framing + 3 reply priming.
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("10"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("4"));
}

/// The events the kernel sends for one write larger than the capture limit:
/// its first `limit` bytes and its last `TAIL_CAPACITY`, in 16 KiB chunks.
fn truncated_write(bytes: &[u8], at: u64, limit: usize) -> Vec<Event> {
    let tail_start = bytes.len() - tracer_common::TAIL_CAPACITY as usize;
    let chunk_at = |offset: usize, len: usize, last: bool| {
        Event::Data(DataChunk {
            conn: CONN,
            transport: Transport::Tls,
            tid: 1,
            direction: Direction::Egress,
            call_start_ns: at,
            call_end_ns: at,
            call_len: bytes.len() as u64,
            chunk_offset: offset as u64,
            data: Bytes::copy_from_slice(&bytes[offset..offset + len]),
            last,
            truncated: true,
        })
    };
    let chunk = tracer_common::CHUNK_CAPACITY;
    let head = (0..limit).step_by(chunk).map(|offset| chunk_at(offset, chunk, false));
    let tail = (tail_start..bytes.len())
        .step_by(chunk)
        .map(|o| chunk_at(o, chunk.min(bytes.len() - o), o + chunk >= bytes.len()));
    head.chain(tail).collect()
}

#[test]
fn a_prompt_beyond_the_capture_limit_keeps_the_parameters_written_after_it() {
    // The openai SDK's order: `messages` first, the parameters after it.
    let prompt = "Context: lorem \"ipsum\" }] dolor. ".repeat(40_000);
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"{prompt}"}}],"model":"gpt-4o","max_tokens":64,"stream":true,"temperature":0.2,"tools":[{{"type":"function","function":{{"name":"search"}}}}]}}"#
    );
    assert!(body.len() > 1_200_000);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut tracker = Tracker::new();
    let mut out = Vec::new();
    tracker.handle(&data_event(CONN, Direction::Egress, head.as_bytes(), 900), &mut out);
    for event in truncated_write(body.as_bytes(), 1000, 256 * 1024) {
        tracker.handle(&event, &mut out);
    }
    for (k, read) in stream_response("text/event-stream", &chat_stream_chunks(false)).iter().enumerate() {
        tracker.handle(&data_event(CONN, Direction::Ingress, read, 2000 + 1000 * k as u64), &mut out);
    }
    tracker.finish(&mut out);
    let span = span_of(&out[0]);
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(s(&span, "gen_ai.request.model").as_deref(), Some("gpt-4o"));
    assert_eq!(s(&span, "gen_ai.request.max_tokens").as_deref(), Some("64"));
    assert_eq!(s(&span, "gen_ai.request.temperature").as_deref(), Some("0.200000"));
    assert_eq!(s(&span, "gen_ai.request.stream").as_deref(), Some("true"));
    assert_eq!(s(&span, "pytrace.capture.bytes_missing").as_deref(), Some("true"));
    assert_eq!(s(&span, "http.request.body.size"), Some(body.len().to_string()));
    assert_eq!(s(&span, "gen_ai.usage.input_tokens"), None, "no estimate from a prompt with a hole");
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("4"), "the answer was seen whole");
    assert_eq!(s(&span, "pytrace.usage.estimated").as_deref(), Some("true"));
}

#[test]
fn an_abandoned_stream_yields_what_was_seen_marked_incomplete() {
    let body = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let reads = stream_response("text/event-stream", &chat_stream_chunks(false));
    let exchange = replay(&request("api.openai.com", "/v1/chat/completions", &body, ""), &reads[..4], 0, true);
    let span = span_of(&exchange);
    assert_eq!(s(&span, "pytrace.incomplete").as_deref(), Some("true"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("1"), "\"Hello\" so far");
    assert_eq!(s(&span, "pytrace.usage.estimated").as_deref(), Some("true"));
}

#[test]
fn openai_responses_stream_with_a_function_call() {
    let body = json!({"model": "gpt-4.1", "stream": true, "instructions": "Use tools.", "input": "Weather?", "max_output_tokens": 50});
    let events = sse(&[
        (
            Some("response.created"),
            json!({"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4.1-2025-04-14", "status": "in_progress"}}),
        ),
        (
            Some("response.output_item.added"),
            json!({"type": "response.output_item.added", "item": {"type": "function_call", "name": "get_weather"}}),
        ),
        (
            Some("response.function_call_arguments.delta"),
            json!({"type": "response.function_call_arguments.delta", "delta": "{\"city\":"}),
        ),
        (
            Some("response.completed"),
            json!({"type": "response.completed", "response": {"id": "resp_1", "model": "gpt-4.1-2025-04-14", "status": "completed",
            "output": [{"type": "function_call", "name": "get_weather", "arguments": "{}"}],
            "usage": {"input_tokens": 30, "output_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 5}}}}),
        ),
    ]);
    let span =
        golden(&request("api.openai.com", "/v1/responses", &body, ""), &stream_response("text/event-stream", &events));
    assert_eq!(span.name, "chat gpt-4.1");
    assert_eq!(s(&span, "openai.api.type").as_deref(), Some("responses"));
    assert_eq!(s(&span, "gen_ai.response.id").as_deref(), Some("resp_1"));
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("completed"));
    assert_eq!(s(&span, "pytrace.gen_ai.tool_call.names").as_deref(), Some("get_weather"));
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("30"));
    assert_eq!(s(&span, "gen_ai.usage.reasoning.output_tokens").as_deref(), Some("5"));
    assert_eq!(s(&span, "gen_ai.request.max_tokens").as_deref(), Some("50"));
    // Reads: head 2000, response.created 3000, the function call item 4000. Request at 1000.
    assert_eq!(s(&span, "gen_ai.response.time_to_first_chunk").as_deref(), Some("0.000003"));
}

#[test]
fn openai_embeddings_and_legacy_completions() {
    let embed = golden(
        &request(
            "api.openai.com",
            "/v1/embeddings",
            &json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
            "",
        ),
        &[json_response(
            200,
            &json!({"object": "list", "model": "text-embedding-3-small", "data": [], "usage": {"prompt_tokens": 8, "total_tokens": 8}}),
            "",
        )],
    );
    assert_eq!(embed.name, "embeddings text-embedding-3-small");
    assert_eq!(s(&embed, "gen_ai.usage.input_tokens").as_deref(), Some("8"));
    assert!((cost(&embed) - 8.0 * 0.02 / 1e6).abs() < 1e-15);

    let completion = golden(
        &request(
            "localhost:8000",
            "/v1/completions",
            &json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 5}),
            "",
        ),
        &[json_response(
            200,
            &json!({"id": "cmpl-1", "model": "gpt-3.5-turbo-instruct", "choices": [{"text": "hi", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5}}),
            "",
        )],
    );
    assert_eq!(completion.name, "text_completion gpt-3.5-turbo-instruct");
    assert_eq!(s(&completion, "gen_ai.provider.name").as_deref(), Some("openai"), "OpenAI-compatible server");
    assert_eq!(s(&completion, "gen_ai.response.finish_reasons").as_deref(), Some("length"));
}

#[test]
fn anthropic_messages_sum_cached_input_tokens() {
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]});
    let response = json!({"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5-20250929", "stop_reason": "tool_use",
        "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "tu_1", "name": "search", "input": {"q": "x"}}],
        "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 300}});
    let span = golden(
        &request("api.anthropic.com", "/v1/messages", &body, "anthropic-version: 2023-06-01\r\n"),
        &[json_response(200, &response, "")],
    );
    assert_eq!(span.name, "chat claude-sonnet-4-5");
    assert_eq!(s(&span, "gen_ai.provider.name").as_deref(), Some("anthropic"));
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("2400"), "100 + 2000 + 300");
    assert_eq!(s(&span, "gen_ai.usage.cache_read.input_tokens").as_deref(), Some("2000"));
    assert_eq!(s(&span, "gen_ai.usage.cache_creation.input_tokens").as_deref(), Some("300"));
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("tool_use"));
    assert_eq!(s(&span, "pytrace.gen_ai.tool_call.names").as_deref(), Some("search"));
    // 100 × $3 + 2000 × $0.30 + 300 × $3.75 + 50 × $15, per million.
    assert!((cost(&span) - (300.0 + 600.0 + 1125.0 + 750.0) / 1e6).abs() < 1e-12);
}

#[test]
fn anthropic_stream_takes_the_last_cumulative_output_count() {
    let body = json!({"model": "claude-3-5-haiku-latest", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let events = sse(&[
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_2", "model": "claude-3-5-haiku-20241022", "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        ),
        (Some("ping"), json!({"type": "ping"})),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        (
            Some("message_delta"),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}),
        ),
        (Some("message_delta"), json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 9}})),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]);
    let span = golden(
        &request("api.anthropic.com", "/v1/messages", &body, ""),
        &stream_response("text/event-stream", &events),
    );
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("25"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("9"), "cumulative: the last value, not a sum");
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("end_turn"));
    // Reads: head 2000, message_start 3000, ping 4000, block start 5000, first text delta 6000.
    assert_eq!(s(&span, "gen_ai.response.time_to_first_chunk").as_deref(), Some("0.000005"));
}

#[test]
fn anthropic_error_event_inside_a_stream() {
    let body = json!({"model": "claude-sonnet-4-5", "stream": true, "messages": []});
    let events = sse(&[(
        Some("error"),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )]);
    let span = golden(
        &request("api.anthropic.com", "/v1/messages", &body, ""),
        &stream_response("text/event-stream", &events),
    );
    assert_eq!(s(&span, "error.type").as_deref(), Some("overloaded_error"));
    assert_eq!(s(&span, "pytrace.gen_ai.error.message").as_deref(), Some("Overloaded"));
    assert!(matches!(span.status, Status::Error { .. }));
}

#[test]
fn provider_http_errors_become_span_errors() {
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    let error =
        json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit_exceeded"}});
    let span = golden(&request("api.openai.com", "/v1/chat/completions", &body, ""), &[json_response(429, &error, "")]);
    assert_eq!(s(&span, "error.type").as_deref(), Some("rate_limit_error"));
    assert_eq!(s(&span, "pytrace.gen_ai.error.message").as_deref(), Some("Rate limit reached"));
    assert_eq!(span.status, Status::Error { message: Some("Rate limit reached".into()) });
    assert_eq!(s(&span, "gen_ai.usage.output_tokens"), None, "nothing was generated");
}

#[test]
fn gemini_sse_stream_vertex_path_and_error_inside_200() {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}], "generationConfig": {"temperature": 0.5, "maxOutputTokens": 64}});
    let events = sse(&[
        (
            None,
            json!({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}}], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
        ),
        (
            None,
            json!({"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 2, "thoughtsTokenCount": 10, "totalTokenCount": 18}, "modelVersion": "gemini-2.5-flash"}),
        ),
    ]);
    let span = golden(
        &request(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaSECRET",
            &body,
            "",
        ),
        &stream_response("text/event-stream", &events),
    );
    assert_eq!(span.name, "generate_content gemini-2.5-flash");
    assert_eq!(s(&span, "gen_ai.provider.name").as_deref(), Some("gcp.gemini"));
    assert_eq!(s(&span, "gen_ai.request.stream").as_deref(), Some("true"));
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("6"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("12"), "candidates + thoughts");
    assert_eq!(s(&span, "gen_ai.usage.reasoning.output_tokens").as_deref(), Some("10"));
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("STOP"));
    assert_eq!(s(&span, "gen_ai.request.max_tokens").as_deref(), Some("64"));
    assert!(s(&span, "url.full").unwrap().contains("key=REDACTED"));

    let vertex = golden(
        &request(
            "us-central1-aiplatform.googleapis.com",
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
            &body,
            "",
        ),
        &[json_response(
            200,
            &json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}}),
            "",
        )],
    );
    assert_eq!(s(&vertex, "gen_ai.provider.name").as_deref(), Some("gcp.vertex_ai"));
    assert_eq!(s(&vertex, "gen_ai.request.model").as_deref(), Some("gemini-2.0-flash"));

    let failing =
        sse(&[(None, json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}))]);
    let failed = golden(
        &request(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
            &body,
            "",
        ),
        &stream_response("text/event-stream", &failing),
    );
    assert_eq!(s(&failed, "error.type").as_deref(), Some("UNAVAILABLE"));
}

#[test]
fn ollama_ndjson_stream_and_embed() {
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "options": {"temperature": 0.1, "num_predict": 20}});
    let lines: Vec<String> = [
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": false}),
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": "lo"}, "done": false}),
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
            "prompt_eval_count": 26, "eval_count": 2, "total_duration": 5_000_000}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect();
    let span =
        golden(&request("localhost:11434", "/api/chat", &body, ""), &stream_response("application/x-ndjson", &lines));
    assert_eq!(span.name, "chat llama3.2");
    assert_eq!(s(&span, "gen_ai.provider.name").as_deref(), Some("ollama"));
    assert_eq!(s(&span, "gen_ai.request.stream").as_deref(), Some("true"), "Ollama streams by default");
    assert_eq!(s(&span, "gen_ai.usage.input_tokens").as_deref(), Some("26"));
    assert_eq!(s(&span, "gen_ai.usage.output_tokens").as_deref(), Some("2"));
    assert_eq!(s(&span, "gen_ai.response.finish_reasons").as_deref(), Some("stop"));
    assert_eq!(s(&span, "gen_ai.response.time_to_first_chunk").as_deref(), Some("0.000002"));
    assert_eq!(s(&span, "gen_ai.usage.cost"), None, "local models have no price");

    let embed = golden(
        &request("localhost:11434", "/api/embed", &json!({"model": "all-minilm", "input": "hi"}), ""),
        &[json_response(200, &json!({"model": "all-minilm", "embeddings": [[0.1]], "prompt_eval_count": 2}), "")],
    );
    assert_eq!(embed.name, "embeddings all-minilm");
    assert_eq!(s(&embed, "gen_ai.usage.input_tokens").as_deref(), Some("2"));
}

#[test]
fn azure_deployments_and_bedrock() {
    let body = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let azure = golden(
        &request(
            "res.openai.azure.com",
            "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            &body,
            "api-key: SECRET\r\n",
        ),
        &[json_response(
            200,
            &json!({"id": "c", "model": "gpt-4o-2024-08-06", "choices": [{"finish_reason": "stop", "message": {"content": "Hi"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}}),
            "",
        )],
    );
    assert_eq!(azure.name, "chat prod-4o");
    assert_eq!(s(&azure, "gen_ai.provider.name").as_deref(), Some("azure.ai.openai"));
    assert!(
        s(&azure, "gen_ai.usage.cost").is_some(),
        "priced by the response model when the deployment name is unknown"
    );

    let converse = golden(
        &request(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            &json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "inferenceConfig": {"maxTokens": 50}}),
            "",
        ),
        &[json_response(
            200,
            &json!({"output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}}),
            "",
        )],
    );
    assert_eq!(converse.name, "chat anthropic.claude-3-haiku-20240307-v1:0");
    assert_eq!(s(&converse, "gen_ai.provider.name").as_deref(), Some("aws.bedrock"));
    assert_eq!(s(&converse, "gen_ai.usage.output_tokens").as_deref(), Some("2"));

    let invoke = golden(
        &request(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/meta.llama3-8b-instruct-v1%3A0/invoke",
            &json!({"prompt": "Hi"}),
            "",
        ),
        &[json_response(
            200,
            &json!({"generation": "Hello", "stop_reason": "stop"}),
            "X-Amzn-Bedrock-Input-Token-Count: 4\r\nX-Amzn-Bedrock-Output-Token-Count: 3\r\n",
        )],
    );
    assert_eq!(s(&invoke, "gen_ai.usage.input_tokens").as_deref(), Some("4"));
    assert_eq!(s(&invoke, "gen_ai.usage.output_tokens").as_deref(), Some("3"));
}

#[test]
fn other_traffic_stays_plain_http() {
    let exchange = replay(
        b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
        &[json_response(200, &json!({"data": []}), "")],
        0,
        false,
    );
    assert!(pytrace_core::llm::analyze(&exchange).is_none());
}
