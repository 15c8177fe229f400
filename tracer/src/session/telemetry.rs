//! A session's own telemetry: the health snapshot both OTLP and `/metrics`
//! report, and — with `--metrics-address` — the endpoint that serves
//! `/metrics`, `/healthz` and `/readyz`, kept up to date once a second.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracer_common::Stat;

use crate::metrics::endpoint::{self, EndpointError, Status};
use crate::metrics::health::Health;
use crate::metrics::prometheus::Shared;
use crate::otlp::exporter::ExportCounters;
use crate::pipeline::Pipeline;
use crate::probes::{self, Probes};

/// How often the endpoint's health snapshot is refreshed.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

pub struct Telemetry {
    endpoint: Option<(Arc<Status>, Arc<Mutex<Health>>)>,
    last_publish: Option<Instant>,
}

impl Telemetry {
    /// Opens the endpoint when `address` is given; the pipeline then keeps
    /// the span-derived metrics it serves.
    pub async fn start(address: Option<SocketAddr>, pipeline: &mut Pipeline) -> Result<Self, EndpointError> {
        let Some(address) = address else { return Ok(Self { endpoint: None, last_publish: None }) };
        let shared = Shared { metrics: pipeline.output.shared_metrics(), health: Arc::default() };
        let health = shared.health.clone();
        let (status, bound) = endpoint::serve(address, shared).await?;
        eprintln!("pytrace: serving /metrics, /healthz and /readyz on http://{bound}");
        status.beat();
        Ok(Self { endpoint: Some((status, health)), last_publish: None })
    }

    /// Probes are attached: `/readyz` says so from now on.
    pub fn ready(&self) {
        if let Some((status, _)) = &self.endpoint {
            status.set_ready(true);
        }
    }

    /// Called from the session's loop: marks it alive and refreshes the
    /// health snapshot when due.
    pub fn tick(&mut self, pipeline: &Pipeline, probes: &Probes, traced: usize) {
        let Some((status, health)) = &self.endpoint else { return };
        status.beat();
        if self.last_publish.is_some_and(|last| last.elapsed() < PUBLISH_INTERVAL) {
            return;
        }
        self.last_publish = Some(Instant::now());
        if let Ok(mut published) = health.lock() {
            *published = snapshot(pipeline, probes, traced);
        }
    }

    /// The session is ending: no longer ready.
    pub fn finish(&self) {
        if let Some((status, _)) = &self.endpoint {
            status.set_ready(false);
        }
    }
}

/// pytrace's health now.
pub fn snapshot(pipeline: &Pipeline, probes: &Probes, traced: usize) -> Health {
    let kernel = probes.stats();
    let counters = &pipeline.output.summary.counters;
    let export = pipeline.output.otlp.as_ref().map(|sink| sink.counters.clone()).unwrap_or_default();
    Health {
        processes_traced: traced as u64,
        events_received: counters.events_received,
        events_lost: probes::stat(&kernel, Stat::EventsLost),
        events_dropped: counters.events_dropped,
        bytes_truncated: probes::stat(&kernel, Stat::BytesTruncated),
        spans_client: counters.spans_client,
        spans_server: counters.spans_server,
        spans_internal: counters.spans_internal,
        spans_exported: ExportCounters::get(&export.exported),
        spans_failed: ExportCounters::get(&export.failed),
        spans_spooled: ExportCounters::get(&export.spooled),
        spans_dropped: ExportCounters::get(&export.dropped),
        spool_spans: pipeline.output.otlp.as_ref().map_or(0, |sink| sink.spooled_now()),
        probe_failures: probes.attach_failures(),
        metric_overflow: pipeline
            .output
            .metrics
            .as_ref()
            .and_then(|m| m.lock().ok().map(|m| m.overflowed()))
            .unwrap_or(0),
        summary_overflow: counters.summary_overflow,
        kernel_maps: probes.map_usage(),
        limits: counters.limits,
    }
}
