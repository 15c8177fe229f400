//! The HTTP endpoint `--metrics-address` opens: `/metrics` for Prometheus,
//! `/healthz` (the session's loop ran lately: it is not stuck) and
//! `/readyz` (probes attached and tracing) for a DaemonSet's probes.
//! Bounded: a few connections at a time, each given a few seconds to send
//! its request; anything else gets 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::encode::{self as prometheus, Shared};

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// `/healthz` fails when the session's loop has not run for this long.
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// What the session tells the endpoint.
pub struct Status {
    started: Instant,
    ready: AtomicBool,
    /// Milliseconds after `started` at which the loop last ran.
    last_beat_ms: AtomicU64,
}

impl Status {
    fn new() -> Self {
        Self { started: Instant::now(), ready: AtomicBool::new(false), last_beat_ms: AtomicU64::new(0) }
    }

    /// The session's loop ran.
    pub fn beat(&self) {
        self.last_beat_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Tracing has started (or, with false, is ending).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn since_last_beat(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.last_beat_ms.load(Ordering::Relaxed)))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("--metrics-address {address}: cannot listen there: {source}")]
pub struct EndpointError {
    address: SocketAddr,
    source: std::io::Error,
}

/// A listener on `address`. The unspecified IPv6 address (`[::]`) takes
/// IPv4 connections too, whatever `net.ipv6.bindv6only` says — a
/// DaemonSet's probes reach the pod on IPv4 or IPv6 — and where the host
/// has no IPv6 at all, pytrace listens on `0.0.0.0` instead.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let dual_stack = matches!(address, SocketAddr::V6(v6) if v6.ip().is_unspecified());
    let socket = match Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP)) {
        Err(error) if dual_stack && error.raw_os_error() == Some(crate::sys::EAFNOSUPPORT) => {
            let ipv4 = SocketAddr::from(([0, 0, 0, 0], address.port()));
            return listen(ipv4);
        }
        other => other?,
    };
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Listens on `address` and serves until the runtime ends; returns the
/// status handle the session updates and the address bound (port 0 picks one).
pub async fn serve(address: SocketAddr, shared: Shared) -> Result<(Arc<Status>, SocketAddr), EndpointError> {
    let listener = listen(address).map_err(|source| EndpointError { address, source })?;
    let bound = listener.local_addr().map_err(|source| EndpointError { address, source })?;
    let status = Arc::new(Status::new());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let state = (shared, status.clone());
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (shared, status) = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = respond(&request, &shared, &status);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(permit);
            });
        }
    });
    Ok((status, bound))
}

fn respond(request: &Request<Incoming>, shared: &Shared, status: &Status) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
    }
    match request.uri().path() {
        "/metrics" => {
            let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let (body, content_type) = prometheus::exposition(shared, accept);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
            response
        }
        "/healthz" => {
            let idle = status.since_last_beat();
            if idle < STALL_LIMIT {
                text(StatusCode::OK, "ok\n".to_owned())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, format!("stalled: the event loop has not run for {idle:.0?}\n"))
            }
        }
        "/readyz" if status.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n".to_owned()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready: probes are not attached yet\n".to_owned()),
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n".to_owned()),
    }
}

fn text(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
