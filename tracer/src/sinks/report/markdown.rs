//! The run's summary as Markdown, fit for `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

use super::{Call, RunReport};

pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    headline(&mut out, report);
    budget_table(&mut out, report);
    model_table(&mut out, report);
    route_table(&mut out, report);
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

/// The verdict and the run in one sentence.
fn headline(out: &mut String, report: &RunReport) {
    let t = &report.totals;
    let verdict = match report.exit_code() {
        0 => "passed".to_owned(),
        code => format!("failed (exit code {code})"),
    };
    let _ = writeln!(out, "## pytrace: {} {verdict}\n", code(&report.command.join(" ")));
    let estimated = if t.tokens_estimated { " (some estimated)" } else { "" };
    let _ = writeln!(
        out,
        "{} HTTP calls from {}; **{} LLM calls** ({} errors), **{} input + {} output tokens**{estimated}, **{}**.\n",
        t.http_calls,
        plural(t.processes as u64, "process", "processes"),
        t.llm_calls,
        t.llm_errors,
        t.input_tokens,
        t.output_tokens,
        usd(t.cost_usd)
    );
}

/// Each budget limit against what was used, and calls to hosts not allowed.
fn budget_table(out: &mut String, report: &RunReport) {
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
            calls_table(out, &report.host_violations);
        }
    }
}

/// LLM calls per model.
fn model_table(out: &mut String, report: &RunReport) {
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
                escape(&m.model),
                escape(&m.provider),
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
}

/// LLM spend per served route.
fn route_table(out: &mut String, report: &RunReport) {
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
                "| {} | {} | {} | {} | {} | {cost} | {per_request} |",
                code(&r.route),
                r.requests,
                r.llm_calls,
                r.input_tokens,
                r.output_tokens
            );
        }
        out.push('\n');
    }
}

fn calls_table(out: &mut String, calls: &[Call]) {
    let _ = writeln!(out, "| call | URL | status | time | PID | from |\n|---|---|---:|---:|---:|---|");
    for call in calls {
        let status =
            call.status_code.map_or_else(|| escape(call.error.as_deref().unwrap_or_default()), |s| s.to_string());
        let _ = writeln!(
            out,
            "| {} | {} | {status} | {} | {} | {} |",
            escape(&call.name),
            code(&call.url),
            seconds(call.duration_s),
            call.pid,
            call.function.as_deref().map(escape).unwrap_or_default()
        );
    }
    out.push('\n');
}

/// Dollars as people write them: two significant digits for the tiny
/// costs of test calls (`$0.00035`), cents and a bit more otherwise.
fn usd(value: f64) -> String {
    if value > 0.0 && value < 0.01 {
        let decimals = (-value.log10()).ceil() as usize + 1;
        format!("${value:.decimals$}")
    } else {
        format!("${value:.4}")
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn seconds(s: f64) -> String {
    if s < 1.0 { format!("{:.0} ms", s * 1e3) } else { format!("{s:.2} s") }
}

fn round(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value}") } else { format!("{value:.4}") }
}

/// Text for a table cell: no pipe, newline or HTML can change the table.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Text as inline code: a backtick cannot end it, a pipe or newline cannot
/// break the table.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'").replace('|', "\\|").replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_read_as_people_write_them() {
        assert_eq!(usd(0.000353), "$0.00035");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(1.5), "$1.5000");
        assert_eq!(usd(0.0), "$0.0000");
        assert_eq!(plural(1, "process", "processes"), "1 process");
    }

    #[test]
    fn no_captured_string_breaks_a_table() {
        assert_eq!(escape("gpt|x\n<b>"), "gpt\\|x &lt;b&gt;");
        assert_eq!(code("/a`b|c\nd"), "`/a'b\\|c d`");
    }
}
