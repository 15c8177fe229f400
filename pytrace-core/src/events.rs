//! Decoding of ring-buffer records into [`Event`]s.
//!
//! Records are untrusted bytes: every field is read with an explicit length
//! check and `read_unaligned`, and the kind and direction go through
//! `TryFrom`, so a short, corrupt or future-format record yields a
//! [`DecodeError`], never undefined behaviour or a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use tracer_common::{
    AF_INET, AF_INET6, Direction, EVENT_HEADER_LEN, EventHeader, EventKind, FLAG_LAST_CHUNK, FLAG_TRUNCATED,
    FUNCTION_FIRST_SEEN, FUNCTION_RAISED, FUNCTION_SUSPENDED, FUNCTION_UNWOUND, KnownStackKey, PY_FRAME_LEN,
    ROLE_SERVER, SOCKET_ADDRS_LEN, STACK_KNOWN, SocketAddrs, THREAD_NAME_LEN, stack_hash,
};

/// Identifies one connection within a process: an `SSL*` for TLS, a socket
/// id (bit 63 set) for plaintext TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    pub pid: u32,
    pub conn_id: u64,
}

/// How a connection's bytes were captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plaintext of a TLS connection, from the SSL probes.
    Tls,
    /// A plaintext TCP socket, from the syscall tracepoints.
    Plain,
}

/// Which end of the connection the traced process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// A TCP connection's endpoints, as far as they are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub role: Role,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

impl Endpoints {
    /// Converts the kernel's [`SocketAddrs`]; zero addresses or ports are unknown.
    pub fn from_raw(raw: &SocketAddrs) -> Self {
        let ip = |bytes: &[u8; 16]| match raw.family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
            AF_INET6 => {
                let v6 = Ipv6Addr::from(*bytes);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        };
        let address = |bytes: &[u8; 16], port: u16| {
            ip(bytes).filter(|ip| !ip.is_unspecified() && port != 0).map(|ip| SocketAddr::new(ip, port))
        };
        Self {
            role: if raw.role == ROLE_SERVER { Role::Server } else { Role::Client },
            peer: address(&raw.peer_addr, raw.peer_port),
            local: address(&raw.local_addr, raw.local_port),
        }
    }
}

/// One chunk of bytes moved by one SSL call or socket syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataChunk {
    pub conn: ConnKey,
    pub transport: Transport,
    pub tid: u32,
    pub direction: Direction,
    /// `CLOCK_MONOTONIC` ns at call entry and return.
    pub call_start_ns: u64,
    pub call_end_ns: u64,
    /// Bytes the whole call moved.
    pub call_len: u64,
    /// Where this chunk starts within the call's buffer.
    pub chunk_offset: u64,
    pub data: Bytes,
    /// Last chunk of the call: bytes in `chunk_offset + data.len() .. call_len`
    /// were not captured (capture limit) and are a gap in the stream.
    pub last: bool,
    pub truncated: bool,
}

impl DataChunk {
    /// Bytes of the call that follow this chunk but were never captured.
    pub fn uncaptured_after(&self) -> u64 {
        if self.last { self.call_len.saturating_sub(self.chunk_offset + self.data.len() as u64) } else { 0 }
    }
}

/// A decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Data(DataChunk),
    /// The connection ended (`SSL_free`, or `close` of a plaintext socket).
    Closed {
        conn: ConnKey,
        at_ns: u64,
    },
    /// A plaintext socket's endpoints became known.
    SocketInfo {
        conn: ConnKey,
        endpoints: Endpoints,
    },
    /// The TLS connection `conn` runs over a socket with these endpoints.
    TlsSocket {
        conn: ConnKey,
        endpoints: Endpoints,
    },
    /// The client asked for this SNI host name on TLS connection `conn`.
    ServerName {
        conn: ConnKey,
        name: String,
    },
    /// The Python stack of the thread that is starting a request on `conn`.
    PyStack {
        conn: ConnKey,
        stack: std::sync::Arc<RawStack>,
    },
    /// A call of a Python function started (`--trace-function`); the stack's
    /// first frame is the function's.
    FunctionStart {
        pid: u32,
        at_ns: u64,
        stack: RawStack,
        /// The first call of this code object seen: is it a traced function?
        first_seen: bool,
    },
    /// The call whose frame is at `frame` ended, or was suspended.
    FunctionEnd(FunctionEnd),
    /// `pytrace run`: `parent` forked `child` (a process, or a thread).
    ProcessForked {
        parent: u32,
        child: u32,
    },
    /// `pytrace run`: `pid` executed a new program.
    ProcessExec {
        pid: u32,
    },
    /// `pid` mapped a file executable (loaded a library).
    ProcessMapped {
        pid: u32,
    },
}

