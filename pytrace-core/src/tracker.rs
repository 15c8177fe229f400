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
//!
//! A connection whose close event never arrives would be kept for ever, so
//! connections are forgotten after [`IDLE_TIMEOUT_NS`] without traffic, and
//! the least recently active ones when [`MAX_CONNECTIONS`] are tracked; both
//! are counted ([`LimitCounters`]).

use std::collections::HashMap;

use tracer_common::Direction;

use crate::events::{ConnKey, DataChunk, Event, Role};
use crate::http::{ConnectionFacts, Exchange, HttpConnection, Incomplete, Segment};
use crate::limits::LimitCounters;

/// Connections tracked at most (a few hundred bytes each when idle).
pub const MAX_CONNECTIONS: usize = 32_768;
/// A connection without traffic for this long is forgotten: longer than any
/// client library keeps an idle pooled connection.
pub const IDLE_TIMEOUT_NS: u64 = 15 * 60 * 1_000_000_000;
/// How often idle connections are looked for.
const IDLE_SWEEP_NS: u64 = 10 * 1_000_000_000;

/// Where the next chunk of a call is expected, per connection and direction.
#[derive(Clone, Copy, Default)]
struct Cursor {
    call_start_ns: u64,
    next_offset: u64,
}

struct Tracked<C> {
    http: HttpConnection<C>,
    cursors: [Cursor; 2],
    facts: ConnectionFacts,
    /// Kernel time of the connection's latest event.
    last_active_ns: u64,
}

impl<C> Tracked<C> {
    fn new(conn: ConnKey, now_ns: u64) -> Self {
        Self {
            http: HttpConnection::new(conn),
            cursors: Default::default(),
            facts: ConnectionFacts::default(),
            last_active_ns: now_ns,
        }
    }

