//! Routes decoded events to one [`HttpConnection`] per connection, attaches
//! what is known about each connection to its exchanges, and collects them.
//!
//! Connections are keyed by (pid, connection id), never by thread: asyncio
//! runs many connections on one thread. For connections the traced process
//! accepted (it is the server), requests arrive as reads, so directions are
//! swapped before the HTTP layer. Bytes read become available when the read
//! returns, so that is their timestamp. The tracker also notices chunks lost
//! inside a call (offsets that skip ahead) and turns them, like capture-limit
//! truncation, into gaps the HTTP layer can account for.

use std::collections::HashMap;

use tracer_common::Direction;

use crate::events::{ConnKey, DataChunk, Event, Role};
use crate::http::{ConnectionFacts, Exchange, HttpConnection, Incomplete, Segment};
use crate::python::symbolize::CallStack;

/// Where the next chunk of a call is expected, per connection and direction.
#[derive(Clone, Copy, Default)]
struct Cursor {
    call_start_ns: u64,
    next_offset: u64,
}

struct Tracked {
    http: HttpConnection,
    cursors: [Cursor; 2],
    facts: ConnectionFacts,
}

impl Tracked {
    fn new(conn: ConnKey) -> Self {
        Self { http: HttpConnection::new(conn), cursors: Default::default(), facts: ConnectionFacts::default() }
    }

    fn role(&self) -> Role {
        self.facts.endpoints.map_or(Role::Client, |e| e.role)
    }
}

/// A request the traced process began to serve: its head was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRequest {
    pub conn: ConnKey,
    /// The thread that read it.
    pub tid: u32,
    pub start_ns: u64,
    pub method: String,
    pub target: String,
    pub traceparent: Option<String>,
}

#[derive(Default)]
pub struct Tracker {
    connections: HashMap<ConnKey, Tracked>,
    /// Requests begun on connections the process accepted, for the caller.
    server_requests: Vec<ServerRequest>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of connections currently tracked.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Feeds one event; finished exchanges are appended to `out`.
    pub fn handle(&mut self, event: &Event, out: &mut Vec<Exchange>) {
        let first_new = out.len();
        match event {
            Event::Data(chunk) => self.data(chunk, out),
            Event::Closed { conn, .. } => {
                if let Some(mut tracked) = self.connections.remove(conn) {
                    tracked.http.on_close(out);
                    stamp(&tracked.facts, &mut out[first_new..]);
                }
                return;
            }
            Event::SocketInfo { conn, endpoints } | Event::TlsSocket { conn, endpoints } => {
                self.tracked(*conn).facts.endpoints = Some(*endpoints);
            }
            Event::ServerName { conn, name } => self.tracked(*conn).facts.server_name = Some(name.clone()),
            // Handled by the pipeline (stacks are resolved, then handed over with `offer_stack`).
            Event::PyStack { .. }
            | Event::FunctionStart { .. }
            | Event::FunctionEnd(_)
            | Event::ProcessForked { .. }
            | Event::ProcessExec { .. }
            | Event::ProcessMapped { .. } => {}
        }
        if out.len() > first_new
            && let Some(conn) = out.get(first_new).map(|e| e.conn)
            && let Some(tracked) = self.connections.get(&conn)
        {
            stamp(&tracked.facts, &mut out[first_new..]);
        }
    }

    /// The Python stack of the thread about to write the next request on `conn`.
    pub fn offer_stack(&mut self, conn: ConnKey, stack: std::sync::Arc<CallStack>) {
        self.tracked(conn).http.offer_stack(stack);
    }

    /// Whether the traced process accepted `conn` (it serves requests there).
    pub fn is_server(&self, conn: ConnKey) -> bool {
        self.connections.get(&conn).is_some_and(|t| t.role() == Role::Server)
    }

    /// Requests begun on served connections since the last call, in order.
    pub fn take_server_requests(&mut self) -> Vec<ServerRequest> {
        std::mem::take(&mut self.server_requests)
    }

    fn tracked(&mut self, conn: ConnKey) -> &mut Tracked {
        self.connections.entry(conn).or_insert_with(|| Tracked::new(conn))
    }

    fn data(&mut self, chunk: &DataChunk, out: &mut Vec<Exchange>) {
        let tracked = self.connections.entry(chunk.conn).or_insert_with(|| Tracked::new(chunk.conn));
        let serving = tracked.role() == Role::Server;
        tracked.facts.transport.get_or_insert(chunk.transport);
        let cursor = &mut tracked.cursors[chunk.direction as usize];
        let lost_before = if chunk.chunk_offset == 0 {
            0
        } else if cursor.call_start_ns == chunk.call_start_ns {
            chunk.chunk_offset.saturating_sub(cursor.next_offset)
        } else {
            // The call's first chunks were lost: resynchronise at a later call.
            u64::MAX
        };
        *cursor =
            Cursor { call_start_ns: chunk.call_start_ns, next_offset: chunk.chunk_offset + chunk.data.len() as u64 };
        let is_request = (chunk.direction == Direction::Egress) == (tracked.role() == Role::Client);
        let http = &mut tracked.http;
        if lost_before > 0 {
            gap(http, is_request, lost_before, out);
        }
        let segment = Segment {
            data: &chunk.data,
            starts_call: chunk.chunk_offset == 0,
            call_start_ns: match chunk.direction {
                Direction::Egress => chunk.call_start_ns,
                Direction::Ingress => chunk.call_end_ns,
            },
            call_end_ns: chunk.call_end_ns,
            tid: chunk.tid,
        };
        if is_request {
            let seen = http.requests_seen();
            http.on_request_bytes(segment, out);
            let begun = (http.requests_seen() - seen) as usize;
            if begun > 0 && serving {
                let conn = chunk.conn;
                self.server_requests.extend(http.newest_pending(begun).map(|(head, tid, start_ns)| ServerRequest {
                    conn,
                    tid,
                    start_ns,
                    method: head.method.clone(),
                    target: head.target.clone(),
                    traceparent: head.headers.get("traceparent"),
                }));
            }
        } else {
            http.on_response_bytes(segment, out);
        }
        let missing = chunk.uncaptured_after();
        if missing > 0 {
            gap(http, is_request, missing, out);
        }
    }

    /// The process exited: every connection of it ends.
    pub fn process_exited(&mut self, pid: u32, out: &mut Vec<Exchange>) {
        self.connections.retain(|conn, tracked| {
            if conn.pid != pid {
                return true;
            }
            let first_new = out.len();
            tracked.http.flush(Incomplete::ProcessExited, out);
            stamp(&tracked.facts, &mut out[first_new..]);
            false
        });
    }

    /// Tracing stops: report everything still in flight.
    pub fn finish(&mut self, out: &mut Vec<Exchange>) {
        for (_, mut tracked) in self.connections.drain() {
            let first_new = out.len();
            tracked.http.flush(Incomplete::TracingEnded, out);
            stamp(&tracked.facts, &mut out[first_new..]);
        }
    }
}

fn stamp(facts: &ConnectionFacts, exchanges: &mut [Exchange]) {
    for exchange in exchanges {
        exchange.connection = facts.clone();
    }
}

fn gap(http: &mut HttpConnection, is_request: bool, missing: u64, out: &mut Vec<Exchange>) {
    if is_request {
        http.on_request_gap(missing);
    } else {
        http.on_response_gap(missing, out);
    }
}
