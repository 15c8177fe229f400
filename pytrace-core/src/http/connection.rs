//! The HTTP/1.1 state machine of one connection: request bytes (egress) and
//! response bytes (ingress) in, [`Exchange`]s out.
//!
//! Requests queue in order; each response pairs with the oldest request still
//! waiting (HTTP/1.1 keeps order, so keep-alive and pipelining both work).
//! Input arrives as the segments individual SSL calls moved, split anywhere.
//! When bytes are lost or malformed a side drops to `Lost` and waits for a
//! call whose data starts like a new message: call boundaries are where
//! clients begin messages. Everything here is pure and bounded.

use std::collections::VecDeque;

use crate::events::ConnKey;

use super::body::{Body, BodyReader, Feed, Framing};
use super::exchange::{Exchange, Incomplete};
use super::head::{self, Parsed, RequestHead, ResponseHead};

/// Longest head accepted; a longer one is treated as garbage.
const MAX_HEAD: usize = 64 * 1024;
/// Requests awaiting responses before the oldest is reported incomplete.
const MAX_IN_FLIGHT: usize = 256;

/// Bytes moved by one call (or one captured chunk of it).
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub data: &'a [u8],
    /// This segment holds the first bytes of its call.
    pub starts_call: bool,
    pub call_start_ns: u64,
    pub call_end_ns: u64,
    pub tid: u32,
}

struct Pending<C> {
    request: RequestHead,
    request_body: BodyReader,
    tid: u32,
    start_ns: u64,
    last_seen_ns: u64,
    informational: Vec<u16>,
    response: Option<(ResponseHead, BodyReader)>,
    first_response_byte_ns: Option<u64>,
    bytes_missing: bool,
    context: Option<C>,
}

impl<C> Pending<C> {
    fn into_exchange(self, conn: ConnKey, incomplete: Option<Incomplete>) -> Exchange<C> {
        let (response, response_body) = match self.response {
            Some((head, reader)) => (Some(head), reader.body),
            None => (None, Body::default()),
        };
        Exchange {
            conn,
            tid: self.tid,
            request: self.request,
            request_body: self.request_body.body,
            response,
            response_body,
            informational: self.informational,
            start_ns: self.start_ns,
            first_response_byte_ns: self.first_response_byte_ns,
            end_ns: self.last_seen_ns,
            incomplete,
            bytes_missing: self.bytes_missing,
            connection: Default::default(),
            context: self.context,
        }
    }
}

#[derive(Debug)]
enum RequestSide {
    /// Collecting a head; the timestamp is the entry of its first byte's call.
    Head {
        buf: Vec<u8>,
        start_ns: u64,
    },
    /// Writing the body of the newest pending request.
    Body,
    Lost,
}

#[derive(Debug)]
enum ResponseSide {
    Head {
        buf: Vec<u8>,
    },
    /// Reading the body of the oldest pending request's response.
    Body,
    /// Reading a response that pairs with no request we saw (attached late).
    Orphan(BodyReader),
    Lost,
}

/// One connection's HTTP state.
pub struct HttpConnection<C = ()> {
    conn: ConnKey,
    pending: VecDeque<Pending<C>>,
    requests: RequestSide,
    responses: ResponseSide,
    /// After `101 Switching Protocols` or a CONNECT tunnel: not HTTP any more.
    upgraded: bool,
    /// What the caller offered for the next request to be written.
    next_context: Option<C>,
    /// Request heads read so far.
    requests_seen: u64,
}

impl<C> HttpConnection<C> {
    pub fn new(conn: ConnKey) -> Self {
        Self {
            conn,
            pending: VecDeque::new(),
            requests: RequestSide::Head { buf: Vec::new(), start_ns: 0 },
            responses: ResponseSide::Head { buf: Vec::new() },
            upgraded: false,
            next_context: None,
            requests_seen: 0,
        }
    }

    /// How many request heads this connection has read.
    pub fn requests_seen(&self) -> u64 {
        self.requests_seen
    }