    /// Reports what the connection still waits for as incomplete.
    fn forget(mut self, out: &mut Vec<Exchange<C>>) {
        let first_new = out.len();
        self.http.flush(Incomplete::Forgotten, out);
        stamp(&self.facts, &mut out[first_new..]);
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

/// `C` is what the caller attaches to each request as it begins
/// ([`Tracker::offer_context`]); every [`Exchange`] carries its own back.
pub struct Tracker<C = ()> {
    connections: HashMap<ConnKey, Tracked<C>>,
    /// Requests begun on connections the process accepted, for the caller.
    server_requests: Vec<ServerRequest>,
    /// The latest kernel time seen in an event.
    latest_ns: u64,
    next_idle_sweep_ns: u64,
    /// Exchanges of connections forgotten while making room, for the caller.
    forgotten: Vec<Exchange<C>>,
    pub limits: LimitCounters,
}

impl<C> Default for Tracker<C> {
    fn default() -> Self {
        Self {
            connections: HashMap::new(),
            server_requests: Vec::new(),
            latest_ns: 0,
            next_idle_sweep_ns: 0,
            forgotten: Vec::new(),
            limits: LimitCounters::default(),
        }
    }
}

impl<C> Tracker<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of connections currently tracked.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Feeds one event; finished exchanges are appended to `out`.
    pub fn handle(&mut self, event: &Event, out: &mut Vec<Exchange<C>>) {
        self.route(event, out);
        out.append(&mut self.forgotten);
    }

    fn route(&mut self, event: &Event, out: &mut Vec<Exchange<C>>) {
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

    /// What the next request written on `conn` carries into its exchange
    /// (the agent: the Python stack of the thread about to write it).
    pub fn offer_context(&mut self, conn: ConnKey, context: C) {
        self.tracked(conn).http.offer_context(context);
    }

    /// Whether the traced process accepted `conn` (it serves requests there).
    pub fn is_server(&self, conn: ConnKey) -> bool {
        self.connections.get(&conn).is_some_and(|t| t.role() == Role::Server)
    }

    /// Requests begun on served connections since the last call, in order.
    pub fn take_server_requests(&mut self) -> Vec<ServerRequest> {
        std::mem::take(&mut self.server_requests)
    }

    /// The connection's state, made on its first event (forgetting the
    /// least recently active connections first when too many are tracked).
    fn tracked(&mut self, conn: ConnKey) -> &mut Tracked<C> {
        self.make_room_for(conn);
        let now_ns = self.latest_ns;
        let tracked = self.connections.entry(conn).or_insert_with(|| Tracked::new(conn, now_ns));
        tracked.last_active_ns = now_ns;
        tracked
    }

    fn make_room_for(&mut self, conn: ConnKey) {
        if self.connections.len() >= MAX_CONNECTIONS && !self.connections.contains_key(&conn) {
            self.forget_least_active();
        }
    }

    /// Forgets the least recently active eighth of the connections, so the
    /// cost is paid once per many new connections; what they still waited
    /// for is reported incomplete with the next exchanges.
    fn forget_least_active(&mut self) {
        let mut times: Vec<u64> = self.connections.values().map(|t| t.last_active_ns).collect();
        let cut = times.len() / 8;
        let (_, &mut threshold, _) = times.select_nth_unstable(cut);
        let quiet: Vec<ConnKey> =
            self.connections.iter().filter(|(_, t)| t.last_active_ns <= threshold).map(|(conn, _)| *conn).collect();
        for conn in quiet {
            if let Some(tracked) = self.connections.remove(&conn) {
                self.limits.connections_full_evicted += 1;
                tracked.forget(&mut self.forgotten);
            }
        }
    }

    /// Forgets connections without traffic for [`IDLE_TIMEOUT_NS`] (checked
    /// every [`IDLE_SWEEP_NS`]); what they still waited for is reported
    /// incomplete.
    pub fn forget_idle(&mut self, now_ns: u64, out: &mut Vec<Exchange<C>>) {
        if now_ns < self.next_idle_sweep_ns {
            return;
        }
        self.next_idle_sweep_ns = now_ns + IDLE_SWEEP_NS;
        // Events without a timestamp (socket facts) take the latest time
        // known: keep it current, and date connections made before any.
        self.latest_ns = self.latest_ns.max(now_ns);
        for tracked in self.connections.values_mut().filter(|t| t.last_active_ns == 0) {
            tracked.last_active_ns = now_ns;
        }
        let oldest_kept = now_ns.saturating_sub(IDLE_TIMEOUT_NS);
        let idle: Vec<ConnKey> =
            self.connections.iter().filter(|(_, t)| t.last_active_ns < oldest_kept).map(|(conn, _)| *conn).collect();
        for conn in idle {
            if let Some(tracked) = self.connections.remove(&conn) {
                self.limits.connections_idle_evicted += 1;
                tracked.forget(out);
            }
        }
    }

    fn data(&mut self, chunk: &DataChunk, out: &mut Vec<Exchange<C>>) {
        self.latest_ns = self.latest_ns.max(chunk.call_end_ns);
        self.make_room_for(chunk.conn);
        let now_ns = self.latest_ns;
        let tracked = self.connections.entry(chunk.conn).or_insert_with(|| Tracked::new(chunk.conn, now_ns));
        tracked.last_active_ns = now_ns;
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
    pub fn process_exited(&mut self, pid: u32, out: &mut Vec<Exchange<C>>) {
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
    pub fn finish(&mut self, out: &mut Vec<Exchange<C>>) {
        for (_, mut tracked) in self.connections.drain() {
            let first_new = out.len();
            tracked.http.flush(Incomplete::TracingEnded, out);
            stamp(&tracked.facts, &mut out[first_new..]);
        }
    }
}

fn stamp<C>(facts: &ConnectionFacts, exchanges: &mut [Exchange<C>]) {
    for exchange in exchanges {
        exchange.connection = facts.clone();
    }
}

fn gap<C>(http: &mut HttpConnection<C>, is_request: bool, missing: u64, out: &mut Vec<Exchange<C>>) {
    if is_request {
        http.on_request_gap(missing);
    } else {
        http.on_response_gap(missing, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::events::Transport;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn request(conn_id: u64, at_ns: u64) -> Event {
        let data = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        Event::Data(DataChunk {
            conn: ConnKey { pid: 7, conn_id },
            transport: Transport::Tls,
            tid: 7,
            direction: Direction::Egress,
            call_start_ns: at_ns,
            call_end_ns: at_ns,
            call_len: data.len() as u64,
            chunk_offset: 0,
            data: bytes::Bytes::from_static(data),
            last: true,
            truncated: false,
        })
    }

    #[test]
    fn a_connection_without_traffic_is_forgotten_and_its_request_reported() {
        let mut tracker = Tracker::<()>::new();
        let mut out = Vec::new();
        tracker.handle(&request(1, SECOND), &mut out);
        tracker.handle(&request(2, IDLE_TIMEOUT_NS), &mut out);
        assert!(out.is_empty());
        tracker.forget_idle(IDLE_TIMEOUT_NS + 2 * SECOND, &mut out);
        assert_eq!(tracker.connection_count(), 1, "the recently active connection stays");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn.conn_id, 1);
        assert_eq!(out[0].incomplete, Some(Incomplete::Forgotten));
        assert_eq!(tracker.limits.connections_idle_evicted, 1);
    }

    #[test]
    fn a_connection_known_before_any_traffic_is_not_taken_for_idle() {
        let mut tracker = Tracker::<()>::new();
        let mut out = Vec::new();
        let conn = ConnKey { pid: 7, conn_id: 9 };
        tracker.handle(&Event::ServerName { conn, name: "example.com".into() }, &mut out);
        tracker.forget_idle(IDLE_TIMEOUT_NS * 4, &mut out);
        tracker.forget_idle(IDLE_TIMEOUT_NS * 4 + IDLE_SWEEP_NS, &mut out);
        assert_eq!(tracker.connection_count(), 1);
        assert_eq!(tracker.limits.connections_idle_evicted, 0);
    }

    #[test]
    fn too_many_connections_forget_the_least_recently_active() {
        let mut tracker = Tracker::<()>::new();
        let mut out = Vec::new();
        for conn_id in 0..MAX_CONNECTIONS as u64 {
            tracker.handle(&request(conn_id, SECOND + conn_id), &mut out);
        }
        assert_eq!(tracker.connection_count(), MAX_CONNECTIONS);
        tracker.handle(&request(u64::MAX, 2 * SECOND), &mut out);
        let forgotten = MAX_CONNECTIONS / 8 + 1;
        assert_eq!(tracker.limits.connections_full_evicted, forgotten as u64);
        assert_eq!(tracker.connection_count(), MAX_CONNECTIONS - forgotten + 1);
        assert_eq!(out.len(), forgotten, "their waiting requests are reported");
        assert!(out.iter().all(|e| e.conn.conn_id < forgotten as u64 && e.incomplete == Some(Incomplete::Forgotten)));
    }
}
