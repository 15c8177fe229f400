//! Message bodies: framing (Content-Length, chunked, until-close, none) and an
//! incremental chunked-coding decoder that accepts input split anywhere.
//!
//! A [`BodyReader`] consumes wire bytes and tells when the body ends; the
//! de-chunked bytes land in a [`Body`], which keeps a bounded copy of its
//! head and of the bytes after its last gap (its tail), counts bytes it could
//! not keep or never saw (capture gaps), and records when each read call
//! delivered its part, so later stages can time stream events.

/// De-chunked body bytes kept per message; beyond this they are only counted.
pub const BODY_KEEP_LIMIT: usize = 4 * 1024 * 1024;
/// Longest chunk-size or trailer line accepted before the stream is
/// considered hostile.
const MAX_FRAMING_LINE: usize = 8 * 1024;
/// Bytes kept after a body's last gap (or past its kept head): enough for
/// the members a JSON request puts after a prompt too large to capture.
pub const TAIL_KEEP_LIMIT: usize = 64 * 1024;
/// Read calls whose arrival is kept per body: enough to time the first
/// token of any stream; a body read in more pieces keeps only the first.
pub const MAX_ARRIVALS: usize = 4096;

/// How a message's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// When a read call delivered body bytes starting at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub offset: u64,
    pub at_ns: u64,
}

/// A message body as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// De-chunked body size in bytes, including bytes not captured.
    pub size: u64,
    /// The first [`BODY_KEEP_LIMIT`] de-chunked bytes, without gaps.
    pub kept: Vec<u8>,
    /// The last bytes (at most [`TAIL_KEEP_LIMIT`]) that did not fit in
    /// `kept` and follow the body's last gap: the body's end, once it ends.
    tail: Vec<u8>,
    /// Bytes of the body that were never captured (capture limit, lost events).
    pub uncaptured: u64,
    /// One entry per call that delivered body bytes, in order (the first
    /// [`MAX_ARRIVALS`]).
    pub arrivals: Vec<Arrival>,
    /// Calls that delivered body bytes after [`MAX_ARRIVALS`].
    pub arrivals_dropped: u64,
}

impl Body {
    /// Whether `kept` holds the whole body, byte for byte.
    pub fn is_whole(&self) -> bool {
        self.uncaptured == 0 && self.kept.len() as u64 == self.size
    }

    fn push(&mut self, bytes: &[u8], at_ns: u64) {
        if bytes.is_empty() {
            return;
        }
        if self.arrivals.last().is_none_or(|a| a.at_ns != at_ns) {
            if self.arrivals.len() < MAX_ARRIVALS {
                self.arrivals.push(Arrival { offset: self.size, at_ns });
            } else {
                self.arrivals_dropped += 1;
            }
        }
        self.size += bytes.len() as u64;
        let room = if self.uncaptured == 0 { BODY_KEEP_LIMIT.saturating_sub(self.kept.len()) } else { 0 };
        let (head, rest) = bytes.split_at(bytes.len().min(room));
        self.kept.extend_from_slice(head);
        self.keep_tail(rest);
    }