    /// The newest `count` requests still waiting for their responses,
    /// oldest first: (head, thread that began it, start).
    pub fn newest_pending(&self, count: usize) -> impl Iterator<Item = (&RequestHead, u32, u64)> {
        let skip = self.pending.len().saturating_sub(count);
        self.pending.iter().skip(skip).map(|p| (&p.request, p.tid, p.start_ns))
    }

    /// What the next request to be written carries into its exchange (the
    /// agent: the stack of the thread about to write it).
    pub fn offer_context(&mut self, context: C) {
        self.next_context = Some(context);
    }

    /// Whether any exchange is waiting for bytes.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Bytes written by the process.
    pub fn on_request_bytes(&mut self, seg: Segment<'_>, out: &mut Vec<Exchange<C>>) {
        if self.upgraded {
            return;
        }
        let mut data = seg.data;
        while !data.is_empty() {
            data = match &mut self.requests {
                RequestSide::Lost => {
                    if !(seg.starts_call && data.len() == seg.data.len() && head::looks_like_request_start(data)) {
                        return;
                    }
                    self.requests = RequestSide::Head { buf: Vec::new(), start_ns: seg.call_start_ns };
                    data
                }
                RequestSide::Head { buf, start_ns } => {
                    if buf.is_empty() {
                        if !head::looks_like_request_start(data) {
                            self.requests = RequestSide::Lost;
                            return;
                        }
                        *start_ns = seg.call_start_ns;
                    }
                    let before = buf.len();
                    buf.extend_from_slice(&data[..data.len().min(MAX_HEAD + 1 - before)]);
                    match head::parse_request(buf) {
                        Parsed::Partial if buf.len() <= MAX_HEAD => return,
                        Parsed::Partial | Parsed::Invalid => {
                            self.requests = RequestSide::Lost;
                            return;
                        }
                        Parsed::Complete(request, head_len) => {
                            let start_ns = *start_ns;
                            let rest = &data[head_len - before..];
                            self.start_request(request, start_ns, seg, out);
                            rest
                        }
                    }
                }
                RequestSide::Body => {
                    let Some(pending) = self.pending.back_mut() else {
                        self.requests = RequestSide::Lost;
                        return;
                    };
                    pending.last_seen_ns = pending.last_seen_ns.max(seg.call_end_ns);
                    match pending.request_body.feed(data, seg.call_end_ns) {
                        Feed::NeedMore => return,
                        Feed::Complete { consumed } => {
                            self.requests = RequestSide::Head { buf: Vec::new(), start_ns: 0 };
                            &data[consumed..]
                        }
                        Feed::Broken => {
                            self.requests = RequestSide::Lost;
                            return;
                        }
                    }
                }
            };
        }
    }

    fn start_request(&mut self, request: RequestHead, start_ns: u64, seg: Segment<'_>, out: &mut Vec<Exchange<C>>) {
        let framing = if request.headers.is_chunked() {
            Framing::Chunked
        } else {
            match request.headers.content_length() {
                Some(Ok(length)) => Framing::Length(length),
                Some(Err(())) => {
                    self.requests = RequestSide::Lost;
                    return;
                }
                None => Framing::Empty,
            }
        };
        let request_body = BodyReader::new(framing);
        self.requests = if request_body.is_complete() {
            RequestSide::Head { buf: Vec::new(), start_ns: 0 }
        } else {
            RequestSide::Body
        };
        if self.pending.len() >= MAX_IN_FLIGHT {
            if let Some(oldest) = self.pending.pop_front() {
                out.push(oldest.into_exchange(self.conn, Some(Incomplete::Evicted)));
            }
            self.responses = ResponseSide::Lost;
        }
        if self.pending.capacity() == 0 {
            // One exchange at a time is the rule (pipelining is rare): room
            // for one, not the four a first push would reserve, keeps
            // thousands of open connections cheap.
            self.pending.reserve_exact(1);
        }
        self.requests_seen += 1;
        self.pending.push_back(Pending {
            request,
            request_body,
            tid: seg.tid,
            start_ns,
            last_seen_ns: seg.call_end_ns,
            informational: Vec::new(),
            response: None,
            first_response_byte_ns: None,
            bytes_missing: false,
            context: self.next_context.take(),
        });
    }