/// A Python stack as captured, innermost first, and the thread it was taken on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawStack {
    pub tid: u32,
    /// The thread's OS name when the stack was taken, NUL-padded.
    pub thread_name: [u8; THREAD_NAME_LEN],
    pub frames: Vec<RawFrame>,
    /// The kernel found a stack with these code objects already resolved
    /// (`KNOWN_STACKS`), so it did not hurry this one.
    pub known: bool,
}

impl RawStack {
    /// The `KNOWN_STACKS` key of this stack in process `pid`.
    pub fn known_key(&self, pid: u32) -> KnownStackKey {
        KnownStackKey { pid: u64::from(pid), hash: stack_hash(self.frames.iter().map(|f| f.code)) }
    }
}

/// One captured frame: its code object, position (`f_lasti` or instruction
/// pointer) and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame {
    pub code: u64,
    pub position: u64,
    pub frame: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionEnd {
    pub pid: u32,
    pub tid: u32,
    pub frame: u64,
    pub code: u64,
    pub end_ns: u64,
    /// A generator yielded: the call goes on when it resumes.
    pub suspended: bool,
    /// The call ended unseen (it raised); `end_ns` is when that was noticed.
    pub unwound: bool,
    /// The call raised an exception (known on 3.8–3.10).
    pub raised: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than the {EVENT_HEADER_LEN}-byte header")]
    ShortHeader { len: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("unknown direction {0}")]
    UnknownDirection(u32),
    #[error("record announces {announced} payload bytes but carries {carried}")]
    PayloadLength { announced: u32, carried: usize },
    #[error("{kind:?} record carries {carried} bytes, not {expected}")]
    PayloadSize { kind: EventKind, expected: usize, carried: usize },
}

/// The `call_len` frames following a stack event's header.
fn read_stack(header: &EventHeader, payload: &[u8]) -> RawStack {
    let mut thread_name = [0; THREAD_NAME_LEN];
    let name_len = THREAD_NAME_LEN.min(payload.len());
    thread_name[..name_len].copy_from_slice(&payload[..name_len]);
    let payload = &payload[name_len..];
    let count = (header.call_len as usize).min(payload.len() / PY_FRAME_LEN);
    let frames = payload[..count * PY_FRAME_LEN]
        .chunks_exact(PY_FRAME_LEN)
        .map(|f| {
            let word = |i: usize| u64::from_le_bytes(f[i..i + 8].try_into().unwrap_or_default());
            RawFrame { code: word(0), position: word(8), frame: word(16) }
        })
        .collect();
    RawStack { tid: header.tid, thread_name, frames, known: header.flags & STACK_KNOWN != 0 }
}

/// Decodes one ring-buffer record.
pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    let header = read_header(record)?;
    let kind = EventKind::try_from(header.kind).map_err(DecodeError::UnknownKind)?;
    let conn = ConnKey { pid: header.pid, conn_id: header.conn_id };
    let payload = &record[EVENT_HEADER_LEN..];
    match kind {
        EventKind::TlsClosed | EventKind::PlainClosed => Ok(Event::Closed { conn, at_ns: header.call_end_ns }),
        EventKind::TlsData | EventKind::PlainData => {
            let direction = Direction::try_from(header.direction).map_err(DecodeError::UnknownDirection)?;
            let announced = header.chunk_len;
            if payload.len() < announced as usize {
                return Err(DecodeError::PayloadLength { announced, carried: payload.len() });
            }
            Ok(Event::Data(DataChunk {
                conn,
                transport: if kind == EventKind::TlsData { Transport::Tls } else { Transport::Plain },
                tid: header.tid,
                direction,
                call_start_ns: header.call_start_ns,
                call_end_ns: header.call_end_ns,
                call_len: header.call_len,
                chunk_offset: u64::from(header.chunk_offset),
                data: Bytes::copy_from_slice(&payload[..announced as usize]),
                last: header.flags & FLAG_LAST_CHUNK != 0,
                truncated: header.flags & FLAG_TRUNCATED != 0,
            }))
        }
        EventKind::SocketInfo | EventKind::TlsSocket => {
            if payload.len() < SOCKET_ADDRS_LEN {
                return Err(DecodeError::PayloadSize { kind, expected: SOCKET_ADDRS_LEN, carried: payload.len() });
            }
            // SAFETY: length checked above; SocketAddrs is #[repr(C)] plain
            // integers and byte arrays, valid for any bit pattern.
            let raw = unsafe { std::ptr::read_unaligned(payload.as_ptr().cast::<SocketAddrs>()) };
            let endpoints = Endpoints::from_raw(&raw);
            Ok(if kind == EventKind::SocketInfo {
                Event::SocketInfo { conn, endpoints }
            } else {
                Event::TlsSocket { conn, endpoints }
            })
        }
        EventKind::PyStack => Ok(Event::PyStack { conn, stack: std::sync::Arc::new(read_stack(&header, payload)) }),
        EventKind::FunctionStart => Ok(Event::FunctionStart {
            pid: header.pid,
            at_ns: header.call_start_ns,
            stack: read_stack(&header, payload),
            first_seen: header.flags & FUNCTION_FIRST_SEEN != 0,
        }),
        EventKind::ProcessForked => Ok(Event::ProcessForked { parent: header.pid, child: header.conn_id as u32 }),
        EventKind::ProcessExec => Ok(Event::ProcessExec { pid: header.pid }),
        EventKind::ProcessMapped => Ok(Event::ProcessMapped { pid: header.pid }),
        EventKind::FunctionEnd => Ok(Event::FunctionEnd(FunctionEnd {
            pid: header.pid,
            tid: header.tid,
            frame: header.conn_id,
            code: header.call_len,
            end_ns: header.call_end_ns,
            suspended: header.flags & FUNCTION_SUSPENDED != 0,
            unwound: header.flags & FUNCTION_UNWOUND != 0,
            raised: header.flags & FUNCTION_RAISED != 0,
        })),
        EventKind::TlsServerName => {
            let len = (header.chunk_len as usize).min(payload.len());
            let name = payload[..len].split(|b| *b == 0).next().unwrap_or_default();
            Ok(Event::ServerName { conn, name: String::from_utf8_lossy(name).into_owned() })
        }
    }
}

