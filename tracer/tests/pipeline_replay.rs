//! Replays recorded HTTP/1.1 transcripts through the event → exchange
//! pipeline, split into calls of every size, interleaved across connections,
//! with capture gaps and with garbage, and checks that the exchanges are the
//! ones a user would expect — and that nothing ever panics.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use bytes::Bytes;
use proptest::prelude::*;
use pytrace_core::events::{ConnKey, DataChunk, Event, Transport};
use pytrace_core::http::encoding;
use pytrace_core::http::{Exchange, Incomplete};
use pytrace_core::tracker::Tracker;
use tracer_common::Direction;

/// One side of a transcript: bytes written (request) or read (response).
#[derive(Clone)]
enum Step {
    Write(&'static [u8]),
    Read(&'static [u8]),
    Close,
}
use Step::{Close, Read, Write};

/// What a user checks about an exchange.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Seen {
    method: String,
    target: String,
    status: Option<u16>,
    request_body: u64,
    response_body: u64,
    decoded: Vec<u8>,
    incomplete: Option<Incomplete>,
    informational: Vec<u16>,
}

fn seen(exchange: &Exchange) -> Seen {
    let encodings = exchange.response.as_ref().map(|r| r.headers.tokens("content-encoding")).unwrap_or_default();
    Seen {
        method: exchange.request.method.clone(),
        target: exchange.request.target.clone(),
        status: exchange.response.as_ref().map(|r| r.status),
        request_body: exchange.request_body.size,
        response_body: exchange.response_body.size,
        decoded: encoding::decode(&encodings, &exchange.response_body.kept).unwrap_or_default(),
        incomplete: exchange.incomplete,
        informational: exchange.informational.clone(),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn gzip_response() -> &'static [u8] {
    let body = gzip(b"{\"compressed\":true}");
    let mut wire =
        format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    wire.extend_from_slice(&body);
    Box::leak(wire.into_boxed_slice())
}

/// A keep-alive connection carrying every framing case pytrace supports.
fn keep_alive_transcript() -> Vec<Step> {
    vec![
        Write(b"GET /json HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer sk-x\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"hello\":\"w\"}"),
        Write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 11\r\n\r\n{\"model\":1}"),
        Read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n"),
        Write(b"GET /gz HTTP/1.1\r\nHost: api.example.com\r\nAccept-Encoding: gzip\r\n\r\n"),
        Read(gzip_response()),
        Write(b"HEAD /json HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"),
        Write(b"DELETE /item HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        Read(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Write(b"GET /cached HTTP/1.1\r\nHost: api.example.com\r\nIf-None-Match: \"x\"\r\n\r\n"),
        Read(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n"),
        Write(b"PUT /upload HTTP/1.1\r\nHost: api.example.com\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
        Write(b"GET /missing HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        Read(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
        Write(b"GET /bye HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"),
        Close,
    ]
}

fn expected_keep_alive() -> Vec<Seen> {
    let s = |method: &str, target: &str, status: u16, request_body: u64, response_body: u64, decoded: &[u8]| Seen {
        method: method.into(),
        target: target.into(),
        status: Some(status),
        request_body,
        response_body,
        decoded: decoded.to_vec(),
        incomplete: None,
        informational: vec![],
    };
    let gz_len = gzip(b"{\"compressed\":true}").len() as u64;
    vec![
        s("GET", "/json", 200, 0, 13, b"{\"hello\":\"w\"}"),
        s("POST", "/v1/chat/completions", 200, 11, 9, b"data: abc"),
        s("GET", "/gz", 200, 0, gz_len, b"{\"compressed\":true}"),
        s("HEAD", "/json", 200, 0, 0, b""),
        s("DELETE", "/item", 204, 0, 0, b""),
        s("GET", "/cached", 304, 0, 0, b""),
        Seen { informational: vec![100], ..s("PUT", "/upload", 201, 5, 2, b"ok") },
        s("GET", "/missing", 404, 0, 9, b"not found"),
        s("GET", "/bye", 200, 0, 13, b"until the end"),
    ]
}

/// Turns steps into events, each step split into calls of `piece` bytes.
fn events(conn: ConnKey, steps: &[Step], piece: usize, clock: &mut u64) -> Vec<Event> {
    events_cut(conn, steps, std::iter::repeat(piece.max(1)), clock)
}

/// Turns steps into events, cutting each step into calls of the sizes `cuts` yields.
fn events_cut(conn: ConnKey, steps: &[Step], mut cuts: impl Iterator<Item = usize>, clock: &mut u64) -> Vec<Event> {
    let mut out = Vec::new();
    for step in steps {
        let (direction, data) = match step {
            Write(d) => (Direction::Egress, *d),
            Read(d) => (Direction::Ingress, *d),
            Close => {
                *clock += 1;
                out.push(Event::Closed { conn, at_ns: *clock });
                continue;
            }
        };
        let mut rest = data;
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).clamp(1, rest.len());
            *clock += 10;
            out.push(Event::Data(call(conn, direction, &rest[..n], *clock)));
            rest = &rest[n..];
        }
    }
    out
}

fn call(conn: ConnKey, direction: Direction, data: &[u8], at: u64) -> DataChunk {
    DataChunk {
        conn,
        transport: Transport::Tls,
        tid: 7,
        direction,
        call_start_ns: at,
        call_end_ns: at + 5,
        call_len: data.len() as u64,
        chunk_offset: 0,
        data: Bytes::copy_from_slice(data),
        last: true,
        truncated: false,
    }
}

fn run(events: &[Event]) -> Vec<Exchange> {
    let mut tracker = Tracker::new();
    let mut out = Vec::new();
    for event in events {
        tracker.handle(event, &mut out);
    }
    tracker.finish(&mut out);
    out
}

const CONN_A: ConnKey = ConnKey { pid: 100, conn_id: 0xa };
const CONN_B: ConnKey = ConnKey { pid: 100, conn_id: 0xb };

#[test]
fn keep_alive_exchanges_survive_every_split_size() {
    let transcript = keep_alive_transcript();
    let longest = transcript
        .iter()
        .map(|s| match s {
            Write(d) | Read(d) => d.len(),
            Close => 0,
        })
        .max()
        .unwrap();
    for piece in 1..=longest {
        let exchanges = run(&events(CONN_A, &transcript, piece, &mut 0));
        let seen: Vec<Seen> = exchanges.iter().map(seen).collect();
        assert_eq!(seen, expected_keep_alive(), "split into {piece}-byte calls");
    }
}

#[test]
fn interleaved_connections_on_one_thread_stay_apart() {
    let transcript = keep_alive_transcript();
    let mut clock = 0;
    let a = events(CONN_A, &transcript, 7, &mut clock);
    let b = events(CONN_B, &transcript, 13, &mut clock);
    let mut mixed = Vec::new();
    let (mut ia, mut ib) = (a.into_iter(), b.into_iter());
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => break,
            (x, y) => mixed.extend(x.into_iter().chain(y)),
        }
    }
    let exchanges = run(&mixed);
    for conn in [CONN_A, CONN_B] {
        let seen: Vec<Seen> = exchanges.iter().filter(|e| e.conn == conn).map(seen).collect();
        assert_eq!(seen, expected_keep_alive());
    }
}

#[test]
fn timing_comes_from_the_calls_that_moved_the_bytes() {
    let steps =
        [Write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), Read(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd")];
    let exchanges = run(&events(CONN_A, &steps, 10, &mut 0));
    let e = &exchanges[0];
    // Request calls at 10, 20, 30 (start = first call's entry); response calls
    // at 40..=90, each returning 5 ns after entry.
    assert_eq!(e.start_ns, 10);
    assert_eq!(e.first_response_byte_ns, Some(45));
    assert_eq!(e.end_ns, 85);
}

#[test]
fn an_abandoned_response_is_reported_incomplete_with_what_arrived() {
    let steps = [
        Write(b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"),
        Close,
    ];
    let exchanges = run(&events(CONN_A, &steps, 1000, &mut 0));
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].incomplete, Some(Incomplete::ConnectionClosed));
    assert_eq!(exchanges[0].response_body.kept, b"first");

    let in_flight = run(&events(CONN_A, &steps[..2], 1000, &mut 0));
    assert_eq!(in_flight[0].incomplete, Some(Incomplete::TracingEnded));
}

#[test]
fn a_request_bigger_than_the_capture_limit_still_pairs() {
    // 100-byte body, only 20 bytes of the write captured (capture limit).
    let head = b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n";
    let mut write = call(CONN_A, Direction::Egress, head, 1);
    let mut data = head.to_vec();
    data.extend_from_slice(&[b'x'; 20]);
    write.data = Bytes::from(data);
    write.call_len = head.len() as u64 + 100;
    write.truncated = true;
    let read = call(CONN_A, Direction::Ingress, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2);
    let exchanges = run(&[Event::Data(write), Event::Data(read)]);
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].request_body.size, 100);
    assert_eq!(exchanges[0].request_body.uncaptured, 80);
    assert!(exchanges[0].bytes_missing);
    assert_eq!(exchanges[0].response.as_ref().unwrap().status, 200);
    assert_eq!(exchanges[0].incomplete, None);
}

