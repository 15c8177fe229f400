//! W3C Trace Context: when a captured request carries a `traceparent` header
//! (the application has its own tracing), its span joins that trace — same
//! trace id, with the header's span as parent.

use super::{SpanId, TraceId};

/// Parses `version-traceid-parentid-flags` (version 00, and future versions
/// read the same way as the spec asks); all-zero ids are invalid.
pub fn parse(header: &str) -> Option<(TraceId, SpanId)> {
    let mut fields = header.trim().split('-');
    let version = fields.next()?;
    let trace = fields.next()?;
    let parent = fields.next()?;
    let flags = fields.next()?;
    if version.len() != 2 || version == "ff" || flags.len() != 2 || (version == "00" && fields.next().is_some()) {
        return None;
    }
    let trace_id = TraceId(hex::<16>(trace)?);
    let span_id = SpanId(hex::<8>(parent)?);
    let valid = trace_id.0.iter().any(|b| *b != 0) && span_id.0.iter().any(|b| *b != 0);
    valid.then_some((trace_id, span_id))
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_headers_only() {
        let (trace, parent) = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.to_string(), "00f067aa0ba902b7");
        assert!(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_none());
        assert!(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none(), "upper case is invalid");
        assert!(parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_none());
        assert!(
            parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some(),
            "future versions may add fields"
        );
        assert!(parse("garbage").is_none());
    }
}
