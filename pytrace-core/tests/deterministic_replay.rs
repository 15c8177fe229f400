//! The engine is deterministic: the same events, handed in at the same
//! times with the same id source, give the same spans byte for byte — no
//! clock, random generator or `/proc` of its own reaches into the output.

use bytes::Bytes;
use pytrace_core::engine::{Engine, ProcessFacts};
use pytrace_core::events::{ConnKey, DataChunk, Event, Transport};
use pytrace_core::llm::pricing::PriceTable;
use pytrace_core::model::{Clock, IdSource, SequentialIds, Span, semconv as sc};
use pytrace_core::python::memory::ProcessMemory;
use tracer_common::Direction;

/// A replay knows nothing of the processes beyond their events.
struct NoFacts;

impl ProcessFacts for NoFacts {
    fn is_process(&self, _pid: u32) -> bool {
        false
    }
    fn main_thread_name(&self, _pid: u32) -> Option<String> {
        None
    }
    fn memory(&self, _pid: u32) -> Option<ProcessMemory> {
        None
    }
}

const REQUEST_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const RESPONSE_BODY: &str = r#"{"id":"c1","model":"gpt-4o-mini-2024-07-18","choices":[{"message":{"role":"assistant","content":"hello"}}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#;

fn request() -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-test\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{REQUEST_BODY}",
        REQUEST_BODY.len()
    )
    .into_bytes()
}

fn response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{RESPONSE_BODY}",
        RESPONSE_BODY.len()
    )
    .into_bytes()
}

fn data(conn: ConnKey, direction: Direction, bytes: &[u8], at: u64) -> Event {
    Event::Data(DataChunk {
        conn,
        transport: Transport::Tls,
        tid: 7,
        direction,
        call_start_ns: at,
        call_end_ns: at + 5,
        call_len: bytes.len() as u64,
        chunk_offset: 0,
        data: Bytes::copy_from_slice(bytes),
        last: true,
        truncated: false,
    })
}

/// Two connections of one process, each one LLM call, the second left unanswered.
fn events() -> Vec<Event> {
    let (a, b) = (ConnKey { pid: 100, conn_id: 1 }, ConnKey { pid: 100, conn_id: 2 });
    let (request, response) = (request(), response());
    vec![
        data(a, Direction::Egress, &request, 1_000),
        data(b, Direction::Egress, &request, 1_500),
        data(a, Direction::Ingress, &response[..40], 2_000),
        data(a, Direction::Ingress, &response[40..], 2_500),
    ]
}

fn replay(ids: impl IdSource + 'static) -> Vec<Span> {
    let clock = Clock::with_offset(1_700_000_000_000_000_000);
    let mut engine = Engine::new(clock, PriceTable::built_in(), None, Box::new(ids), Box::new(NoFacts));
    let mut spans = Vec::new();
    for event in events() {
        let now = match &event {
            Event::Data(chunk) => chunk.call_end_ns,
            _ => 0,
        };
        engine.event(&event, now);
        spans.extend(engine.take_spans());
    }
    engine.finish(10_000);
    spans.extend(engine.take_spans());
    spans
}

#[test]
fn the_same_events_give_the_same_spans() {
    let first = replay(SequentialIds::default());
    assert_eq!(first.len(), 2, "{first:#?}");
    assert_eq!(first[0].attributes.str(sc::GEN_AI_REQUEST_MODEL), Some("gpt-4o-mini"));
    assert_eq!(first[0].attributes.int(sc::GEN_AI_USAGE_INPUT_TOKENS), Some(9));
    assert_eq!(first[1].attributes.bool(sc::PYTRACE_INCOMPLETE), Some(true), "{:#?}", first[1]);
    assert_eq!(format!("{first:?}"), format!("{:?}", replay(SequentialIds::default())));
}

#[test]
fn identifiers_come_from_the_source_given() {
    struct Offset(SequentialIds);
    impl IdSource for Offset {
        fn fill(&mut self, bytes: &mut [u8]) {
            self.0.fill(bytes);
            bytes[0] = 0xab;
        }
    }
    let spans = replay(Offset(SequentialIds::default()));
    assert!(spans.iter().all(|s| s.trace_id.0[0] == 0xab && s.span_id.0[0] == 0xab), "{spans:#?}");
}