    /// Bytes read by the process.
    pub fn on_response_bytes(&mut self, seg: Segment<'_>, out: &mut Vec<Exchange<C>>) {
        if self.upgraded {
            return;
        }
        let mut data = seg.data;
        while !data.is_empty() {
            data = match &mut self.responses {
                ResponseSide::Lost => {
                    if !(seg.starts_call && data.len() == seg.data.len() && head::looks_like_response_start(data)) {
                        return;
                    }
                    self.responses = ResponseSide::Head { buf: Vec::new() };
                    data
                }
                ResponseSide::Orphan(reader) => match reader.feed(data, seg.call_end_ns) {
                    Feed::NeedMore => return,
                    Feed::Complete { consumed } => {
                        self.responses = ResponseSide::Head { buf: Vec::new() };
                        &data[consumed..]
                    }
                    Feed::Broken => {
                        self.responses = ResponseSide::Lost;
                        return;
                    }
                },
                ResponseSide::Head { buf } => {
                    if buf.is_empty() && !head::looks_like_response_start(data) {
                        self.responses = ResponseSide::Lost;
                        return;
                    }
                    if buf.is_empty()
                        && let Some(pending) = self.pending.front_mut()
                    {
                        pending.first_response_byte_ns.get_or_insert(seg.call_end_ns);
                    }
                    let before = buf.len();
                    buf.extend_from_slice(&data[..data.len().min(MAX_HEAD + 1 - before)]);
                    match head::parse_response(buf) {
                        Parsed::Partial if buf.len() <= MAX_HEAD => return,
                        Parsed::Partial | Parsed::Invalid => {
                            self.response_unreadable(out);
                            return;
                        }
                        Parsed::Complete(response, head_len) => {
                            let rest = &data[head_len - before..];
                            self.start_response(response, seg.call_end_ns, out);
                            rest
                        }
                    }
                }
                ResponseSide::Body => {
                    let Some(pending) = self.pending.front_mut() else {
                        self.responses = ResponseSide::Lost;
                        return;
                    };
                    pending.last_seen_ns = pending.last_seen_ns.max(seg.call_end_ns);
                    let Some((_, reader)) = pending.response.as_mut() else {
                        self.responses = ResponseSide::Lost;
                        return;
                    };
                    match reader.feed(data, seg.call_end_ns) {
                        Feed::NeedMore => return,
                        Feed::Complete { consumed } => {
                            self.finish_response(out);
                            &data[consumed..]
                        }
                        Feed::Broken => {
                            self.response_unreadable(out);
                            return;
                        }
                    }
                }
            };
        }
    }

