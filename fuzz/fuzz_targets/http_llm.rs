//! The HTTP connection state machine and everything after it: the input is
//! read as a script of calls on two connections — each an op byte (bit 0:
//! the connection; (op >> 1) % 5: write, read, close, server role, SNI name;
//! bit 6: plaintext; bit 7: a gap, bytes the kernel lost), a length byte
//! (1–256) and the bytes — replayed through the tracker; every exchange is then analysed as an LLM call (provider
//! parsers, SSE, content decoding, token estimation). Never a panic.
#![no_main]

use bytes::Bytes;
use pytrace_core::events::{ConnKey, DataChunk, Endpoints, Event, Role, Transport};
use pytrace_core::tracker::Tracker;
use tracer_common::Direction;

libfuzzer_sys::fuzz_target!(|script: &[u8]| {
    let mut tracker = Tracker::<()>::new();
    let mut exchanges = Vec::new();
    let mut rest = script;
    let mut clock = 0_u64;
    while let Some((&op, tail)) = rest.split_first() {
        let conn = ConnKey { pid: 1, conn_id: u64::from(op & 1) };
        let length = tail.first().map_or(0, |&b| usize::from(b) + 1).min(tail.len().saturating_sub(1));
        let data = tail.get(1..1 + length).unwrap_or_default();
        rest = tail.get(1 + length..).unwrap_or_default();
        clock += 10;
        let event = match (op >> 1) % 5 {
            0 | 1 => Event::Data(DataChunk {
                conn,
                transport: if op & 0x40 == 0 { Transport::Tls } else { Transport::Plain },
                tid: 7,
                direction: if (op >> 1) % 5 == 0 { Direction::Egress } else { Direction::Ingress },
                call_start_ns: clock,
                call_end_ns: clock + 5,
                // A gap: the call moved more than was captured.
                call_len: data.len() as u64 + if op & 0x80 != 0 { 1000 } else { 0 },
                chunk_offset: 0,
                data: Bytes::copy_from_slice(data),
                last: true,
                truncated: op & 0x80 != 0,
            }),
            2 => Event::Closed { conn, at_ns: clock },
            3 => Event::SocketInfo { conn, endpoints: Endpoints { role: Role::Server, peer: None, local: None } },
            _ => Event::ServerName { conn, name: String::from_utf8_lossy(data).into_owned() },
        };
        tracker.handle(&event, &mut exchanges);
    }
    tracker.finish(&mut exchanges);
    for exchange in &exchanges {
        if let Some(call) = pytrace_core::llm::analyze(exchange) {
            let _ = pytrace_core::llm::tokens::estimate_missing(&call);
        }
    }
});
