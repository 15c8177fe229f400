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

impl Health {
    /// Every instrument, in a fixed order.
    pub fn metrics(&self) -> Vec<HealthMetric> {
        use HealthKind::{Counter, Gauge};
        let one = |name, unit, description, kind, value| HealthMetric {
            name,
            unit,
            description,
            kind,
            points: vec![(Vec::new(), value)],
        };
        let per_map = |name, description, kind, value: fn(&MapUsage) -> u64| HealthMetric {
            name,
            unit: "{entry}",
            description,
            kind,
            points: self.kernel_maps.iter().map(|m| (vec![("map", m.map.to_owned())], value(m))).collect(),
        };
        vec![
            one("pytrace.processes.traced", "{process}", "Processes being traced.", Gauge, self.processes_traced),
            one("pytrace.events.received", "{event}", "Kernel events received.", Counter, self.events_received),
            one("pytrace.events.lost", "{event}", "Kernel events lost (ring buffer full).", Counter, self.events_lost),
            one(
                "pytrace.events.dropped",
                "{event}",
                "Kernel events dropped (pytrace's backlog full).",
                Counter,
                self.events_dropped,
            ),
            one(
                "pytrace.capture.truncated",
                "By",
                "Bytes not captured (capture limit).",
                Counter,
                self.bytes_truncated,
            ),
            HealthMetric {
                name: "pytrace.spans",
                unit: "{span}",
                description: "Spans produced, by kind.",
                kind: Counter,
                points: [
                    ("client", self.spans_client),
                    ("server", self.spans_server),
                    ("internal", self.spans_internal),
                ]
                .into_iter()
                .map(|(kind, value)| (vec![("span.kind", kind.to_owned())], value))
                .collect(),
            },
            one("pytrace.spans.exported", "{span}", "Spans the collector accepted.", Counter, self.spans_exported),
            one("pytrace.spans.failed", "{span}", "Spans the collector rejected for good.", Counter, self.spans_failed),
            one(
                "pytrace.spans.spooled",
                "{span}",
                "Spans written to the spool while the collector was unreachable.",
                Counter,
                self.spans_spooled,
            ),
            one(
                "pytrace.spans.dropped",
                "{span}",
                "Spooled spans dropped because the spool was full.",
                Counter,
                self.spans_dropped,
            ),
            one("pytrace.spool.spans", "{span}", "Spans waiting in the spool.", Gauge, self.spool_spans),
            one(
                "pytrace.probe.failures",
                "{probe}",
                "Probes that could not be attached.",
                Counter,
                self.probe_failures,
            ),
            one(
                "pytrace.metric.overflow",
                "{measurement}",
                "Measurements counted in an overflow series: the series limit was reached.",
                Counter,
                self.metric_overflow,
            ),
            one(
                "pytrace.summary.overflow",
                "{call}",
                "Calls counted in a summary table's (other) row: the table was full.",
                Counter,
                self.summary_overflow,
            ),
            HealthMetric {
                name: "pytrace.limit.reached",
                unit: "{item}",
                description: "Items forgotten or dropped because a user-space limit was reached, by limit.",
                kind: Counter,
                points: self
                    .limits
                    .named()
                    .into_iter()
                    .map(|(limit, n)| (vec![("limit", limit.to_owned())], n))
                    .collect(),
            },
            per_map("pytrace.kernel_map.capacity", "Entries a kernel map can hold.", Gauge, |m| m.capacity),
            per_map("pytrace.kernel_map.entries", "Entries in a kernel map at its last sweep.", Gauge, |m| m.entries),
            per_map("pytrace.kernel_map.evicted", "Entries a full kernel map evicted to make room.", Counter, |m| {
                m.evicted
            }),
            per_map("pytrace.kernel_map.refused", "Additions a full kernel map refused.", Counter, |m| m.refused),
        ]
    }
}
