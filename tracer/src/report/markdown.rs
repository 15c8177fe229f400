//! The run's summary as Markdown, fit for `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

use super::{Call, RunReport};

pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let t = &report.totals;
    let verdict = match report.exit_code() {
        0 => "passed".to_owned(),
        code => format!("failed (exit code {code})"),
    };
    let _ = writeln!(out, "## pytrace: `{}` {verdict}\n", report.command.join(" "));
    let estimated = if t.tokens_estimated { " (some estimated)" } else { "" };
    let _ = writeln!(
        out,
        "{} HTTP calls from {} processes; **{} LLM calls** ({} errors), **{} input + {} output tokens**{estimated}, **{}**.\n",
        t.http_calls,
        t.processes,
        t.llm_calls,
        t.llm_errors,
        t.input_tokens,
        t.output_tokens,
        usd(t.cost_usd)
    );
    if !report.budget.is_empty() || !report.host_violations.is_empty() {
        let _ = writeln!(out, "### Budget and hosts\n\n| limit | allowed | used | |\n|---|---:|---:|---|");
        for check in &report.budget {
            let mark = if check.exceeded { "❌ exceeded" } else { "✅" };
            let _ = writeln!(out, "| {} | {} | {} | {mark} |", check.limit_name, check.limit, round(check.actual));
        }
        if !report.host_violations.is_empty() {
            let _ = writeln!(out, "| allowed hosts | | {} calls elsewhere | ❌ |", report.host_violations.len());
        }
        out.push('\n');
        if !report.host_violations.is_empty() {
            let _ = writeln!(out, "Calls to hosts not allowed:\n");
            calls_table(&mut out, &report.host_violations);
        }
    }
    if !report.models.is_empty() {
        let _ = writeln!(
            out,
            "### LLM calls per model\n\n| model | provider | calls | errors | tokens in | tokens out | cost | p50 | p95 | TTFT p50 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for m in &report.models {
            let cost = m.cost.map_or_else(|| "—".to_owned(), usd);
            let ttft = m.ttft_p50_s.map_or_else(|| "—".to_owned(), seconds);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {cost} | {} | {} | {ttft} |",
                m.model,
                m.provider,
                m.calls,
                m.errors,
                m.input_tokens,
                m.output_tokens,
                seconds(m.latency_p50_s),
                seconds(m.latency_p95_s)
            );
        }
        out.push('\n');
    }
    if !report.routes.is_empty() {
        let _ = writeln!(
            out,
            "### LLM spend per served route\n\n| route | requests | LLM calls | tokens in | tokens out | cost | cost per request |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for r in &report.routes {
            let cost = r.cost.map_or_else(|| "—".to_owned(), usd);
            let per_request = r.cost_per_request().map_or_else(|| "—".to_owned(), usd);
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {cost} | {per_request} |",
                r.route, r.requests, r.llm_calls, r.input_tokens, r.output_tokens
            );
        }
        out.push('\n');
    }
    if !report.slowest.is_empty() {
        let _ = writeln!(out, "### Slowest calls\n");
        calls_table(&mut out, &report.slowest);
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "### Errors\n");
        calls_table(&mut out, &report.errors);
    }
    out
}

fn calls_table(out: &mut String, calls: &[Call]) {
    let _ = writeln!(out, "| call | URL | status | time | PID | from |\n|---|---|---:|---:|---:|---|");
    for call in calls {
        let status = call.status_code.map_or_else(|| call.error.clone().unwrap_or_default(), |s| s.to_string());
        let _ = writeln!(
            out,
            "| {} | `{}` | {status} | {} | {} | {} |",
            escape(&call.name),
            call.url.replace('`', "'"),
            seconds(call.duration_s),
            call.pid,
            call.function.as_deref().map(escape).unwrap_or_default()
        );
    }
    out.push('\n');
}

/// Dollars, with significant digits for the tiny costs of test calls.
fn usd(value: f64) -> String {
    if value > 0.0 && value < 0.01 { format!("${value:.3e}") } else { format!("${value:.4}") }
}

fn seconds(s: f64) -> String {
    if s < 1.0 { format!("{:.0} ms", s * 1e3) } else { format!("{s:.2} s") }
}

fn round(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value}") } else { format!("{value:.4}") }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}
