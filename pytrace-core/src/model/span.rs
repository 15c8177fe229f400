//! The span every output renders: OpenTelemetry's data model reduced to
//! what pytrace produces, with the resource (the traced process) it came from.

use std::sync::Arc;

use super::{Attributes, SpanId, TraceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Client,
    Server,
    Internal,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    Error { message: Option<String> },
}

/// What produced the spans: one per traced process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub attributes: Attributes,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub status: Status,
    pub attributes: Attributes,
    pub resource: Arc<Resource>,
}

impl Span {
    /// An empty span for tests to fill in (feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    pub fn placeholder() -> Self {
        Self {
            trace_id: TraceId([0; 16]),
            span_id: SpanId([0; 8]),
            parent_span_id: None,
            name: String::new(),
            kind: SpanKind::Internal,
            start_unix_nano: 0,
            end_unix_nano: 0,
            status: Status::Unset,
            attributes: Attributes::default(),
            resource: Arc::default(),
        }
    }

    /// An openai chat completion as pytrace builds it, for the metric
    /// encoders' tests: `input_tokens` reported, `cost` priced, lasting `seconds`.
    #[cfg(any(test, feature = "testing"))]
    pub fn sample_llm_call(resource: Arc<Resource>, input_tokens: i64, cost: f64, seconds: f64) -> Self {
        use super::semconv as sc;
        let mut span = Self::placeholder();
        span.name = "chat gpt-4o-mini".into();
        span.kind = SpanKind::Client;
        span.end_unix_nano = (seconds * 1e9) as u64;
        span.resource = resource;
        let a = &mut span.attributes;
        a.set(sc::HTTP_REQUEST_METHOD, "POST");
        a.set(sc::URL_FULL, "https://api.openai.com/v1/chat/completions");
        a.set(sc::SERVER_ADDRESS, "api.openai.com");
        a.set(sc::GEN_AI_OPERATION_NAME, "chat");
        a.set(sc::GEN_AI_PROVIDER_NAME, "openai");
        a.set(sc::GEN_AI_REQUEST_MODEL, "gpt-4o-mini");
        a.set(sc::GEN_AI_USAGE_INPUT_TOKENS, input_tokens);
        a.set(sc::GEN_AI_USAGE_COST, cost);
        span
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}