/// Which connection a record concerns (whatever its kind), read from its header.
pub fn conn_of(record: &[u8]) -> Option<ConnKey> {
    let header = read_header(record).ok()?;
    Some(ConnKey { pid: header.pid, conn_id: header.conn_id })
}

/// The record with its connection id replaced; for replay benchmarks.
pub fn with_conn_id(record: &[u8], conn_id: u64) -> Vec<u8> {
    let mut copy = record.to_vec();
    let at = std::mem::offset_of!(EventHeader, conn_id);
    if let Some(field) = copy.get_mut(at..at + 8) {
        field.copy_from_slice(&conn_id.to_le_bytes());
    }
    copy
}

/// Whether the record carries data read from a connection.
pub fn is_ingress_data(record: &[u8]) -> bool {
    is_data(record, Direction::Ingress)
}

/// Whether the record carries data written to a connection.
pub fn is_egress_data(record: &[u8]) -> bool {
    is_data(record, Direction::Egress)
}

fn is_data(record: &[u8], direction: Direction) -> bool {
    read_header(record).is_ok_and(|header| {
        matches!(EventKind::try_from(header.kind), Ok(EventKind::TlsData | EventKind::PlainData))
            && header.direction == direction as u32
    })
}

fn read_header(record: &[u8]) -> Result<EventHeader, DecodeError> {
    if record.len() < EVENT_HEADER_LEN {
        return Err(DecodeError::ShortHeader { len: record.len() });
    }
    // SAFETY: the length was checked above; EventHeader is #[repr(C)] plain
    // integers, valid for any bit pattern, and read_unaligned needs no alignment.
    Ok(unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<EventHeader>()) })
}

