//! The human view: one line per span as it completes, and a table at the end.

use std::fmt::Write as _;

use pytrace_core::model::{Span, SpanKind, Status, semconv as sc};

use super::SpanSink;
use super::summary::Summary;
use super::writer::LineWriter;
use crate::stats::Stats;

/// The terminal's view: a line per span, the summary tables last.
pub struct PrettySink {
    out: LineWriter,
}

impl PrettySink {
    pub fn new(out: Box<dyn std::io::Write + Send>) -> Self {
        Self { out: LineWriter::new(out) }
    }
}

impl SpanSink for PrettySink {
    fn span(&mut self, span: &Span) {
        let line = printable(&span_line(span));
        self.out.write_with(|out| writeln!(out, "{line}"));
    }

    fn flush(&mut self) {
        self.out.flush();
    }

    fn finish(&mut self, summary: &Summary, stats: &Stats) -> std::io::Result<()> {
        let table = printable(&summary_table(summary, stats));
        self.out.finish_with(|out| write!(out, "{table}"))
    }
}

/// Text safe for a terminal: control characters a captured string may
/// carry (escape sequences, carriage returns, bells) are shown escaped
/// (`\u{1b}`) instead of acting on the terminal; line feeds and tabs of
/// pytrace's own layout are kept.
pub fn printable(text: &str) -> String {
    // The common case, per span: nothing to escape, no per-character work.
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text.to_owned();
    }
    text.chars()
        .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

pub fn span_line(span: &Span) -> String {
    if span.attributes.get(sc::GEN_AI_OPERATION_NAME).is_some() {
        return llm_line(span);
    }
    if span.kind == SpanKind::Internal {
        return function_line(span);
    }
    let a = &span.attributes;
    let time = format_clock(span.start_unix_nano);
    let pid = span.resource.attributes.int(sc::PROCESS_PID).unwrap_or_default();
    let method = a.str(sc::HTTP_REQUEST_METHOD).unwrap_or("?");
    let url = a.str(sc::URL_FULL).or_else(|| a.str(sc::URL_PATH)).unwrap_or("?");
    let status = a.int(sc::HTTP_RESPONSE_STATUS_CODE).map_or_else(|| "---".to_owned(), |s| s.to_string());
    let mut line = format!("{time}  pid {pid:<7} {method:<6} {url}  {status}  {}", format_ms(span.duration_ns()));
    if let Some(pytrace_core::model::AttrValue::F64(ttfb)) = a.get(sc::PYTRACE_TIME_TO_FIRST_BYTE) {
        let _ = write!(line, " (ttfb {})", format_ms((ttfb * 1e9) as u64));
    }
    let up = a.int(sc::HTTP_REQUEST_BODY_SIZE).unwrap_or(0);
    let down = a.int(sc::HTTP_RESPONSE_BODY_SIZE).unwrap_or(0);
    let _ = write!(line, "  ↑{} ↓{}", format_bytes(up), format_bytes(down));
    if let Some(reason) = a.str(sc::PYTRACE_INCOMPLETE_REASON) {
        let _ = write!(line, "  [incomplete: {reason}]");
    } else if let Status::Error { .. } = span.status {
        line.push_str("  [error]");
    }
    push_caller(&mut line, span);
    line
}

/// A traced Python function's call (`--trace-function`): its name, where it
/// started and how long it ran.
fn function_line(span: &Span) -> String {
    let time = format_clock(span.start_unix_nano);
    let pid = span.resource.attributes.int(sc::PROCESS_PID).unwrap_or_default();
    let mut line = format!("{time}  pid {pid:<7} ƒ {}  {}", span.name, format_ms(span.duration_ns()));
    if let Some(reason) = span.attributes.str(sc::PYTRACE_INCOMPLETE_REASON) {
        let _ = write!(line, "  [incomplete: {reason}]");
    } else if let Status::Error { .. } = span.status {
        line.push_str("  [error]");
    }
    let a = &span.attributes;
    if let (Some(file), Some(number)) = (a.str(sc::CODE_FILE_PATH), a.int(sc::CODE_LINE_NUMBER)) {
        let _ = write!(line, "  ({}:{number})", file.rsplit('/').next().unwrap_or(file));
    }
    line
}

