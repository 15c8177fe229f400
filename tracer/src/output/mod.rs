//! Where spans go: a JSON-lines writer, a pretty terminal view and OTLP
//! export, fed from one place, plus the summary the first two end with. A closed pipe on stdout ends
//! output quietly instead of failing the session.

pub mod json;
pub mod pretty;
pub mod summary;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use pytrace_core::model::Span;
use summary::Summary;

use crate::metrics::aggregate::Metrics;
use crate::otlp::OtlpSink;
use crate::stats::Stats;

/// Output format for the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Pretty,
    Json,
    /// Nothing on stdout (an agent exporting over OTLP or serving
    /// `/metrics`): only pytrace's messages, on stderr.
    None,
}

/// Writes spans to the configured destinations and keeps the summary.
pub struct Output {
    pretty: Option<Box<dyn Write + Send>>,
    json: Option<Box<dyn Write + Send>>,
    json_spans: json::SpanWriter,
    /// OTLP export, alongside the terminal and file outputs.
    pub otlp: Option<OtlpSink>,
    /// The metrics spans carry, when OTLP or Prometheus wants them.
    pub metrics: Option<Arc<Mutex<Metrics>>>,
    /// Every span, kept for reports written at the end (`pytrace run`).
    pub collected: Option<Vec<Span>>,
    pub summary: Summary,
}

impl Output {
    pub fn new(pretty: Option<Box<dyn Write + Send>>, json: Option<Box<dyn Write + Send>>) -> Self {
        Self {
            pretty,
            json,
            json_spans: json::SpanWriter::default(),
            otlp: None,
            metrics: None,
            collected: None,
            summary: Summary::default(),
        }
    }

    /// The span-derived metrics, kept from now on (for OTLP and `/metrics`).
    pub fn shared_metrics(&mut self) -> Arc<Mutex<Metrics>> {
        self.metrics.get_or_insert_with(Arc::default).clone()
    }

    pub fn span(&mut self, span: &Span) {
        self.summary.record(span);
        if let Some(otlp) = &mut self.otlp {
            otlp.span(span);
        }
        if let Some(metrics) = &self.metrics
            && let Ok(mut metrics) = metrics.lock()
        {
            metrics.record(span);
        }
        if let Some(collected) = &mut self.collected {
            collected.push(span.clone());
        }
        if let Some(w) = &mut self.json
            && self.json_spans.write(w, span).and_then(|()| w.write_all(b"\n")).is_err()
        {
            self.json = None;
        }
        if let Some(w) = &mut self.pretty
            && writeln!(w, "{}", pretty::printable(&pretty::span_line(span))).is_err()
        {
            self.pretty = None;
        }
    }

    /// Pushes the spans written so far out to their destinations; called
    /// once per batch of events rather than once per span.
    pub fn flush(&mut self) {
        if self.json.as_mut().is_some_and(|w| w.flush().is_err()) {
            self.json = None;
        }
        if self.pretty.as_mut().is_some_and(|w| w.flush().is_err()) {
            self.pretty = None;
        }
    }

    /// Writes the closing summary, with pytrace's figures, to every destination.
    pub fn finish(&mut self, stats: &Stats) -> io::Result<()> {
        if let Some(w) = &mut self.json {
            writeln!(w, "{}", json::summary_to_json(&self.summary, stats))?;
            w.flush()?;
        }
        if let Some(w) = &mut self.pretty {
            write!(w, "{}", pretty::printable(&pretty::summary_table(&self.summary, stats)))?;
            w.flush()?;
        }
        Ok(())
    }
}
