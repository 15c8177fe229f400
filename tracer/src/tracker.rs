//! Routes decoded events to one [`HttpConnection`] per connection and
//! collects the finished [`Exchange`]s.
//!
//! Connections are keyed by (pid, `SSL*`), never by thread: asyncio runs many
//! connections on one thread. The tracker also notices chunks lost inside a
//! call (offsets that skip ahead) and turns them, like capture-limit
//! truncation, into gaps the HTTP layer can account for.

use std::collections::HashMap;

use tracer_common::Direction;

use crate::events::{ConnKey, DataChunk, Event};
use crate::http::{Exchange, HttpConnection, Incomplete, Segment};

/// Where the next chunk of a call is expected, per connection and direction.
#[derive(Clone, Copy, Default)]
struct Cursor {
    call_start_ns: u64,
    next_offset: u64,
}

struct Tracked {
    http: HttpConnection,
    cursors: [Cursor; 2],
}

#[derive(Default)]
pub struct Tracker {
    connections: HashMap<ConnKey, Tracked>,
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
        match event {
            Event::Data(chunk) => self.data(chunk, out),
            Event::Closed { conn, .. } => {
                if let Some(mut tracked) = self.connections.remove(conn) {
                    tracked.http.on_close(out);
                }
            }
        }
    }

    fn data(&mut self, chunk: &DataChunk, out: &mut Vec<Exchange>) {
        let tracked = self
            .connections
            .entry(chunk.conn)
            .or_insert_with(|| Tracked {
                http: HttpConnection::new(chunk.conn),
                cursors: Default::default(),
            });
        let cursor = &mut tracked.cursors[chunk.direction as usize];
        let lost_before = if chunk.chunk_offset == 0 {
            0
        } else if cursor.call_start_ns == chunk.call_start_ns {
            chunk.chunk_offset.saturating_sub(cursor.next_offset)
        } else {
            // The call's first chunks were lost: resynchronise at a later call.
            u64::MAX
        };
        *cursor = Cursor {
            call_start_ns: chunk.call_start_ns,
            next_offset: chunk.chunk_offset + chunk.data.len() as u64,
        };
        let http = &mut tracked.http;
        if lost_before > 0 {
            gap(http, chunk.direction, lost_before, out);
        }
        let segment = Segment {
            data: &chunk.data,
            starts_call: chunk.chunk_offset == 0,
            call_start_ns: chunk.call_start_ns,
            call_end_ns: chunk.call_end_ns,
            tid: chunk.tid,
        };
        match chunk.direction {
            Direction::Egress => http.on_request_bytes(segment, out),
            Direction::Ingress => http.on_response_bytes(segment, out),
        }
        let missing = chunk.uncaptured_after();
        if missing > 0 {
            gap(http, chunk.direction, missing, out);
        }
    }

    /// The process exited: every connection of it ends.
    pub fn process_exited(&mut self, pid: u32, out: &mut Vec<Exchange>) {
        self.connections.retain(|conn, tracked| {
            if conn.pid != pid {
                return true;
            }
            tracked.http.flush(Incomplete::ProcessExited, out);
            false
        });
    }

    /// Tracing stops: report everything still in flight.
    pub fn finish(&mut self, out: &mut Vec<Exchange>) {
        for (_, mut tracked) in self.connections.drain() {
            tracked.http.flush(Incomplete::TracingEnded, out);
        }
    }
}

fn gap(http: &mut HttpConnection, direction: Direction, missing: u64, out: &mut Vec<Exchange>) {
    match direction {
        Direction::Egress => http.on_request_gap(missing),
        Direction::Ingress => http.on_response_gap(missing, out),
    }
}
