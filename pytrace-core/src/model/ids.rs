//! Trace and span identifiers (W3C trace context: 16 and 8 bytes, never all
//! zero) and the pair a child refers to its parent by.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

/// A span's identity as its children refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// Where new identifiers come from, injected so that the engine makes none
/// of its own: the agent draws them from the kernel's random generator, a
/// test or a deterministic replay from a sequence of its choosing.
pub trait IdSource {
    /// Fills `bytes` with fresh bytes.
    fn fill(&mut self, bytes: &mut [u8]);
}

/// Identifiers from a counter: the same sequence every run (tests, and a
/// replay that must give the same output byte for byte).
#[derive(Clone, Debug, Default)]
pub struct SequentialIds {
    drawn: u64,
}

impl IdSource for SequentialIds {
    fn fill(&mut self, bytes: &mut [u8]) {
        self.drawn += 1;
        let counter = self.drawn.to_be_bytes();
        bytes.fill(0);
        let kept = bytes.len().min(counter.len());
        let tail = bytes.len() - kept;
        bytes[tail..].copy_from_slice(&counter[counter.len() - kept..]);
    }
}

/// Identifiers unique within the test process, from any number of places
/// at once (feature `testing`).
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct TestIds;

#[cfg(any(test, feature = "testing"))]
impl IdSource for TestIds {
    fn fill(&mut self, bytes: &mut [u8]) {
        static DRAWN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        SequentialIds { drawn: DRAWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) }.fill(bytes);
    }
}

impl TraceId {
    pub fn new(source: &mut (impl IdSource + ?Sized)) -> Self {
        Self(fresh(source))
    }
}
impl SpanId {
    pub fn new(source: &mut (impl IdSource + ?Sized)) -> Self {
        Self(fresh(source))
    }
}

/// Bytes from `source`, never all zero (invalid in W3C trace context): one
/// more draw, then a set low bit, should it give zeros.
fn fresh<const N: usize>(source: &mut (impl IdSource + ?Sized)) -> [u8; N] {
    let mut id = [0; N];
    for _ in 0..2 {
        source.fill(&mut id);
        if id.iter().any(|b| *b != 0) {
            return id;
        }
    }
    id[N - 1] = 1;
    id
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}
impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Zeros;
    impl IdSource for Zeros {
        fn fill(&mut self, bytes: &mut [u8]) {
            bytes.fill(0);
        }
    }

    struct Counter(u8);
    impl IdSource for Counter {
        fn fill(&mut self, bytes: &mut [u8]) {
            self.0 += 1;
            bytes.fill(self.0);
        }
    }

    #[test]
    fn ids_are_never_all_zero() {
        assert_eq!(SpanId::new(&mut Zeros).to_string(), "0000000000000001");
        assert_ne!(TraceId::new(&mut Zeros).0, [0; 16]);
    }

    #[test]
    fn sequential_ids_count() {
        let mut ids = SequentialIds::default();
        assert_eq!(TraceId::new(&mut ids).to_string(), "00000000000000000000000000000001");
        assert_eq!(SpanId::new(&mut ids).to_string(), "0000000000000002");
    }

    #[test]
    fn ids_come_from_the_source_given() {
        let mut counter = Counter(0);
        assert_eq!(TraceId::new(&mut counter).to_string(), "01".repeat(16));
        assert_eq!(SpanId::new(&mut counter).to_string(), "02".repeat(8));
    }
}
