//! HTTP client spans from exchanges, following the OpenTelemetry HTTP
//! semantic conventions: one span per exchange, from the request's first byte
//! written to the response's last byte read.

use std::sync::Arc;

use super::model::{Attributes, Resource, Span, SpanId, SpanKind, Status, TraceId};
use super::semconv as sc;
use crate::clock::Clock;
use crate::http::head::RequestHead;
use crate::http::{Exchange, Incomplete};
use crate::redact;

const KNOWN_METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE",
];

/// The URL scheme of the connection the exchange travelled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
    fn default_port(self) -> u16 {
        match self {
            Self::Https => 443,
            Self::Http => 80,
        }
    }
}

/// Builds the span of one exchange.
pub fn build_span(
    exchange: &Exchange,
    scheme: Scheme,
    clock: Clock,
    resource: Arc<Resource>,
) -> Span {
    let mut attrs = Attributes::default();
    let request = &exchange.request;
    let method = normalized_method(&request.method);
    attrs.set(sc::HTTP_REQUEST_METHOD, method);
    if method == "_OTHER" {
        attrs.set(sc::HTTP_REQUEST_METHOD_ORIGINAL, request.method.as_str());
    }
    let authority = authority(request);
    let server = authority
        .as_deref()
        .map(|a| split_host_port(a, scheme.default_port()));
    match (&server, request.target.contains("://")) {
        (_, true) => attrs.set(sc::URL_FULL, redact::redact_url(&request.target)),
        (Some(_), false) => {
            let authority = authority.as_deref().unwrap_or_default();
            attrs.set(
                sc::URL_FULL,
                redact::redact_url(&format!(
                    "{}://{authority}{}",
                    scheme.as_str(),
                    request.target
                )),
            );
        }
        (None, false) => attrs.set(sc::URL_PATH, redact::redact_url(&request.target)),
    }
    if let Some((host, port)) = &server {
        attrs.set(sc::SERVER_ADDRESS, host.clone());
        attrs.set(sc::SERVER_PORT, i64::from(*port));
    }
    attrs.set(
        sc::NETWORK_PROTOCOL_VERSION,
        format!("1.{}", request.version),
    );
    attrs.set(sc::HTTP_REQUEST_BODY_SIZE, exchange.request_body.size);
    if let Some(response) = &exchange.response {
        attrs.set(sc::HTTP_RESPONSE_STATUS_CODE, i64::from(response.status));
        attrs.set(sc::HTTP_RESPONSE_BODY_SIZE, exchange.response_body.size);
    }
    if !exchange.informational.is_empty() {
        attrs.set(
            sc::PYTRACE_INFORMATIONAL_STATUS,
            super::AttrValue::IntArray(
                exchange
                    .informational
                    .iter()
                    .map(|s| i64::from(*s))
                    .collect(),
            ),
        );
    }
    if let Some(first) = exchange.first_response_byte_ns {
        attrs.set(
            sc::PYTRACE_TIME_TO_FIRST_BYTE,
            first.saturating_sub(exchange.start_ns) as f64 / 1e9,
        );
    }
    attrs.set(sc::THREAD_ID, i64::from(exchange.tid));
    if exchange.bytes_missing {
        attrs.set(sc::PYTRACE_BYTES_MISSING, true);
    }
    let status = status(exchange, &mut attrs);
    Span {
        trace_id: TraceId::random(),
        span_id: SpanId::random(),
        parent_span_id: None,
        name: method.to_owned(),
        kind: SpanKind::Client,
        start_unix_nano: clock.to_unix(exchange.start_ns),
        end_unix_nano: clock.to_unix(exchange.end_ns.max(exchange.start_ns)),
        status,
        attributes: attrs,
        resource,
    }
}

fn status(exchange: &Exchange, attrs: &mut Attributes) -> Status {
    if let Some(reason) = exchange.incomplete {
        attrs.set(sc::PYTRACE_INCOMPLETE, true);
        attrs.set(sc::PYTRACE_INCOMPLETE_REASON, reason.as_str());
        if reason == Incomplete::ConnectionClosed {
            attrs.set(sc::ERROR_TYPE, "connection_closed");
            return Status::Error {
                message: Some(reason.as_str().to_owned()),
            };
        }
    }
    match exchange.response.as_ref().map(|r| r.status) {
        Some(code) if code >= 400 => {
            attrs.set(sc::ERROR_TYPE, code.to_string());
            Status::Error { message: None }
        }
        _ => Status::Unset,
    }
}

fn normalized_method(method: &str) -> &str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("_OTHER")
}

fn authority(request: &RequestHead) -> Option<String> {
    request
        .headers
        .get("host")
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        return (host.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            (host.to_owned(), port.parse().unwrap_or(default_port))
        }
        _ => (authority.to_owned(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_authorities() {
        assert_eq!(
            split_host_port("api.openai.com", 443),
            ("api.openai.com".into(), 443)
        );
        assert_eq!(
            split_host_port("localhost:8443", 443),
            ("localhost".into(), 8443)
        );
        assert_eq!(split_host_port("[::1]:9000", 443), ("::1".into(), 9000));
        assert_eq!(split_host_port("[::1]", 80), ("::1".into(), 80));
    }

    #[test]
    fn normalizes_methods() {
        assert_eq!(normalized_method("POST"), "POST");
        assert_eq!(normalized_method("PROPFIND"), "_OTHER");
    }
}
