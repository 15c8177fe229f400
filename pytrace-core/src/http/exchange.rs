//! One HTTP request/response pair as observed on a connection, with the
//! timestamps spans are built from. Produced by [`super::HttpConnection`].

use super::body::Body;
use super::head::{RequestHead, ResponseHead};
use crate::events::{ConnKey, Endpoints, Transport};

/// What is known about the connection an exchange travelled on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionFacts {
    pub transport: Option<Transport>,
    pub endpoints: Option<Endpoints>,
    /// SNI host name the client set (TLS only).
    pub server_name: Option<String>,
}

/// Why an exchange was reported before its response was complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incomplete {
    /// The connection closed first.
    ConnectionClosed,
    /// The traced process exited first.
    ProcessExited,
    /// Tracing stopped first.
    TracingEnded,
    /// Response bytes were lost or malformed, so its end cannot be known.
    ResponseUnreadable,
    /// Too many requests were waiting for responses on this connection.
    Evicted,
    /// pytrace stopped tracking the connection: idle too long, or too many
    /// connections were tracked.
    Forgotten,
}

impl Incomplete {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionClosed => "connection closed before the response completed",
            Self::ProcessExited => "process exited before the response completed",
            Self::TracingEnded => "tracing ended before the response completed",
            Self::ResponseUnreadable => "response bytes were lost or malformed",
            Self::Evicted => "too many requests awaiting responses on the connection",
            Self::Forgotten => "pytrace stopped tracking the connection (idle too long, or too many connections)",
        }
    }
}

/// `C` is what the caller attached to the request as it began (the agent:
/// the Python stack that started it); HTTP itself never looks at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange<C = ()> {
    pub conn: ConnKey,
    /// Thread that wrote the request's first byte.
    pub tid: u32,
    pub request: RequestHead,
    pub request_body: Body,
    pub response: Option<ResponseHead>,
    pub response_body: Body,
    /// Status codes of 1xx responses that preceded the final one.
    pub informational: Vec<u16>,
    /// Entry of the call that wrote the request's first byte.
    pub start_ns: u64,
    /// Return of the call that delivered the response's first byte.
    pub first_response_byte_ns: Option<u64>,
    /// Return of the call that delivered the last byte seen.
    pub end_ns: u64,
    /// `None` when the response completed.
    pub incomplete: Option<Incomplete>,
    /// Some request or response bytes were never captured.
    pub bytes_missing: bool,
    /// Filled in by the tracker.
    pub connection: ConnectionFacts,
    /// What was offered for the request as it began ([`super::HttpConnection::offer_context`]).
    pub context: Option<C>,
}