    fn start_response(&mut self, response: ResponseHead, at_ns: u64, out: &mut Vec<Exchange<C>>) {
        self.responses = ResponseSide::Head { buf: Vec::new() };
        let Some(pending) = self.pending.front_mut() else {
            // A response to a request written before we attached.
            let framing = response_framing(None, &response);
            self.responses = match framing {
                Some(framing) => ResponseSide::Orphan(BodyReader::new(framing)),
                None => ResponseSide::Lost,
            };
            return;
        };
        pending.last_seen_ns = pending.last_seen_ns.max(at_ns);
        if (100..200).contains(&response.status) && response.status != 101 {
            pending.informational.push(response.status);
            pending.first_response_byte_ns = None;
            return;
        }
        let tunnel = response.status == 101
            || (pending.request.method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&response.status));
        let framing = if tunnel { Some(Framing::Empty) } else { response_framing(Some(&pending.request), &response) };
        let Some(framing) = framing else {
            pending.response = Some((response, BodyReader::new(Framing::Empty)));
            self.response_unreadable(out);
            return;
        };
        let reader = BodyReader::new(framing);
        let complete = reader.is_complete();
        pending.response = Some((response, reader));
        if complete {
            self.finish_response(out);
            self.upgraded = tunnel;
        } else {
            self.responses = ResponseSide::Body;
        }
    }

    fn finish_response(&mut self, out: &mut Vec<Exchange<C>>) {
        self.responses = ResponseSide::Head { buf: Vec::new() };
        if let Some(done) = self.pending.pop_front() {
            out.push(done.into_exchange(self.conn, None));
        }
    }

    fn response_unreadable(&mut self, out: &mut Vec<Exchange<C>>) {
        self.responses = ResponseSide::Lost;
        if let Some(broken) = self.pending.pop_front() {
            out.push(broken.into_exchange(self.conn, Some(Incomplete::ResponseUnreadable)));
        }
    }

    /// `missing` bytes that followed the last segment were never captured.
    pub fn on_request_gap(&mut self, missing: u64) {
        if let RequestSide::Body = self.requests
            && let Some(pending) = self.pending.back_mut()
        {
            pending.bytes_missing = true;
            if pending.request_body.skip(missing) != Feed::Broken {
                if pending.request_body.is_complete() {
                    self.requests = RequestSide::Head { buf: Vec::new(), start_ns: 0 };
                }
                return;
            }
        }
        self.requests = RequestSide::Lost;
    }

    /// `missing` bytes that followed the last segment were never captured.
    pub fn on_response_gap(&mut self, missing: u64, out: &mut Vec<Exchange<C>>) {
        match &mut self.responses {
            ResponseSide::Body => {
                let Some(pending) = self.pending.front_mut() else {
                    return;
                };
                pending.bytes_missing = true;
                let feed = pending.response.as_mut().map(|(_, reader)| reader.skip(missing));
                match feed {
                    Some(Feed::NeedMore) => {}
                    Some(Feed::Complete { .. }) => self.finish_response(out),
                    _ => self.response_unreadable(out),
                }
            }
            ResponseSide::Orphan(reader) => {
                if let Feed::Complete { .. } | Feed::Broken = reader.skip(missing) {
                    self.responses = ResponseSide::Lost;
                }
            }
            _ => self.response_unreadable(out),
        }
    }

    /// The connection closed: bodies delimited by the close end; everything
    /// still pending is reported incomplete.
    pub fn on_close(&mut self, out: &mut Vec<Exchange<C>>) {
        if let ResponseSide::Body = self.responses
            && let Some((_, reader)) = self.pending.front_mut().and_then(|p| p.response.as_mut())
            && reader.close()
        {
            self.finish_response(out);
        }
        self.flush(Incomplete::ConnectionClosed, out);
    }

    /// Reports every pending exchange as incomplete for `reason`.
    pub fn flush(&mut self, reason: Incomplete, out: &mut Vec<Exchange<C>>) {
        for pending in self.pending.drain(..) {
            out.push(pending.into_exchange(self.conn, Some(reason)));
        }
        self.requests = RequestSide::Head { buf: Vec::new(), start_ns: 0 };
        self.responses = ResponseSide::Head { buf: Vec::new() };
    }
}

/// Body framing of a response (RFC 9112 §6.3); `None` when it cannot be known.
fn response_framing(request: Option<&RequestHead>, response: &ResponseHead) -> Option<Framing> {
    let head_request = request.is_some_and(|r| r.method.eq_ignore_ascii_case("HEAD"));
    if head_request || (100..200).contains(&response.status) || matches!(response.status, 204 | 304) {
        return Some(Framing::Empty);
    }
    if response.headers.is_chunked() {
        return Some(Framing::Chunked);
    }
    match response.headers.content_length() {
        Some(Ok(length)) => Some(Framing::Length(length)),
        Some(Err(())) => None,
        None => Some(Framing::UntilClose),
    }
}
