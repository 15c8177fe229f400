//! Prometheus: the span-derived metrics (`sinks::span_metrics`) and
//! pytrace's own figures (`crate::stats`) in the text exposition format
//! (`encode`), served over a small HTTP `endpoint` that also answers the
//! `/healthz` and `/readyz` probes.

pub mod encode;
pub mod endpoint;
