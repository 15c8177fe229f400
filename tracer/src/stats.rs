//! pytrace's own figures as one snapshot, [`Stats`]: what the kernel, the
//! engine, the outputs and OTLP delivery counted. The agent takes it in one
//! place (`agent::telemetry::snapshot`) and every reader gets the same one:
//! the closing summary (pretty and JSON), `pytrace run`'s reports, and —
//! as one list of instruments, [`Stats::instruments`] — OTLP's `pytrace.*`
//! metrics and Prometheus's `/metrics`.

use std::collections::BTreeMap;

use crate::probes::{MapUsage, ProgramRunTime};

/// Everything pytrace counted, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Processes being traced now.
    pub processes_traced: u64,
    pub spans_emitted: u64,
    pub spans_incomplete: u64,
    /// Spans by kind: an HTTP or LLM call made, a request served, a traced function.
    pub spans_client: u64,
    pub spans_server: u64,
    pub spans_internal: u64,
    /// LLM calls whose body could not be read (`pytrace.body.undecodable`).
    pub bodies_undecodable: u64,
    /// Calls counted in an `(other)` row: a summary table was full.
    pub summary_overflow: u64,
    /// Measurements counted in an overflow series: the series limit was reached.
    pub metric_overflow: u64,
    pub events_received: u64,
    pub events_lost: u64,
    /// Dropped after the ring buffer: pytrace's backlog of records was full.
    pub events_dropped: u64,
    pub events_undecodable: u64,
    pub calls_truncated: u64,
    pub bytes_truncated: u64,
    pub read_errors: u64,
    /// Uprobe hits by the traced processes.
    pub uprobe_hits: u64,
    /// Syscall tracepoint hits by the traced processes.
    pub tracepoint_hits: u64,
    /// Probes that could not be attached.
    pub probe_failures: u64,
    /// Runs and time in each kernel program (`--program-stats`), host-wide.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kernel_programs: BTreeMap<String, ProgramRunTime>,
    /// Use and limits of the kernel maps holding per-process state.
    pub kernel_maps: Vec<MapUsage>,
    /// How often user space's limits were reached.
    pub limits: pytrace_core::limits::LimitCounters,
    /// OTLP delivery, when exporting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpCounters>,
}

/// What became of the spans sent over OTLP.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpCounters {
    /// Accepted by the collector (including spans from the spool).
    pub spans_exported: u64,
    /// Refused by the collector for good.
    pub spans_failed: u64,
    /// Written to the spool while the collector was unreachable.
    pub spans_spooled: u64,
    /// Dropped from a full spool.
    pub spans_dropped: u64,
    /// In the spool now (at exit: for the next run to send).
    pub spans_waiting: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrumentKind {
    /// Cumulative, only goes up.
    Counter,
    /// A current value.
    Gauge,
}