/// `  ← function (file.py:line)` when the span knows its Python caller.
fn push_caller(line: &mut String, span: &Span) {
    let a = &span.attributes;
    let Some(function) = a.str(sc::CODE_FUNCTION_NAME) else { return };
    let file = a.str(sc::CODE_FILE_PATH).map(|f| f.rsplit('/').next().unwrap_or(f)).unwrap_or("?");
    match a.int(sc::CODE_LINE_NUMBER) {
        Some(number) => {
            let _ = write!(line, "  ← {function} ({file}:{number})");
        }
        None => {
            let _ = write!(line, "  ← {function} ({file})");
        }
    }
}

/// An LLM call: provider, model, tokens (estimates marked `~`), TTFT,
/// duration and cost stand out.
fn llm_line(span: &Span) -> String {
    let a = &span.attributes;
    let time = format_clock(span.start_unix_nano);
    let pid = span.resource.attributes.int(sc::PROCESS_PID).unwrap_or_default();
    let provider = a.str(sc::GEN_AI_PROVIDER_NAME).unwrap_or("?");
    let estimated = if a.get(sc::PYTRACE_USAGE_ESTIMATED).is_some() { "~" } else { "" };
    let tokens = |key| a.int(key).map_or_else(|| "?".to_owned(), |t| format!("{estimated}{t}"));
    let mut line = format!(
        "{time}  pid {pid:<7} ✦ {:<32} {provider:<16} tokens {} in / {} out  {}",
        span.name,
        tokens(sc::GEN_AI_USAGE_INPUT_TOKENS),
        tokens(sc::GEN_AI_USAGE_OUTPUT_TOKENS),
        format_ms(span.duration_ns())
    );
    if let Some(pytrace_core::model::AttrValue::F64(ttft)) = a.get(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
        let _ = write!(line, " (ttft {})", format_ms((ttft * 1e9) as u64));
    }
    if let Some(pytrace_core::model::AttrValue::F64(cost)) = a.get(sc::GEN_AI_USAGE_COST) {
        let _ = write!(line, "  ${cost:.6}");
    }
    if let Some(tools) = a.int(sc::PYTRACE_TOOL_CALL_COUNT) {
        let _ = write!(line, "  tools {tools}");
    }
    if let Some(reason) = a.str(sc::PYTRACE_INCOMPLETE_REASON) {
        let _ = write!(line, "  [incomplete: {reason}]");
    } else if let Status::Error { .. } = span.status {
        let _ = write!(line, "  [error: {}]", a.str(sc::ERROR_TYPE).unwrap_or("?"));
    }
    push_caller(&mut line, span);
    line
}

/// The summary printed when tracing ends: LLM models, served routes,
/// endpoints, then what was counted.
pub fn summary_table(summary: &Summary, stats: &Stats) -> String {
    let mut out = String::new();
    model_table(&mut out, summary);
    route_table(&mut out, summary);
    endpoint_table(&mut out, summary);
    counter_lines(&mut out, stats);
    out
}

/// Calls, errors, tokens, cost and latency per LLM model.
fn model_table(out: &mut String, summary: &Summary) {
    let models = summary.model_stats();
    if !models.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<36} {:>6} {:>6} {:>11} {:>11} {:>11} {:>9} {:>9} {:>9}",
            "LLM MODEL", "CALLS", "ERRORS", "TOKENS IN", "TOKENS OUT", "COST $", "P50", "P95", "TTFT P50"
        );
        for m in &models {
            let estimated = if m.tokens_estimated { "~" } else { "" };
            let _ = writeln!(
                out,
                "{:<36} {:>6} {:>6} {:>11} {:>11} {:>11} {:>9} {:>9} {:>9}",
                format!("{} ({})", m.model, m.provider),
                m.calls,
                m.errors,
                format!("{estimated}{}", m.input_tokens),
                format!("{estimated}{}", m.output_tokens),
                m.cost.map_or_else(|| "-".to_owned(), |c| format!("{c:.6}")),
                format_ms((m.latency_p50_s * 1e9) as u64),
                format_ms((m.latency_p95_s * 1e9) as u64),
                m.ttft_p50_s.map_or_else(|| "-".to_owned(), |t| format_ms((t * 1e9) as u64)),
            );
        }
        let total: f64 = models.iter().filter_map(|m| m.cost).sum();
        let _ = writeln!(out, "LLM total: {} calls, ${total:.6}", models.iter().map(|m| m.calls).sum::<u64>());
    }
}

