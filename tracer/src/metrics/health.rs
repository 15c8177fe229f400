//! pytrace's own health, as one list of instruments both encoders use —
//! OTLP (`pytrace.*` under pytrace's own resource) and Prometheus
//! (`/metrics`): processes traced, kernel events received and lost, spans
//! by kind, OTLP delivery, the spool, probes that failed to attach, and the
//! kernel maps' use and limits.

use crate::probes::MapUsage;

/// A snapshot of the counters, taken by the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub processes_traced: u64,
    pub events_received: u64,
    pub events_lost: u64,
    pub events_dropped: u64,
    pub bytes_truncated: u64,
    pub spans_client: u64,
    pub spans_server: u64,
    pub spans_internal: u64,
    pub spans_exported: u64,
    pub spans_failed: u64,
    pub spans_spooled: u64,
    pub spans_dropped: u64,
    /// Spans in the spool now.
    pub spool_spans: u64,
    pub probe_failures: u64,
    /// Measurements counted in an overflow series (too many series).
    pub metric_overflow: u64,
    /// Calls counted in a summary table's `(other)` row.
    pub summary_overflow: u64,
    pub kernel_maps: Vec<MapUsage>,
    pub limits: pytrace_core::limits::LimitCounters,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthKind {
    /// Cumulative, only goes up.
    Counter,
    /// A current value.
    Gauge,
}

/// One of pytrace's instruments with its points (label sets and values).
#[derive(Clone, Debug, PartialEq)]
pub struct HealthMetric {
    /// The OpenTelemetry name (`pytrace.events.received`).
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub kind: HealthKind,
    pub points: Vec<(Vec<(&'static str, String)>, u64)>,
}

/// An instrument with one unlabelled value: name, unit, description, kind, value.
type Single = (&'static str, &'static str, &'static str, HealthKind, fn(&Health) -> u64);

/// The single-valued instruments before the spans by kind…
const BEFORE_SPANS: &[Single] = &[
    ("pytrace.processes.traced", "{process}", "Processes being traced.", HealthKind::Gauge, |h| h.processes_traced),
    ("pytrace.events.received", "{event}", "Kernel events received.", HealthKind::Counter, |h| h.events_received),
    ("pytrace.events.lost", "{event}", "Kernel events lost (ring buffer full).", HealthKind::Counter, |h| {
        h.events_lost
    }),
    (
        "pytrace.events.dropped",
        "{event}",
        "Kernel events dropped (pytrace's backlog full).",
        HealthKind::Counter,
        |h| h.events_dropped,
    ),
    ("pytrace.capture.truncated", "By", "Bytes not captured (capture limit).", HealthKind::Counter, |h| {
        h.bytes_truncated
    }),
];

/// …and after them.
const AFTER_SPANS: &[Single] = &[
    ("pytrace.spans.exported", "{span}", "Spans the collector accepted.", HealthKind::Counter, |h| h.spans_exported),
    ("pytrace.spans.failed", "{span}", "Spans the collector rejected for good.", HealthKind::Counter, |h| {
        h.spans_failed
    }),
    (
        "pytrace.spans.spooled",
        "{span}",
        "Spans written to the spool while the collector was unreachable.",
        HealthKind::Counter,
        |h| h.spans_spooled,
    ),
    (
        "pytrace.spans.dropped",
        "{span}",
        "Spooled spans dropped because the spool was full.",
        HealthKind::Counter,
        |h| h.spans_dropped,
    ),
    ("pytrace.spool.spans", "{span}", "Spans waiting in the spool.", HealthKind::Gauge, |h| h.spool_spans),
    ("pytrace.probe.failures", "{probe}", "Probes that could not be attached.", HealthKind::Counter, |h| {
        h.probe_failures
    }),
    (
        "pytrace.metric.overflow",
        "{measurement}",
        "Measurements counted in an overflow series: the series limit was reached.",
        HealthKind::Counter,
        |h| h.metric_overflow,
    ),
    (
        "pytrace.summary.overflow",
        "{call}",
        "Calls counted in a summary table's (other) row: the table was full.",
        HealthKind::Counter,
        |h| h.summary_overflow,
    ),
];

/// The kernel maps' instruments, one point per map: name, description, kind, value.
type PerMap = (&'static str, &'static str, HealthKind, fn(&MapUsage) -> u64);
const PER_MAP: &[PerMap] = &[
    ("pytrace.kernel_map.capacity", "Entries a kernel map can hold.", HealthKind::Gauge, |m| m.capacity),
    ("pytrace.kernel_map.entries", "Entries in a kernel map at its last sweep.", HealthKind::Gauge, |m| m.entries),
    ("pytrace.kernel_map.evicted", "Entries a full kernel map evicted to make room.", HealthKind::Counter, |m| {
        m.evicted
    }),
    ("pytrace.kernel_map.refused", "Additions a full kernel map refused.", HealthKind::Counter, |m| m.refused),
];

impl Health {
    /// Every instrument, in a fixed order.
    pub fn metrics(&self) -> Vec<HealthMetric> {
        let single = |&(name, unit, description, kind, value): &Single| HealthMetric {
            name,
            unit,
            description,
            kind,
            points: vec![(Vec::new(), value(self))],
        };
        let labelled = |name, unit, description, label, points: Vec<(&'static str, u64)>| HealthMetric {
            name,
            unit,
            description,
            kind: HealthKind::Counter,
            points: points.into_iter().map(|(value, n)| (vec![(label, value.to_owned())], n)).collect(),
        };
        let spans = [("client", self.spans_client), ("server", self.spans_server), ("internal", self.spans_internal)];
        let mut metrics: Vec<HealthMetric> = BEFORE_SPANS.iter().map(single).collect();
        metrics.push(labelled("pytrace.spans", "{span}", "Spans produced, by kind.", "span.kind", spans.to_vec()));
        metrics.extend(AFTER_SPANS.iter().map(single));
        metrics.push(labelled(
            "pytrace.limit.reached",
            "{item}",
            "Items forgotten or dropped because a user-space limit was reached, by limit.",
            "limit",
            self.limits.named().to_vec(),
        ));
        metrics.extend(PER_MAP.iter().map(|&(name, description, kind, value)| HealthMetric {
            name,
            unit: "{entry}",
            description,
            kind,
            points: self.kernel_maps.iter().map(|m| (vec![("map", m.map.to_owned())], value(m))).collect(),
        }));
        metrics
    }
}