/// One of pytrace's instruments with its points (label sets and values).
#[derive(Clone, Debug, PartialEq)]
pub struct Instrument {
    /// The OpenTelemetry name (`pytrace.events.received`).
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub kind: InstrumentKind,
    pub points: Vec<(Vec<(&'static str, String)>, u64)>,
}

/// An instrument with one unlabelled value: name, unit, description, kind, value.
type Single = (&'static str, &'static str, &'static str, InstrumentKind, fn(&Stats) -> u64);

/// The single-valued instruments before the spans by kind…
const BEFORE_SPANS: &[Single] = &[
    ("pytrace.processes.traced", "{process}", "Processes being traced.", InstrumentKind::Gauge, |s| s.processes_traced),
    ("pytrace.events.received", "{event}", "Kernel events received.", InstrumentKind::Counter, |s| s.events_received),
    ("pytrace.events.lost", "{event}", "Kernel events lost (ring buffer full).", InstrumentKind::Counter, |s| {
        s.events_lost
    }),
    (
        "pytrace.events.dropped",
        "{event}",
        "Kernel events dropped (pytrace's backlog full).",
        InstrumentKind::Counter,
        |s| s.events_dropped,
    ),
    ("pytrace.capture.truncated", "By", "Bytes not captured (capture limit).", InstrumentKind::Counter, |s| {
        s.bytes_truncated
    }),
];

/// …and after them.
const AFTER_SPANS: &[Single] = &[
    ("pytrace.spans.exported", "{span}", "Spans the collector accepted.", InstrumentKind::Counter, |s| {
        s.otlp_count(|o| o.spans_exported)
    }),
    ("pytrace.spans.failed", "{span}", "Spans the collector rejected for good.", InstrumentKind::Counter, |s| {
        s.otlp_count(|o| o.spans_failed)
    }),
    (
        "pytrace.spans.spooled",
        "{span}",
        "Spans written to the spool while the collector was unreachable.",
        InstrumentKind::Counter,
        |s| s.otlp_count(|o| o.spans_spooled),
    ),
    (
        "pytrace.spans.dropped",
        "{span}",
        "Spooled spans dropped because the spool was full.",
        InstrumentKind::Counter,
        |s| s.otlp_count(|o| o.spans_dropped),
    ),
    ("pytrace.spool.spans", "{span}", "Spans waiting in the spool.", InstrumentKind::Gauge, |s| {
        s.otlp_count(|o| o.spans_waiting)
    }),
    ("pytrace.probe.failures", "{probe}", "Probes that could not be attached.", InstrumentKind::Counter, |s| {
        s.probe_failures
    }),
    (
        "pytrace.metric.overflow",
        "{measurement}",
        "Measurements counted in an overflow series: the series limit was reached.",
        InstrumentKind::Counter,
        |s| s.metric_overflow,
    ),
    (
        "pytrace.summary.overflow",
        "{call}",
        "Calls counted in a summary table's (other) row: the table was full.",
        InstrumentKind::Counter,
        |s| s.summary_overflow,
    ),
];

/// The kernel maps' instruments, one point per map: name, description, kind, value.
type PerMap = (&'static str, &'static str, InstrumentKind, fn(&MapUsage) -> u64);
const PER_MAP: &[PerMap] = &[
    ("pytrace.kernel_map.capacity", "Entries a kernel map can hold.", InstrumentKind::Gauge, |m| m.capacity),
    ("pytrace.kernel_map.entries", "Entries in a kernel map at its last sweep.", InstrumentKind::Gauge, |m| m.entries),
    ("pytrace.kernel_map.evicted", "Entries a full kernel map evicted to make room.", InstrumentKind::Counter, |m| {
        m.evicted
    }),
    ("pytrace.kernel_map.refused", "Additions a full kernel map refused.", InstrumentKind::Counter, |m| m.refused),
];

impl Stats {
    /// One of the OTLP delivery counts; 0 when not exporting.
    fn otlp_count(&self, count: fn(&OtlpCounters) -> u64) -> u64 {
        self.otlp.as_ref().map_or(0, count)
    }

    /// Every instrument, in a fixed order.
    pub fn instruments(&self) -> Vec<Instrument> {
        let single = |&(name, unit, description, kind, value): &Single| Instrument {
            name,
            unit,
            description,
            kind,
            points: vec![(Vec::new(), value(self))],
        };
        let labelled = |name, unit, description, label, points: Vec<(&'static str, u64)>| Instrument {
            name,
            unit,
            description,
            kind: InstrumentKind::Counter,
            points: points.into_iter().map(|(value, n)| (vec![(label, value.to_owned())], n)).collect(),
        };
        let spans = [("client", self.spans_client), ("server", self.spans_server), ("internal", self.spans_internal)];
        let mut instruments: Vec<Instrument> = BEFORE_SPANS.iter().map(single).collect();
        instruments.push(labelled("pytrace.spans", "{span}", "Spans produced, by kind.", "span.kind", spans.to_vec()));
        instruments.extend(AFTER_SPANS.iter().map(single));
        instruments.push(labelled(
            "pytrace.limit.reached",
            "{item}",
            "Items forgotten or dropped because a user-space limit was reached, by limit.",
            "limit",
            self.limits.named().to_vec(),
        ));
        instruments.extend(PER_MAP.iter().map(|&(name, description, kind, value)| Instrument {
            name,
            unit: "{entry}",
            description,
            kind,
            points: self.kernel_maps.iter().map(|m| (vec![("map", m.map.to_owned())], value(m))).collect(),
        }));
        instruments
    }
}