/// What each served route cost in LLM calls.
fn route_table(out: &mut String, summary: &Summary) {
    let routes: Vec<_> = summary.spending_routes().collect();
    if !routes.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<36} {:>8} {:>9} {:>11} {:>11} {:>11} {:>13}",
            "SERVED ROUTE", "REQUESTS", "LLM CALLS", "TOKENS IN", "TOKENS OUT", "COST $", "COST/REQUEST"
        );
        for r in routes {
            let _ = writeln!(
                out,
                "{:<36} {:>8} {:>9} {:>11} {:>11} {:>11} {:>13}",
                r.route,
                r.requests,
                r.llm_calls,
                r.input_tokens,
                r.output_tokens,
                r.cost.map_or_else(|| "-".to_owned(), |c| format!("{c:.6}")),
                r.cost_per_request().map_or_else(|| "-".to_owned(), |c| format!("{c:.6}")),
            );
        }
    }
}

/// Calls, errors and latency per (method, server).
fn endpoint_table(out: &mut String, summary: &Summary) {
    let _ =
        writeln!(out, "\n{:<8} {:<40} {:>6} {:>6} {:>10} {:>10}", "METHOD", "SERVER", "CALLS", "ERRORS", "P50", "P95");
    for ((method, server), stats) in &summary.endpoints {
        let _ = writeln!(
            out,
            "{method:<8} {server:<40} {:>6} {:>6} {:>10} {:>10}",
            stats.calls,
            stats.errors,
            format_ms(stats.quantile_ns(0.5)),
            format_ms(stats.quantile_ns(0.95))
        );
    }
}

/// Spans, events, truncation, limits reached and OTLP delivery.
fn counter_lines(out: &mut String, c: &Stats) {
    let _ = writeln!(
        out,
        "\n{} spans ({} incomplete); {} events received, {} lost, {} dropped; {} bytes truncated in {} calls; {} uprobe and {} tracepoint hits",
        c.spans_emitted,
        c.spans_incomplete,
        c.events_received,
        c.events_lost,
        c.events_dropped,
        c.bytes_truncated,
        c.calls_truncated,
        c.uprobe_hits,
        c.tracepoint_hits
    );
    if c.limits.any() {
        let reached: Vec<String> =
            c.limits.named().iter().filter(|(_, n)| *n > 0).map(|(limit, n)| format!("{limit} {n}")).collect();
        let _ = writeln!(out, "limits reached (see docs/security.md): {}", reached.join(", "));
    }
    if let Some(otlp) = &c.otlp {
        let _ = writeln!(
            out,
            "OTLP: {} spans exported, {} refused; {} spooled while the collector was unreachable, {} dropped from a full spool, {} waiting in the spool",
            otlp.spans_exported, otlp.spans_failed, otlp.spans_spooled, otlp.spans_dropped, otlp.spans_waiting
        );
    }
}

fn format_clock(unix_nano: u64) -> String {
    let secs = unix_nano / 1_000_000_000;
    let millis = (unix_nano / 1_000_000) % 1000;
    format!("{:02}:{:02}:{:02}.{millis:03}", (secs / 3600) % 24, (secs / 60) % 60, secs % 60)
}

fn format_ms(ns: u64) -> String {
    format!("{:.1}ms", ns as f64 / 1e6)
}

fn format_bytes(n: i64) -> String {
    match n {
        n if n < 1024 => format!("{n}B"),
        n if n < 1024 * 1024 => format!("{:.1}KiB", n as f64 / 1024.0),
        n => format!("{:.1}MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_drive_the_terminal() {
        assert_eq!(printable("GET /a\u{1b}[2J\r\u{7}\u{9b}b\n"), "GET /a\\u{1b}[2J\\u{d}\\u{7}\\u{9b}b\n");
    }

    #[test]
    fn a_function_span_reads_as_a_call_not_a_request() {
        let mut span = Span {
            name: "Agent.step".into(),
            kind: SpanKind::Internal,
            end_unix_nano: 2_500_000,
            ..Span::placeholder()
        };
        span.attributes.set(sc::CODE_FILE_PATH, "/srv/app/agent.py");
        span.attributes.set(sc::CODE_LINE_NUMBER, 12i64);
        assert_eq!(span_line(&span), "00:00:00.000  pid 0       ƒ Agent.step  2.5ms  (agent.py:12)");
    }

    #[test]
    fn formats_units() {
        assert_eq!(format_ms(1_234_567), "1.2ms");
        assert_eq!(format_bytes(10), "10B");
        assert_eq!(format_bytes(2048), "2.0KiB");
        assert_eq!(format_clock(3_600_000_000_000 + 61_005_000_000), "01:01:01.005");
    }
}