    /// Appends to the tail, dropping its oldest bytes past the limit
    /// (amortised: the front is cut once the tail holds twice the limit).
    fn keep_tail(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_KEEP_LIMIT)..];
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * TAIL_KEEP_LIMIT {
            self.tail.drain(..self.tail.len() - TAIL_KEEP_LIMIT);
        }
    }

    /// The body's last captured bytes after its last gap, at most
    /// [`TAIL_KEEP_LIMIT`] of them.
    pub fn tail(&self) -> &[u8] {
        &self.tail[self.tail.len().saturating_sub(TAIL_KEEP_LIMIT)..]
    }

    fn skip(&mut self, missing: u64) {
        self.size += missing;
        self.uncaptured += missing;
        self.tail.clear();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunked {
    Size { size: u64, digits: u32, in_extension: bool, line: usize },
    SizeLf { size: u64 },
    Data { remaining: u64 },
    DataEnd { seen_cr: bool },
    Trailer { line: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length { remaining: u64 },
    Chunked(Chunked),
    UntilClose,
    Done,
    Broken,
}

/// Result of feeding bytes to a [`BodyReader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// All input consumed; the body goes on.
    NeedMore,
    /// The body ended after this many input bytes; the rest belongs to the
    /// next message.
    Complete { consumed: usize },
    /// The framing is malformed or was lost in a capture gap.
    Broken,
}

#[derive(Clone, Debug)]
pub struct BodyReader {
    state: State,
    pub body: Body,
}

impl BodyReader {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(remaining) => State::Length { remaining },
            Framing::Chunked => State::Chunked(Chunked::Size { size: 0, digits: 0, in_extension: false, line: 0 }),
            Framing::UntilClose => State::UntilClose,
        };
        Self { state, body: Body::default() }
    }

    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes wire bytes delivered by a call that returned at `at_ns`.
    pub fn feed(&mut self, input: &[u8], at_ns: u64) -> Feed {
        let mut pos = 0;
        while pos < input.len() {
            match &mut self.state {
                State::Done => return Feed::Complete { consumed: pos },
                State::Broken => return Feed::Broken,
                State::UntilClose => {
                    self.body.push(&input[pos..], at_ns);
                    return Feed::NeedMore;
                }
                State::Length { remaining } => {
                    let take = (*remaining).min((input.len() - pos) as u64) as usize;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::Done;
                    }
                    self.body.push(&input[pos..pos + take], at_ns);
                    pos += take;
                }
                State::Chunked(Chunked::Data { remaining }) => {
                    let take = (*remaining).min((input.len() - pos) as u64) as usize;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::Chunked(Chunked::DataEnd { seen_cr: false });
                    }
                    self.body.push(&input[pos..pos + take], at_ns);
                    pos += take;
                }
                State::Chunked(chunked) => {
                    self.state = step_chunk_framing(*chunked, input[pos]);
                    pos += 1;
                }
            }
        }
        match self.state {
            State::Done => Feed::Complete { consumed: pos },
            State::Broken => Feed::Broken,
            _ => Feed::NeedMore,
        }
    }

    /// Accounts for `missing` body bytes that were never captured. Fails when
    /// the gap cannot lie inside body data (framing bytes were lost).
    pub fn skip(&mut self, missing: u64) -> Feed {
        match &mut self.state {
            State::UntilClose => {}
            State::Length { remaining } if missing <= *remaining => {
                *remaining -= missing;
                if *remaining == 0 {
                    self.state = State::Done;
                }
            }
            State::Chunked(Chunked::Data { remaining }) if missing <= *remaining => {
                *remaining -= missing;
                if *remaining == 0 {
                    self.state = State::Chunked(Chunked::DataEnd { seen_cr: false });
                }
            }
            _ => {
                self.state = State::Broken;
                return Feed::Broken;
            }
        }
        self.body.skip(missing);
        if self.is_complete() { Feed::Complete { consumed: 0 } } else { Feed::NeedMore }
    }

    /// The connection closed: a body delimited by the close is now complete.
    pub fn close(&mut self) -> bool {
        if self.state == State::UntilClose {
            self.state = State::Done;
        }
        self.is_complete()
    }
}

fn step_chunk_framing(state: Chunked, byte: u8) -> State {
    let next = match state {
        Chunked::Size { size, digits, in_extension, line } => {
            if line > MAX_FRAMING_LINE {
                return State::Broken;
            }
            match byte {
                b'\r' if digits > 0 => Chunked::SizeLf { size },
                b'\n' if digits > 0 => return after_size(size),
                b';' | b' ' | b'\t' if digits > 0 => Chunked::Size { size, digits, in_extension: true, line: line + 1 },
                _ if in_extension => Chunked::Size { size, digits, in_extension, line: line + 1 },
                _ => match (byte as char).to_digit(16) {
                    Some(value) if digits < 15 => Chunked::Size {
                        size: size * 16 + u64::from(value),
                        digits: digits + 1,
                        in_extension,
                        line: line + 1,
                    },
                    _ => return State::Broken,
                },
            }
        }
        Chunked::SizeLf { size } => match byte {
            b'\n' => return after_size(size),
            _ => return State::Broken,
        },
        Chunked::DataEnd { seen_cr } => match byte {
            b'\r' if !seen_cr => Chunked::DataEnd { seen_cr: true },
            b'\n' => Chunked::Size { size: 0, digits: 0, in_extension: false, line: 0 },
            _ => return State::Broken,
        },
        Chunked::Trailer { line } => match byte {
            b'\n' if line == 0 => return State::Done,
            b'\n' => Chunked::Trailer { line: 0 },
            b'\r' => Chunked::Trailer { line },
            _ if line > MAX_FRAMING_LINE => return State::Broken,
            _ => Chunked::Trailer { line: line + 1 },
        },
        Chunked::Data { .. } => unreachable!("data is consumed in bulk by BodyReader::feed"),
    };
    State::Chunked(next)
}