/// Encodes an event the way the kernel does; for replay tests and benchmarks.
pub fn encode(chunk: &DataChunk) -> Vec<u8> {
    let kind = match chunk.transport {
        Transport::Tls => EventKind::TlsData,
        Transport::Plain => EventKind::PlainData,
    };
    let header = EventHeader {
        kind: kind as u32,
        pid: chunk.conn.pid,
        tid: chunk.tid,
        direction: chunk.direction as u32,
        conn_id: chunk.conn.conn_id,
        call_start_ns: chunk.call_start_ns,
        call_end_ns: chunk.call_end_ns,
        call_len: chunk.call_len,
        chunk_offset: chunk.chunk_offset as u32,
        chunk_len: chunk.data.len() as u32,
        flags: (u32::from(chunk.last) * FLAG_LAST_CHUNK) | (u32::from(chunk.truncated) * FLAG_TRUNCATED),
        _pad: 0,
    };
    let mut out = Vec::with_capacity(EVENT_HEADER_LEN + chunk.data.len());
    // SAFETY: EventHeader is #[repr(C)] plain integers with explicit padding;
    // viewing it as bytes reads initialised memory only.
    out.extend_from_slice(unsafe {
        std::slice::from_raw_parts((&header as *const EventHeader).cast::<u8>(), EVENT_HEADER_LEN)
    });
    out.extend_from_slice(&chunk.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataChunk {
        DataChunk {
            conn: ConnKey { pid: 42, conn_id: 0xdead_beef },
            transport: Transport::Tls,
            tid: 43,
            direction: Direction::Ingress,
            call_start_ns: 10,
            call_end_ns: 20,
            call_len: 5,
            chunk_offset: 0,
            data: Bytes::from_static(b"hello"),
            last: true,
            truncated: false,
        }
    }

    #[test]
    fn round_trips_a_data_event() {
        let chunk = sample();
        assert_eq!(decode(&encode(&chunk)), Ok(Event::Data(chunk)));
    }

    #[test]
    fn rejects_short_and_inconsistent_records() {
        let bytes = encode(&sample());
        assert_eq!(decode(&bytes[..10]), Err(DecodeError::ShortHeader { len: 10 }));
        assert_eq!(
            decode(&bytes[..EVENT_HEADER_LEN + 2]),
            Err(DecodeError::PayloadLength { announced: 5, carried: 2 })
        );
        let mut bad_kind = bytes.clone();
        bad_kind[0] = 99;
        assert_eq!(decode(&bad_kind), Err(DecodeError::UnknownKind(99)));
        let mut bad_dir = bytes;
        bad_dir[12] = 7;
        assert_eq!(decode(&bad_dir), Err(DecodeError::UnknownDirection(7)));
    }

    #[test]
    fn round_trips_a_plaintext_data_event() {
        let chunk = DataChunk { transport: Transport::Plain, ..sample() };
        assert_eq!(decode(&encode(&chunk)), Ok(Event::Data(chunk)));
    }

    fn socket_record(kind: EventKind, raw: SocketAddrs) -> Vec<u8> {
        let header = EventHeader { kind: kind as u32, pid: 7, conn_id: 9, ..EventHeader::default() };
        let mut bytes = encode(&DataChunk { data: Bytes::new(), ..sample() });
        // SAFETY: plain #[repr(C)] values viewed as bytes.
        unsafe {
            bytes[..EVENT_HEADER_LEN].copy_from_slice(std::slice::from_raw_parts(
                (&header as *const EventHeader).cast::<u8>(),
                EVENT_HEADER_LEN,
            ));
            bytes.extend_from_slice(std::slice::from_raw_parts(
                (&raw as *const SocketAddrs).cast::<u8>(),
                SOCKET_ADDRS_LEN,
            ));
        }
        bytes
    }

    #[test]
    fn decodes_socket_endpoints_for_both_families() {
        let mut v4 = SocketAddrs { family: AF_INET, peer_port: 11434, ..SocketAddrs::default() };
        v4.peer_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let Ok(Event::SocketInfo { conn, endpoints }) = decode(&socket_record(EventKind::SocketInfo, v4)) else {
            panic!()
        };
        assert_eq!(conn, ConnKey { pid: 7, conn_id: 9 });
        assert_eq!(endpoints.peer, Some("127.0.0.1:11434".parse().unwrap()));
        assert_eq!((endpoints.local, endpoints.role), (None, Role::Client));

        let v6 = SocketAddrs {
            family: AF_INET6,
            peer_port: 443,
            peer_addr: Ipv6Addr::LOCALHOST.octets(),
            role: ROLE_SERVER,
            ..SocketAddrs::default()
        };
        let Ok(Event::TlsSocket { endpoints, .. }) = decode(&socket_record(EventKind::TlsSocket, v6)) else { panic!() };
        assert_eq!((endpoints.peer, endpoints.role), (Some("[::1]:443".parse().unwrap()), Role::Server));

        let mapped = SocketAddrs {
            family: AF_INET6,
            peer_port: 80,
            peer_addr: Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets(),
            ..SocketAddrs::default()
        };
        let Ok(Event::SocketInfo { endpoints, .. }) = decode(&socket_record(EventKind::SocketInfo, mapped)) else {
            panic!()
        };
        assert_eq!(endpoints.peer, Some("10.0.0.1:80".parse().unwrap()));

        let short = &socket_record(EventKind::SocketInfo, v4)[..EVENT_HEADER_LEN + 3];
        assert!(matches!(decode(short), Err(DecodeError::PayloadSize { .. })));
    }

    #[test]
    fn counts_uncaptured_bytes_of_a_truncated_call() {
        let chunk = DataChunk { call_len: 100, truncated: true, ..sample() };
        assert_eq!(chunk.uncaptured_after(), 95);
    }
}
