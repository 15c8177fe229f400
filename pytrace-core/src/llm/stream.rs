//! Streamed LLM response bodies: server-sent events and NDJSON, parsed from
//! the de-chunked body with each event's end offset, so the time it arrived
//! can be looked up in the body's arrival record.
//!
//! SSE follows the WHATWG rules that matter here: `event:` and `data:` fields,
//! multi-line data joined by newlines, comments (`:`) and unknown fields
//! ignored, CRLF, CR or LF line ends, an event dispatched at a blank line. A
//! trailing event without its blank line (a stream cut short) is still
//! returned.

use crate::http::body::Arrival;

/// One server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if any.
    pub name: Option<String>,
    pub data: String,
    /// Offset just past the event's last byte in the body.
    pub end: u64,
}

/// Splits a body into server-sent events.
pub fn parse_sse(body: &[u8]) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let (mut name, mut data, mut has_data) = (None::<String>, String::new(), false);
    let mut position = 0;
    while position < body.len() {
        let rest = &body[position..];
        let (line_len, terminator) = match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => (i, 2),
            Some(i) => (i, 1),
            None => (rest.len(), 0),
        };
        let line = String::from_utf8_lossy(&rest[..line_len]);
        position += line_len + terminator;
        if line.is_empty() {
            if has_data || name.is_some() {
                events.push(SseEvent { name: name.take(), data: std::mem::take(&mut data), end: position as u64 });
            }
            has_data = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => name = Some(value.to_owned()),
            "data" => {
                if has_data {
                    data.push('\n');
                }
                data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    if has_data {
        events.push(SseEvent { name, data, end: position as u64 });
    }
    events
}

/// One NDJSON line with its end offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonLine {
    pub text: String,
    pub end: u64,
}

/// Splits a body into non-empty lines (NDJSON; also Gemini's streamed array).
pub fn parse_lines(body: &[u8]) -> Vec<JsonLine> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, byte) in body.iter().enumerate() {
        if *byte == b'\n' {
            push_line(&mut lines, &body[start..i], i as u64 + 1);
            start = i + 1;
        }
    }
    push_line(&mut lines, &body[start..], body.len() as u64);
    lines
}

fn push_line(lines: &mut Vec<JsonLine>, bytes: &[u8], end: u64) {
    let text = String::from_utf8_lossy(bytes).trim().to_owned();
    if !text.is_empty() {
        lines.push(JsonLine { text, end });
    }
}

/// When the byte just before `end` arrived, from the body's arrival record.
pub fn arrival_time(arrivals: &[Arrival], end: u64) -> Option<u64> {
    let last_byte = end.checked_sub(1)?;
    arrivals.iter().rev().find(|a| a.offset <= last_byte).map(|a| a.at_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_multiline_events_comments_and_line_ends() {
        let body = b": keep-alive\r\n\r\nevent: message_start\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nretry: 10\ndata: x\n\ndata: [DONE]\r\rdata: cut";
        let events = parse_sse(body);
        let summary: Vec<(Option<&str>, &str)> = events.iter().map(|e| (e.name.as_deref(), e.data.as_str())).collect();
        assert_eq!(summary, [(Some("message_start"), "{\"a\":\n1}"), (None, "x"), (None, "[DONE]"), (None, "cut")]);
        assert_eq!(events[0].end, 63, "just past the blank line that dispatched it");
        assert_eq!(events[3].end, body.len() as u64, "an unterminated last event ends with the body");
    }

    #[test]
    fn the_same_events_whatever_the_body_holds_so_far() {
        let body = b"data: one\n\ndata: two\n\n";
        assert_eq!(parse_sse(&body[..11]).len(), 1);
        assert_eq!(parse_sse(body).len(), 2);
        assert!(parse_sse(b"").is_empty());
        assert!(parse_sse(b"\n\n\n").is_empty());
    }

    #[test]
    fn splits_ndjson_and_finds_arrival_times() {
        let lines = parse_lines(b"{\"a\":1}\n\n{\"b\":2}\n{\"c\"");
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "{\"b\":2}", "{\"c\""]);
        let arrivals = [Arrival { offset: 0, at_ns: 100 }, Arrival { offset: 9, at_ns: 200 }];
        assert_eq!(arrival_time(&arrivals, lines[0].end), Some(100));
        assert_eq!(arrival_time(&arrivals, lines[1].end), Some(200));
        assert_eq!(arrival_time(&arrivals, 0), None);
    }
}
