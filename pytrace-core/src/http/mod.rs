//! HTTP/1.1 from observed byte streams: heads, body framing, content
//! decoding, and the per-connection state machine that pairs requests with
//! responses. Pure: no I/O, no clocks; timestamps come in with the bytes.

pub mod body;
pub mod connection;
pub mod encoding;
pub mod exchange;
pub mod head;

pub use connection::{HttpConnection, Segment};
pub use exchange::{ConnectionFacts, Exchange, Incomplete};
