//! Export to the OpenTelemetry ecosystem over OTLP: settings (`config`),
//! spans and resources as protobuf (`encode_spans`), the span-derived
//! metrics and pytrace's own figures as protobuf (`encode_metrics`), the
//! wire (`transport`), and delivery that survives a collector outage
//! (`exporter`, with the on-disk `spool`).

pub mod config;
pub mod encode_metrics;
pub mod encode_spans;
pub mod exporter;
pub mod spool;
pub mod transport;

use std::path::Path;

pub use config::OtlpConfig;
pub use exporter::OtlpSink;

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
}

/// Starts OTLP export: the transports, the spool in `spool_dir` (holding at
/// most `spool_max_bytes`), and the delivery task.
pub fn start(config: &OtlpConfig, spool_dir: &Path, spool_max_bytes: u64) -> Result<OtlpSink, OtlpError> {
    let traces = transport::Transport::new(&config.traces)?;
    let metrics = transport::Transport::new(&config.metrics)?;
    let spool = spool::Spool::open(spool_dir, spool_max_bytes)?;
    Ok(OtlpSink::start(traces, metrics, spool))
}
