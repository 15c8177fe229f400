//! OTLP export over a tracing session: starting it, flushing spans every
//! second and metrics at their interval, and the last delivery at exit.

use std::time::{Duration, Instant};

use pytrace_core::model::Resource;
use pytrace_core::model::semconv as sc;

use crate::cli::TraceConfig;
use crate::notices::notice;
use crate::sinks::Sinks;
use crate::sinks::otlp::{self, OtlpConfig, OtlpError};
use crate::stats::Stats;

/// Pending spans are handed to the delivery task at least this often.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

pub struct ExportSession {
    config: OtlpConfig,
    own_resource: Resource,
    started_unix_ns: u64,
    last_flush: Instant,
    last_metrics: Instant,
}

impl ExportSession {
    /// Starts export when the configuration asks for it, adding OTLP to
    /// the session's sinks.
    pub fn start(config: &TraceConfig, sinks: &mut Sinks, host: &str) -> Result<Option<Self>, OtlpError> {
        let Some(otlp_config) = &config.otlp else { return Ok(None) };
        let sink = otlp::start(otlp_config, &config.spool_dir, config.spool_max_bytes)?;
        let waiting = sink.spooled_now();
        sinks.export_to(sink);
        sinks.shared_metrics();
        let protocol = match otlp_config.traces.protocol {
            otlp::config::Protocol::Grpc => "gRPC",
            otlp::config::Protocol::HttpProtobuf => "HTTP/protobuf",
        };
        notice!(
            "exporting spans and metrics over OTLP ({protocol}) to {}",
            pytrace_core::redact::endpoint_for_display(&otlp_config.traces.url)
        );
        if waiting > 0 {
            notice!("{waiting} spans from an earlier run wait in {}; sending them first", config.spool_dir.display());
        }
        let mut own_resource = Resource::default();
        for (key, value) in &config.resource_defaults.attributes {
            own_resource.attributes.set(key, value.as_str());
        }
        own_resource.attributes.set(sc::SERVICE_NAME, "pytrace");
        own_resource.attributes.set(sc::HOST_NAME, host);
        own_resource.attributes.set(sc::PROCESS_PID, i64::from(std::process::id()));
        let now = Instant::now();
        Ok(Some(Self {
            config: otlp_config.clone(),
            own_resource,
            started_unix_ns: unix_now_ns(),
            last_flush: now,
            last_metrics: now,
        }))
    }

    /// Called often (every rescan): sends spans, and metrics with pytrace's
    /// figures (taken by `stats`), when due.
    pub fn tick(&mut self, sinks: &mut Sinks, stats: impl FnOnce(&Sinks) -> Stats) {
        let now = Instant::now();
        if now.duration_since(self.last_flush) >= FLUSH_INTERVAL {
            self.last_flush = now;
            if let Some(sink) = sinks.otlp_mut() {
                sink.send_pending();
            }
        }
        if now.duration_since(self.last_metrics) >= self.config.metric_interval {
            self.last_metrics = now;
            let stats = stats(sinks);
            self.export_metrics(sinks, &stats);
        }
    }

    fn export_metrics(&self, sinks: &mut Sinks, stats: &Stats) {
        let metrics = sinks.shared_metrics();
        let Ok(metrics) = metrics.lock() else { return };
        if let Some(sink) = sinks.otlp_mut() {
            sink.export_metrics(&metrics, stats, &self.own_resource, self.started_unix_ns, unix_now_ns());
        }
    }

    /// Sends what is left (spans, then the final metrics), waits for the
    /// delivery within the export timeout, and reports the outcome.
    pub async fn finish(self, sinks: &mut Sinks, stats: &Stats) {
        if let Some(sink) = sinks.otlp_mut() {
            sink.send_pending();
        }
        self.export_metrics(sinks, stats);
        let Some(sink) = sinks.otlp_mut() else { return };
        sink.finish(self.config.traces.timeout + Duration::from_secs(2)).await;
        let waiting = sink.spooled_now();
        if waiting > 0 {
            notice!(
                "the collector at {} could not be reached; {waiting} spans wait in the spool for the next run",
                pytrace_core::redact::endpoint_for_display(&self.config.traces.url),
            );
        }
    }
}

fn unix_now_ns() -> u64 {
    crate::clock::measure().to_unix(crate::clock::monotonic_now())
}
