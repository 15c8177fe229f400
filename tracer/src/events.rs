//! Decoding of ring-buffer records into [`Event`]s.
//!
//! Records are untrusted bytes: every field is read with an explicit length
//! check and `read_unaligned`, and the kind and direction go through
//! `TryFrom`, so a short, corrupt or future-format record yields a
//! [`DecodeError`], never undefined behaviour or a panic.

use bytes::Bytes;
use tracer_common::{
    Direction, EVENT_HEADER_LEN, EventHeader, EventKind, FLAG_LAST_CHUNK, FLAG_TRUNCATED,
};

/// Identifies one TLS connection: the `SSL*` within one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    pub pid: u32,
    pub conn_id: u64,
}

/// One chunk of plaintext moved by one SSL call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataChunk {
    pub conn: ConnKey,
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
        if self.last {
            self.call_len
                .saturating_sub(self.chunk_offset + self.data.len() as u64)
        } else {
            0
        }
    }
}

/// A decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Data(DataChunk),
    Closed { conn: ConnKey, at_ns: u64 },
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
}

/// Decodes one ring-buffer record.
pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    let header = read_header(record)?;
    let kind = EventKind::try_from(header.kind).map_err(DecodeError::UnknownKind)?;
    let conn = ConnKey {
        pid: header.pid,
        conn_id: header.conn_id,
    };
    match kind {
        EventKind::TlsClosed => Ok(Event::Closed {
            conn,
            at_ns: header.call_end_ns,
        }),
        EventKind::TlsData => {
            let direction =
                Direction::try_from(header.direction).map_err(DecodeError::UnknownDirection)?;
            let payload = &record[EVENT_HEADER_LEN..];
            let announced = header.chunk_len;
            if payload.len() < announced as usize {
                return Err(DecodeError::PayloadLength {
                    announced,
                    carried: payload.len(),
                });
            }
            Ok(Event::Data(DataChunk {
                conn,
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
    }
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
    let header = EventHeader {
        kind: EventKind::TlsData as u32,
        pid: chunk.conn.pid,
        tid: chunk.tid,
        direction: chunk.direction as u32,
        conn_id: chunk.conn.conn_id,
        call_start_ns: chunk.call_start_ns,
        call_end_ns: chunk.call_end_ns,
        call_len: chunk.call_len,
        chunk_offset: chunk.chunk_offset as u32,
        chunk_len: chunk.data.len() as u32,
        flags: (u32::from(chunk.last) * FLAG_LAST_CHUNK)
            | (u32::from(chunk.truncated) * FLAG_TRUNCATED),
        _pad: 0,
    };
    let mut out = Vec::with_capacity(EVENT_HEADER_LEN + chunk.data.len());
    // SAFETY: EventHeader is #[repr(C)] plain integers with explicit padding;
    // viewing it as bytes reads initialised memory only.
    out.extend_from_slice(unsafe {
        std::slice::from_raw_parts(
            (&header as *const EventHeader).cast::<u8>(),
            EVENT_HEADER_LEN,
        )
    });
    out.extend_from_slice(&chunk.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataChunk {
        DataChunk {
            conn: ConnKey {
                pid: 42,
                conn_id: 0xdead_beef,
            },
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
        assert_eq!(
            decode(&bytes[..10]),
            Err(DecodeError::ShortHeader { len: 10 })
        );
        assert_eq!(
            decode(&bytes[..EVENT_HEADER_LEN + 2]),
            Err(DecodeError::PayloadLength {
                announced: 5,
                carried: 2
            })
        );
        let mut bad_kind = bytes.clone();
        bad_kind[0] = 99;
        assert_eq!(decode(&bad_kind), Err(DecodeError::UnknownKind(99)));
        let mut bad_dir = bytes;
        bad_dir[12] = 7;
        assert_eq!(decode(&bad_dir), Err(DecodeError::UnknownDirection(7)));
    }

    #[test]
    fn counts_uncaptured_bytes_of_a_truncated_call() {
        let chunk = DataChunk {
            call_len: 100,
            truncated: true,
            ..sample()
        };
        assert_eq!(chunk.uncaptured_after(), 95);
    }
}
