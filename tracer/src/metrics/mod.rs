//! Metrics: what finished spans measure (`aggregate`) and pytrace's own
//! figures (`crate::stats`) — encoded for OTLP by `otlp::metrics` and served to
//! Prometheus by `prometheus` over the small HTTP `endpoint` that also
//! answers the `/healthz` and `/readyz` probes.

pub mod aggregate;
pub mod endpoint;
pub mod prometheus;
