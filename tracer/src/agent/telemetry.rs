//! A session's own telemetry: the one [`Stats`] snapshot the summary, OTLP
//! and `/metrics` report, and — with `--metrics-address` — the endpoint that serves
//! `/metrics`, `/healthz` and `/readyz`, kept up to date once a second.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracer_common::Stat;

use crate::notices::notice;
use crate::pipeline::Pipeline;
use crate::probes::{self, Probes};
use crate::sinks::Sinks;
use crate::sinks::prometheus::encode::Shared;
use crate::sinks::prometheus::endpoint::{self, EndpointError, Status};
use crate::stats::Stats;

/// How often the endpoint's health snapshot is refreshed.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

pub struct Telemetry {
    endpoint: Option<(Arc<Status>, Arc<Mutex<Stats>>)>,
    last_publish: Option<Instant>,
}

impl Telemetry {
    /// Opens the endpoint when `address` is given; the sinks then keep the
    /// span-derived metrics it serves.
    pub async fn start(address: Option<SocketAddr>, sinks: &mut Sinks) -> Result<Self, EndpointError> {
        let Some(address) = address else { return Ok(Self { endpoint: None, last_publish: None }) };
        let shared = Shared { metrics: sinks.shared_metrics(), stats: Arc::default() };
        let published = shared.stats.clone();
        let (status, bound) = endpoint::serve(address, shared).await?;
        notice!("serving /metrics, /healthz and /readyz on http://{bound}");
        status.beat();
        Ok(Self { endpoint: Some((status, published)), last_publish: None })
    }

    /// Probes are attached: `/readyz` says so from now on.
    pub fn ready(&self) {
        if let Some((status, _)) = &self.endpoint {
            status.set_ready(true);
        }
    }

    /// Called from the session's loop: marks it alive and refreshes the
    /// published snapshot, taken by `stats`, when due.
    pub fn tick(&mut self, stats: impl FnOnce() -> Stats) {
        let Some((status, published)) = &self.endpoint else { return };
        status.beat();
        if self.last_publish.is_some_and(|last| last.elapsed() < PUBLISH_INTERVAL) {
            return;
        }
        self.last_publish = Some(Instant::now());
        if let Ok(mut published) = published.lock() {
            *published = stats();
        }
    }

    /// The session is ending: no longer ready.
    pub fn finish(&self) {
        if let Some((status, _)) = &self.endpoint {
            status.set_ready(false);
        }
    }
}

/// What the session's loop counts itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopCounts {
    /// Processes traced now.
    pub traced: usize,
    /// Records the drainer dropped (its backlog full).
    pub events_dropped: u64,
}

/// pytrace's figures now: the one place they are gathered, for the
/// summary, `/metrics` and OTLP alike.
pub fn snapshot(pipeline: &Pipeline, sinks: &Sinks, probes: &Probes, counts: LoopCounts) -> Stats {
    let LoopCounts { traced, events_dropped } = counts;
    let kernel = probes.stats();
    let kernel_stat = |which| probes::stat(&kernel, which);
    let engine = pipeline.engine_counters();
    let spans = &sinks.summary().spans;
    Stats {
        processes_traced: traced as u64,
        spans_emitted: spans.emitted,
        spans_incomplete: spans.incomplete,
        spans_client: spans.client,
        spans_server: spans.server,
        spans_internal: spans.internal,
        bodies_undecodable: spans.bodies_undecodable,
        summary_overflow: spans.summary_overflow,
        metric_overflow: sinks.metric_overflow(),
        events_received: engine.events_received,
        events_lost: kernel_stat(Stat::EventsLost),
        events_dropped,
        events_undecodable: engine.events_undecodable,
        calls_truncated: kernel_stat(Stat::CallsTruncated),
        bytes_truncated: kernel_stat(Stat::BytesTruncated),
        read_errors: kernel_stat(Stat::ReadErrors),
        uprobe_hits: kernel_stat(Stat::UprobeHits),
        tracepoint_hits: kernel_stat(Stat::TracepointHits),
        probe_failures: probes.attach_failures(),
        kernel_programs: probes.program_run_times(),
        kernel_maps: probes.map_usage(),
        limits: engine.limits,
        otlp: sinks.otlp_delivered(),
    }
}