fn after_size(size: u64) -> State {
    if size == 0 {
        State::Chunked(Chunked::Trailer { line: 0 })
    } else {
        State::Chunked(Chunked::Data { remaining: size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_in_pieces(framing: Framing, wire: &[u8], piece: usize) -> (Feed, Body) {
        let mut reader = BodyReader::new(framing);
        let mut total = 0;
        for (i, part) in wire.chunks(piece).enumerate() {
            match reader.feed(part, i as u64) {
                Feed::NeedMore => total += part.len(),
                Feed::Complete { consumed } => {
                    return (Feed::Complete { consumed: total + consumed }, reader.body);
                }
                Feed::Broken => return (Feed::Broken, reader.body),
            }
        }
        (Feed::NeedMore, reader.body)
    }

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for piece in 1..=wire.len() {
            let (feed, body) = feed_in_pieces(Framing::Chunked, wire, piece);
            assert_eq!(feed, Feed::Complete { consumed: wire.len() - 4 }, "piece {piece}");
            assert_eq!(body.kept, b"hello, world");
            assert_eq!(body.size, 12);
        }
    }

    #[test]
    fn accepts_bare_lf_and_rejects_garbage() {
        assert_eq!(feed_in_pieces(Framing::Chunked, b"3\nabc\n0\n\n", 100).0, Feed::Complete { consumed: 9 });
        assert_eq!(feed_in_pieces(Framing::Chunked, b"zz\r\n", 100).0, Feed::Broken);
        assert_eq!(feed_in_pieces(Framing::Chunked, b"3\r\nabcX", 100).0, Feed::Broken);
        assert_eq!(feed_in_pieces(Framing::Chunked, b"fffffffffffffffffff\r\n", 100).0, Feed::Broken);
    }

    #[test]
    fn length_framing_stops_at_the_boundary() {
        let (feed, body) = feed_in_pieces(Framing::Length(3), b"abcHTTP/1.1", 2);
        assert_eq!(feed, Feed::Complete { consumed: 3 });
        assert_eq!(body.kept, b"abc");
        assert_eq!(body.arrivals, vec![Arrival { offset: 0, at_ns: 0 }, Arrival { offset: 2, at_ns: 1 }]);
    }

    #[test]
    fn gaps_inside_data_are_counted_and_framing_gaps_break() {
        let mut reader = BodyReader::new(Framing::Length(10));
        assert_eq!(reader.feed(b"abc", 1), Feed::NeedMore);
        assert_eq!(reader.skip(5), Feed::NeedMore);
        assert_eq!(reader.feed(b"xyz", 2), Feed::Complete { consumed: 2 });
        assert_eq!((reader.body.size, reader.body.uncaptured, reader.body.is_whole()), (10, 5, false));
        assert_eq!((&reader.body.kept[..], reader.body.tail()), (&b"abc"[..], &b"xy"[..]), "head and tail kept");

        let mut chunked = BodyReader::new(Framing::Chunked);
        assert_eq!(chunked.feed(b"4\r\nab", 1), Feed::NeedMore);
        assert_eq!(chunked.skip(3), Feed::Broken);
    }

    #[test]
    fn the_tail_is_what_follows_the_last_gap_bounded() {
        let mut reader = BodyReader::new(Framing::Length(u64::MAX));
        reader.feed(b"{\"messages\":", 1);
        reader.skip(1_000);
        reader.feed(b"lost too", 2);
        reader.skip(1_000);
        reader.feed(b"\"}],\"model\":", 3);
        reader.feed(b"\"gpt-4o\"}", 4);
        assert_eq!(reader.body.kept, b"{\"messages\":");
        assert_eq!(reader.body.tail(), b"\"}],\"model\":\"gpt-4o\"}");

        let big = vec![b'x'; 3 * TAIL_KEEP_LIMIT + 7];
        for piece in big.chunks(1000) {
            reader.feed(piece, 5);
        }
        reader.feed(b"END", 6);
        assert_eq!(reader.body.tail().len(), TAIL_KEEP_LIMIT);
        assert!(reader.body.tail().ends_with(b"xxEND"));
        assert!(reader.body.tail.len() <= 2 * TAIL_KEEP_LIMIT, "memory stays bounded");
    }

    #[test]
    fn a_body_read_in_tiny_pieces_keeps_the_first_arrivals_and_counts_the_rest() {
        let mut reader = BodyReader::new(Framing::Length(10_000));
        for at_ns in 0..10_000u64 {
            reader.feed(b"x", at_ns);
        }
        assert!(reader.is_complete());
        assert_eq!(reader.body.arrivals.len(), MAX_ARRIVALS);
        assert_eq!(reader.body.arrivals_dropped, 10_000 - MAX_ARRIVALS as u64);
        assert_eq!(reader.body.arrivals[1], Arrival { offset: 1, at_ns: 1 });
        assert_eq!(reader.body.size, 10_000);
    }

    #[test]
    fn until_close_completes_on_close() {
        let mut reader = BodyReader::new(Framing::UntilClose);
        assert_eq!(reader.feed(b"partial", 1), Feed::NeedMore);
        assert!(reader.close());
        assert_eq!(reader.body.kept, b"partial");
    }
}
