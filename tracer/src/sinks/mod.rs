//! Where spans go. Every destination is a [`SpanSink`]: the terminal's
//! pretty view and JSON lines (`pretty`, `json`, over a `writer` that stops
//! quietly when its reader goes away), OTLP export (`otlp`), the metrics
//! derived from spans (`span_metrics`, served by `prometheus` and sent by
//! `otlp`), the spans `pytrace run` keeps for its reports (`report`), and
//! the closing `summary`. [`Sinks`] holds the session's and hands each
//! batch of finished spans to all of them.

pub mod json;
pub mod otlp;
pub mod pretty;
pub mod prometheus;
pub mod report;
pub mod span_metrics;
pub mod summary;
pub mod writer;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use pytrace_core::correlate::serving::ServingCounters;
use pytrace_core::model::Span;
use summary::Summary;

use crate::stats::{OtlpCounters, Stats};
use otlp::OtlpSink;
use span_metrics::Metrics;

/// A destination of finished spans.
pub trait SpanSink {
    /// One finished span.
    fn span(&mut self, span: &Span);

    /// Pushes what it holds on; called once per batch of spans.
    fn flush(&mut self) {}

    /// The session ended: its closing summary, for sinks that write one.
    fn finish(&mut self, _summary: &Summary, _stats: &Stats) -> io::Result<()> {
        Ok(())
    }
}

/// Output format for the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Pretty,
    Json,
    /// Nothing on stdout (an agent exporting over OTLP or serving
    /// `/metrics`): only pytrace's messages, on stderr.
    None,
}

/// The metrics derived from spans, shared with the `/metrics` endpoint.
pub type SharedMetrics = Arc<Mutex<Metrics>>;

impl SpanSink for SharedMetrics {
    fn span(&mut self, span: &Span) {
        if let Ok(mut metrics) = self.lock() {
            metrics.record(span);
        }
    }
}

/// `pytrace run`: every span, for the reports written at the end.
impl SpanSink for Vec<Span> {
    fn span(&mut self, span: &Span) {
        self.push(span.clone());
    }
}

/// A session's destinations.
pub struct Sinks {
    /// The pretty view and JSON lines, on stdout or in a file.
    writers: Vec<Box<dyn SpanSink>>,
    otlp: Option<OtlpSink>,
    metrics: Option<SharedMetrics>,
    collected: Option<Vec<Span>>,
    summary: Summary,
}

impl Sinks {
    /// Pretty lines and JSON lines to `pretty` and `json`, when given.
    pub fn new(pretty: Option<Box<dyn Write + Send>>, json: Option<Box<dyn Write + Send>>) -> Self {
        let mut writers: Vec<Box<dyn SpanSink>> = Vec::new();
        if let Some(out) = pretty {
            writers.push(Box::new(pretty::PrettySink::new(out)));
        }
        if let Some(out) = json {
            writers.push(Box::new(json::JsonSink::new(out)));
        }
        Self { writers, otlp: None, metrics: None, collected: None, summary: Summary::default() }
    }

    /// Keeps every span from now on (`pytrace run`'s reports).
    pub fn collect_spans(&mut self) {
        self.collected.get_or_insert_with(Vec::new);
    }

    /// Exports over OTLP from now on.
    pub fn export_to(&mut self, otlp: OtlpSink) {
        self.otlp = Some(otlp);
    }

    pub fn otlp_mut(&mut self) -> Option<&mut OtlpSink> {
        self.otlp.as_mut()
    }

    /// The span-derived metrics, kept from now on (for OTLP and `/metrics`).
    pub fn shared_metrics(&mut self) -> SharedMetrics {
        self.metrics.get_or_insert_with(Arc::default).clone()
    }

    /// Hands each span to every destination, then flushes them.
    pub fn deliver(&mut self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        for span in &spans {
            for sink in self.each() {
                sink.span(span);
            }
        }
        self.flush();
    }

    /// Pushes the spans written so far out to their destinations.
    pub fn flush(&mut self) {
        for sink in self.each() {
            sink.flush();
        }
    }

    /// How calls were placed under served requests, for the summary.
    pub fn set_serving(&mut self, serving: ServingCounters) {
        self.summary.serving = serving;
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Measurements the span metrics put in an overflow series.
    pub fn metric_overflow(&self) -> u64 {
        self.metrics.as_ref().and_then(|m| m.lock().ok().map(|m| m.overflowed())).unwrap_or(0)
    }

    /// OTLP delivery so far, when exporting.
    pub fn otlp_delivered(&self) -> Option<OtlpCounters> {
        self.otlp.as_ref().map(OtlpSink::delivered)
    }

    /// Writes the closing summary, with pytrace's figures, to every
    /// destination that has one; returns the spans kept for reports.
    pub fn finish(&mut self, stats: &Stats) -> io::Result<Vec<Span>> {
        let summary = self.summary.clone();
        for sink in self.each() {
            sink.finish(&summary, stats)?;
        }
        Ok(self.collected.take().unwrap_or_default())
    }

    /// Every destination, the summary first.
    fn each(&mut self) -> impl Iterator<Item = &mut (dyn SpanSink + 'static)> {
        let Self { writers, otlp, metrics, collected, summary } = self;
        std::iter::once(summary as &mut (dyn SpanSink + 'static))
            .chain(otlp.iter_mut().map(|sink| sink as &mut dyn SpanSink))
            .chain(metrics.iter_mut().map(|sink| sink as &mut dyn SpanSink))
            .chain(collected.iter_mut().map(|sink| sink as &mut dyn SpanSink))
            .chain(writers.iter_mut().map(|sink| sink.as_mut()))
    }
}
