//! HTTP spans from exchanges, following the OpenTelemetry HTTP semantic
//! conventions: one span per exchange, a client span when the traced process
//! made the request and a server span when it answered one.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::events::{Role, Transport};
use crate::http::head::RequestHead;
use crate::http::{Exchange, Incomplete};
use crate::model::semconv as sc;
use crate::model::{AttrValue, Attributes, IdSource, Resource, Span, SpanId, SpanKind, Status, TraceId};
use crate::redact;

use crate::model::Clock;

const KNOWN_METHODS: &[&str] =
    &["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"];

/// Builds the span of one exchange.
pub fn build_span<C>(exchange: &Exchange<C>, clock: Clock, resource: Arc<Resource>, ids: &mut dyn IdSource) -> Span {
    let mut attrs = Attributes::default();
    let request = &exchange.request;
    let facts = &exchange.connection;
    let scheme = match facts.transport {
        Some(Transport::Plain) => "http",
        Some(Transport::Tls) | None => "https",
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let endpoints = facts.endpoints;
    let role = endpoints.map_or(Role::Client, |e| e.role);
    let method = normalized_method(&request.method);
    attrs.set(sc::HTTP_REQUEST_METHOD, method);
    if method == "_OTHER" {
        attrs.set(sc::HTTP_REQUEST_METHOD_ORIGINAL, request.method.as_str());
    }

    let server = server_of(exchange, role, default_port);
    set_url(&mut attrs, request, role, server.as_ref(), scheme, default_port);
    if let Some((host, port)) = &server {
        attrs.set(sc::SERVER_ADDRESS, host.clone());
        attrs.set(sc::SERVER_PORT, i64::from(*port));
    }
    if let Some(peer) = endpoints.and_then(|e| e.peer) {
        set_peer(&mut attrs, peer, role);
    }
    if let Some(name) = &facts.server_name {
        attrs.set(sc::PYTRACE_TLS_SERVER_NAME, name.clone());
    }
    set_message_facts(&mut attrs, exchange);
    let status = status(exchange, role, &mut attrs);
    // The application's own tracing sent a traceparent: join its trace.
    let joined = request.headers.get("traceparent").and_then(|h| crate::model::traceparent::parse(&h));
    Span {
        trace_id: joined.map_or_else(|| TraceId::new(ids), |(trace, _)| trace),
        span_id: SpanId::new(ids),
        parent_span_id: joined.map(|(_, parent)| parent),
        name: method.to_owned(),
        kind: match role {
            Role::Client => SpanKind::Client,
            Role::Server => SpanKind::Server,
        },
        start_unix_nano: clock.to_unix(exchange.start_ns),
        end_unix_nano: clock.to_unix(exchange.end_ns.max(exchange.start_ns)),
        status,
        attributes: attrs,
        resource,
    }
}

/// `server.address` and `server.port`: the Host header, else the SNI name,
/// else (for clients) the peer.
fn server_of<C>(exchange: &Exchange<C>, role: Role, default_port: u16) -> Option<(String, u16)> {
    let endpoints = exchange.connection.endpoints;
    host_header(&exchange.request).map(|h| split_host_port(&h, default_port)).or_else(|| {
        let port = match role {
            Role::Client => endpoints.and_then(|e| e.peer).map_or(default_port, |p| p.port()),
            Role::Server => endpoints.and_then(|e| e.local).map_or(default_port, |p| p.port()),
        };
        exchange.connection.server_name.clone().map(|name| (name, port)).or_else(|| match role {
            Role::Client => endpoints.and_then(|e| e.peer).map(|p| (p.ip().to_string(), p.port())),
            Role::Server => None,
        })
    })
}

/// The URL, secrets redacted: whole for a client's request, path, query and
/// scheme for a request served.
fn set_url(
    attrs: &mut Attributes,
    request: &RequestHead,
    role: Role,
    server: Option<&(String, u16)>,
    scheme: &str,
    default_port: u16,
) {
    let target = redact::redact_url(&request.target);
    match role {
        Role::Client => match server {
            _ if request.target.contains("://") => attrs.set(sc::URL_FULL, target),
            Some((host, port)) => {
                let authority = authority(host, *port, default_port);
                attrs.set(sc::URL_FULL, format!("{scheme}://{authority}{target}"));
            }
            None => attrs.set(sc::URL_PATH, target),
        },
        Role::Server => {
            let (path, query) = target.split_once('?').map_or((target.as_str(), None), |(p, q)| (p, Some(q)));
            attrs.set(sc::URL_PATH, path);
            if let Some(query) = query {
                attrs.set(sc::URL_QUERY, query);
            }
            attrs.set(sc::URL_SCHEME, scheme);
        }
    }
}

/// What the messages themselves tell: protocol version, body sizes, status
/// codes, time to first byte, the writing thread, bytes never captured.
fn set_message_facts<C>(attrs: &mut Attributes, exchange: &Exchange<C>) {
    attrs.set(sc::NETWORK_PROTOCOL_VERSION, format!("1.{}", exchange.request.version));
    attrs.set(sc::HTTP_REQUEST_BODY_SIZE, exchange.request_body.size);
    if let Some(response) = &exchange.response {
        attrs.set(sc::HTTP_RESPONSE_STATUS_CODE, i64::from(response.status));
        attrs.set(sc::HTTP_RESPONSE_BODY_SIZE, exchange.response_body.size);
    }
    if !exchange.informational.is_empty() {
        attrs.set(
            sc::PYTRACE_INFORMATIONAL_STATUS,
            AttrValue::IntArray(exchange.informational.iter().map(|s| i64::from(*s)).collect()),
        );
    }
    if let Some(first) = exchange.first_response_byte_ns {
        attrs.set(sc::PYTRACE_TIME_TO_FIRST_BYTE, first.saturating_sub(exchange.start_ns) as f64 / 1e9);
    }
    attrs.set(sc::THREAD_ID, i64::from(exchange.tid));
    if exchange.bytes_missing {
        attrs.set(sc::PYTRACE_BYTES_MISSING, true);
    }
}

fn set_peer(attrs: &mut Attributes, peer: SocketAddr, role: Role) {
    attrs.set(sc::NETWORK_PEER_ADDRESS, peer.ip().to_string());
    attrs.set(sc::NETWORK_PEER_PORT, i64::from(peer.port()));
    attrs.set(sc::NETWORK_TRANSPORT, "tcp");
    attrs.set(sc::NETWORK_TYPE, if peer.is_ipv4() { "ipv4" } else { "ipv6" });
    if role == Role::Server {
        attrs.set(sc::CLIENT_ADDRESS, peer.ip().to_string());
        attrs.set(sc::CLIENT_PORT, i64::from(peer.port()));
    }
}

/// Client spans: 4xx and 5xx are errors. Server spans: only 5xx.
fn status<C>(exchange: &Exchange<C>, role: Role, attrs: &mut Attributes) -> Status {
    if let Some(reason) = exchange.incomplete {
        attrs.set(sc::PYTRACE_INCOMPLETE, true);
        attrs.set(sc::PYTRACE_INCOMPLETE_REASON, reason.as_str());
        if reason == Incomplete::ConnectionClosed {
            attrs.set(sc::ERROR_TYPE, "connection_closed");
            return Status::Error { message: Some(reason.as_str().to_owned()) };
        }
    }
    let error_from = match role {
        Role::Client => 400,
        Role::Server => 500,
    };
    match exchange.response.as_ref().map(|r| r.status) {
        Some(code) if code >= error_from => {
            attrs.set(sc::ERROR_TYPE, code.to_string());
            Status::Error { message: None }
        }
        _ => Status::Unset,
    }
}

fn normalized_method(method: &str) -> &str {
    KNOWN_METHODS.iter().find(|m| **m == method).copied().unwrap_or("_OTHER")
}

fn host_header(request: &RequestHead) -> Option<String> {
    request.headers.get("host").filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` as it belongs in a URL.
fn authority(host: &str, port: u16, default_port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    if port == default_port { host } else { format!("{host}:{port}") }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str, default_port: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port);
        return (host.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host.to_owned(), port.parse().unwrap_or(default_port)),
        _ => (authority.to_owned(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_authorities() {
        assert_eq!(split_host_port("api.openai.com", 443), ("api.openai.com".into(), 443));
        assert_eq!(split_host_port("localhost:8443", 443), ("localhost".into(), 8443));
        assert_eq!(split_host_port("[::1]:9000", 443), ("::1".into(), 9000));
        assert_eq!(split_host_port("[::1]", 80), ("::1".into(), 80));
        assert_eq!(authority("::1", 9000, 80), "[::1]:9000");
        assert_eq!(authority("example.com", 443, 443), "example.com");
    }

    #[test]
    fn normalizes_methods() {
        assert_eq!(normalized_method("POST"), "POST");
        assert_eq!(normalized_method("PROPFIND"), "_OTHER");
    }
}