#[test]
fn attaching_mid_connection_resynchronises_at_the_next_message() {
    let steps = [
        Read(b"tail of a body we never saw the head of"),
        Write(b"rest of an old request body"),
        Write(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ];
    let exchanges = run(&events(CONN_A, &steps, 1000, &mut 0));
    let seen: Vec<(String, Option<u16>)> =
        exchanges.iter().map(|e| (e.request.target.clone(), e.response.as_ref().map(|r| r.status))).collect();
    assert_eq!(seen, [("/after".to_owned(), Some(200))]);
}

#[test]
fn malformed_framing_yields_an_incomplete_span_then_recovers() {
    let steps = [
        Write(b"GET /bad HTTP/1.1\r\nHost: h\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n"),
        Write(b"GET /good HTTP/1.1\r\nHost: h\r\n\r\n"),
        Read(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    let exchanges = run(&events(CONN_A, &steps, 1000, &mut 0));
    let seen: Vec<(String, Option<Incomplete>)> =
        exchanges.iter().map(|e| (e.request.target.clone(), e.incomplete)).collect();
    assert_eq!(seen, [("/bad".to_owned(), Some(Incomplete::ResponseUnreadable)), ("/good".to_owned(), None)]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_call_boundaries_give_the_same_exchanges(cuts in proptest::collection::vec(1usize..64, 1..40)) {
        let evs = events_cut(CONN_A, &keep_alive_transcript(), cuts.iter().copied().cycle(), &mut 0);
        let seen: Vec<Seen> = run(&evs).iter().map(seen).collect();
        prop_assert_eq!(seen, expected_keep_alive());
    }

    #[test]
    fn hostile_bytes_never_panic(
        calls in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..30),
        prefix in prop_oneof![Just(&b""[..]), Just(&b"GET / HTTP/1.1\r\n"[..]), Just(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..])],
    ) {
        let mut evs = Vec::new();
        for (i, (egress, data)) in calls.iter().enumerate() {
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(data);
            let direction = if *egress { Direction::Egress } else { Direction::Ingress };
            evs.push(Event::Data(call(CONN_A, direction, &bytes, i as u64)));
        }
        let _ = run(&evs);
    }

    #[test]
    fn random_records_never_panic_the_decoder(record in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = pytrace_core::events::decode(&record);
    }
}

mod connection_facts {
    use std::sync::Arc;

    use pytrace_core::build::http::build_span;
    use pytrace_core::events::{Endpoints, Role};
    use pytrace_core::model::Clock;
    use pytrace_core::model::{Resource, SpanKind, TestIds};

    use super::*;

    const SOCKET: ConnKey = ConnKey { pid: 100, conn_id: 1 << 63 | 5 };

    fn endpoints(role: Role, peer: &str) -> Endpoints {
        Endpoints { role, peer: Some(peer.parse().unwrap()), local: Some("127.0.0.1:8080".parse().unwrap()) }
    }

    fn plain(direction: Direction, data: &'static [u8], at: u64) -> Event {
        Event::Data(DataChunk { transport: Transport::Plain, ..call(SOCKET, direction, data, at) })
    }

    fn span_attr(exchange: &Exchange, key: &str) -> Option<String> {
        let span = build_span(exchange, Clock::with_offset(0), Arc::new(Resource::default()), &mut TestIds);
        span.attributes.get(key).map(|v| match v {
            pytrace_core::model::AttrValue::Str(s) => s.clone(),
            pytrace_core::model::AttrValue::Int(i) => i.to_string(),
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn accepted_connections_swap_directions_and_become_server_spans() {
        let events = [
            Event::SocketInfo { conn: SOCKET, endpoints: endpoints(Role::Server, "10.1.2.3:50000") },
            plain(
                Direction::Ingress,
                b"POST /v1/chat?key=sk-1 HTTP/1.1\r\nHost: svc:8080\r\nContent-Length: 2\r\n\r\n{}",
                100,
            ),
            plain(Direction::Egress, b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 200),
        ];
        let exchanges = run(&events);
        assert_eq!(exchanges.len(), 1);
        let exchange = &exchanges[0];
        assert_eq!(exchange.start_ns, 105, "a read's bytes count from when the read returned");
        let span = build_span(exchange, Clock::with_offset(0), Arc::new(Resource::default()), &mut TestIds);
        assert_eq!(span.kind, SpanKind::Server);
        assert!(matches!(span.status, pytrace_core::model::Status::Error { .. }), "5xx is a server error");
        assert_eq!(span_attr(exchange, "url.path").as_deref(), Some("/v1/chat"));
        assert_eq!(span_attr(exchange, "url.query").as_deref(), Some("key=REDACTED"));
        assert_eq!(span_attr(exchange, "url.scheme").as_deref(), Some("http"));
        assert_eq!(span_attr(exchange, "client.address").as_deref(), Some("10.1.2.3"));
        assert_eq!(span_attr(exchange, "server.port").as_deref(), Some("8080"));
    }

    #[test]
    fn client_spans_fall_back_to_the_peer_when_there_is_no_host_header() {
        let events = [
            Event::SocketInfo { conn: SOCKET, endpoints: endpoints(Role::Client, "[::1]:11434") },
            plain(Direction::Egress, b"GET /api/tags HTTP/1.0\r\n\r\n", 100),
            plain(Direction::Ingress, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200),
        ];
        let exchange = &run(&events)[0];
        assert_eq!(span_attr(exchange, "url.full").as_deref(), Some("http://[::1]:11434/api/tags"));
        assert_eq!(span_attr(exchange, "network.type").as_deref(), Some("ipv6"));
        assert_eq!(span_attr(exchange, "network.protocol.version").as_deref(), Some("1.0"));
    }

    #[test]
    fn a_traceparent_header_joins_the_applications_trace() {
        let events = [
            Event::Data(call(SOCKET, Direction::Egress, b"GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n", 1)),
            Event::Data(call(SOCKET, Direction::Ingress, b"HTTP/1.1 204 No Content\r\n\r\n", 2)),
        ];
        let span = build_span(&run(&events)[0], Clock::with_offset(0), Arc::new(Resource::default()), &mut TestIds);
        assert_eq!(span.trace_id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span.parent_span_id.map(|p| p.to_string()).as_deref(), Some("b7ad6b7169203331"));
        assert_ne!(span.span_id.to_string(), "b7ad6b7169203331", "the span is a child, not the parent");
    }

    #[test]
    fn tls_facts_carry_sni_and_the_linked_socket() {
        let tls = ConnKey { pid: 100, conn_id: 0x5555_0000 };
        let events = [
            Event::ServerName { conn: tls, name: "api.openai.com".into() },
            Event::TlsSocket { conn: tls, endpoints: endpoints(Role::Client, "104.18.0.1:443") },
            Event::Data(call(tls, Direction::Egress, b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", 1)),
            Event::Data(call(tls, Direction::Ingress, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2)),
        ];
        let exchange = &run(&events)[0];
        assert_eq!(span_attr(exchange, "url.full").as_deref(), Some("https://api.openai.com/v1/models"));
        assert_eq!(span_attr(exchange, "pytrace.tls.server_name").as_deref(), Some("api.openai.com"));
        assert_eq!(span_attr(exchange, "network.peer.address").as_deref(), Some("104.18.0.1"));
    }
}
