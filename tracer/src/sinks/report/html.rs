//! A single-file HTML report that needs no network: the run's figures, a
//! waterfall of every span per process and thread (click a bar for its
//! details), and per-model token and cost charts. The data is embedded as
//! JSON and drawn by a small inline script.

use pytrace_core::model::{Span, semconv as sc};
use serde_json::json;

use super::RunReport;
use crate::sinks::json::attributes_to_json;

pub fn render(report: &RunReport, spans: &[Span]) -> String {
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let rows: Vec<serde_json::Value> = spans
        .iter()
        .map(|span| {
            json!({
                "name": span.name,
                "kind": span.kind.as_str(),
                "pid": span.resource.attributes.int(sc::PROCESS_PID).unwrap_or(0),
                "service": span.resource.attributes.str(sc::SERVICE_NAME).unwrap_or_default(),
                "tid": span.attributes.int(sc::THREAD_ID).unwrap_or(0),
                "start_ms": (span.start_unix_nano.saturating_sub(start)) as f64 / 1e6,
                "duration_ms": span.duration_ns() as f64 / 1e6,
                "error": matches!(span.status, pytrace_core::model::Status::Error { .. }),
                "llm": span.attributes.get(sc::GEN_AI_OPERATION_NAME).is_some(),
                "span_id": span.span_id.to_string(),
                "parent": span.parent_span_id.map(|id| id.to_string()),
                "attributes": attributes_to_json(&span.attributes),
            })
        })
        .collect();
    let data = script_safe_json(&json!({ "report": report, "spans": rows }));
    // The title first, the data last: nothing inserted is searched again.
    TEMPLATE.replace("{{TITLE}}", &escape(&report.command.join(" "))).replace("/*DATA*/null", &data)
}

/// JSON that no captured string can break out of inside `<script>`: `<`,
/// `>` and `&` written as `\u` escapes (so no `</script>` and no `<!--`
/// that would change how the element is parsed), and the two line
/// separators JavaScript once treated as line ends.
fn script_safe_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('/', "&#47;")
        .replace('{', "&#123;")
}

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>pytrace: {{TITLE}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.muted{color:#667} .bad{color:#b3261e;font-weight:600} .good{color:#1b7f3a}
table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #e4e6eb;text-align:left}
th{background:#f4f5f7} td.n{text-align:right;font-variant-numeric:tabular-nums}
#waterfall{border:1px solid #e4e6eb;overflow-x:auto} .lane{font-size:12px;fill:#445}
.bar{cursor:pointer} .bar:hover{opacity:.75}
#details{white-space:pre-wrap;font:12px ui-monospace,monospace;background:#f7f8fa;border:1px solid #e4e6eb;padding:10px;min-height:40px}
.charts{display:flex;gap:40px;flex-wrap:wrap}
</style></head><body>
<h1>pytrace run</h1>
<div class="muted" id="command"></div>
<div id="verdict"></div>
<h2>Totals</h2><div id="totals"></div>
<h2>Timeline</h2>
<div class="muted">Each bar is a call (LLM calls in purple, errors in red, functions in grey), one lane per process and thread. Click a bar for its details.</div>
<div id="waterfall"></div>
<div id="details">Click a bar.</div>
<h2>LLM calls per model</h2><div class="charts"><div id="tokens"></div><div id="cost"></div></div><div id="models"></div>
<h2>LLM spend per served route</h2><div id="routes"></div>
<h2>Budget and hosts</h2><div id="budget"></div>
<script id="data" type="application/json">/*DATA*/null</script>
<script>
const data = JSON.parse(document.getElementById('data').textContent);
const r = data.report, spans = data.spans;
const el = id => document.getElementById(id);
const usd = v => '$' + (v > 0 && v < 0.01 ? v.toPrecision(3) : v.toFixed(4));
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
el('command').textContent = r.command.join(' ');
const code = r.exit_code !== 0 ? r.exit_code : (r.budget.some(b => b.exceeded) ? 70 : (r.host_violations.length ? 71 : 0));
el('verdict').innerHTML = code === 0 ? '<span class="good">passed</span>' : `<span class="bad">failed (exit code ${code})</span>`;
const t = r.totals;
el('totals').innerHTML = `<table><tr><th>processes</th><th>HTTP calls</th><th>LLM calls</th><th>LLM errors</th><th>input tokens</th><th>output tokens</th><th>cost</th></tr>
<tr><td class="n">${t.processes}</td><td class="n">${t.http_calls}</td><td class="n">${t.llm_calls}</td><td class="n">${t.llm_errors}</td><td class="n">${t.input_tokens}</td><td class="n">${t.output_tokens}${t.tokens_estimated ? ' ~' : ''}</td><td class="n">${usd(t.cost_usd)}</td></tr></table>`;
// Waterfall: lanes by process and thread, bars by time.
const lanes = [...new Set(spans.map(s => `${s.pid}/${s.tid}`))].sort();
const end = Math.max(1, ...spans.map(s => s.start_ms + s.duration_ms));
const width = 1100, left = 190, rowH = 22, height = lanes.length * rowH + 30;
let svg = `<svg id="timeline" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">`;
for (let i = 0; i <= 10; i++) {
  const x = left + (width - left - 10) * i / 10;
  const anchor = i === 10 ? 'end' : 'middle';
  svg += `<line x1="${x}" y1="0" x2="${x}" y2="${height - 20}" stroke="#eef0f3"/><text class="lane" x="${x}" y="${height - 6}" text-anchor="${anchor}">${(end * i / 10).toFixed(0)} ms</text>`;
}
lanes.forEach((lane, i) => {
  const [pid, tid] = lane.split('/');
  const service = (spans.find(s => `${s.pid}/${s.tid}` === lane) || {}).service || '';
  svg += `<text class="lane" x="4" y="${i * rowH + 15}">${esc(service)} ${pid}${tid !== '0' ? ' / ' + tid : ''}</text>`;
});
spans.forEach((s, index) => {
  const lane = lanes.indexOf(`${s.pid}/${s.tid}`);
  const x = left + (width - left - 10) * s.start_ms / end;
  const w = Math.max(2, (width - left - 10) * s.duration_ms / end);
  const color = s.error ? '#d93025' : (s.llm ? '#7b4fd6' : (s.kind === 'internal' ? '#9aa0a6' : '#1a73e8'));
  svg += `<rect class="bar" data-index="${index}" x="${x}" y="${lane * rowH + 4}" width="${w}" height="14" rx="2" fill="${color}"><title>${esc(s.name)} ${s.duration_ms.toFixed(1)} ms</title></rect>`;
});
el('waterfall').innerHTML = svg + '</svg>';
el('waterfall').addEventListener('click', e => {
  const i = e.target.getAttribute && e.target.getAttribute('data-index');
  if (i === null) return;
  const s = spans[+i];
  el('details').textContent = `${s.name} — ${s.duration_ms.toFixed(2)} ms, PID ${s.pid}, thread ${s.tid}\n` + JSON.stringify(s.attributes, null, 2);
});
// Per-model charts and table.
function bars(id, title, values, format) {
  const max = Math.max(1e-12, ...values.map(v => v[1]));
  let out = `<svg width="460" height="${values.length * 26 + 30}" xmlns="http://www.w3.org/2000/svg"><text x="0" y="14" font-weight="600">${title}</text>`;
  values.forEach(([label, value], i) => {
    const w = 200 * value / max;
    out += `<text class="lane" x="0" y="${i * 26 + 40}">${esc(label)}</text><rect x="170" y="${i * 26 + 28}" width="${w}" height="16" fill="#7b4fd6"/><text class="lane" x="${176 + w}" y="${i * 26 + 40}">${format(value)}</text>`;
  });
  el(id).innerHTML = out + '</svg>';
}
if (r.models.length) {
  bars('tokens', 'Tokens (in + out)', r.models.map(m => [m.model, m.input_tokens + m.output_tokens]), v => v.toFixed(0));
  bars('cost', 'Cost (USD)', r.models.map(m => [m.model, m.cost || 0]), usd);
  el('models').innerHTML = '<table><tr><th>model</th><th>provider</th><th>calls</th><th>errors</th><th>tokens in</th><th>tokens out</th><th>cost $</th><th>p50 s</th><th>p95 s</th><th>TTFT p50 s</th></tr>' +
    r.models.map(m => `<tr><td>${esc(m.model)}</td><td>${esc(m.provider)}</td><td class="n">${m.calls}</td><td class="n">${m.errors}</td><td class="n">${m.input_tokens}</td><td class="n">${m.output_tokens}</td><td class="n">${m.cost == null ? '—' : usd(m.cost)}</td><td class="n">${m.latency_p50_s.toFixed(3)}</td><td class="n">${m.latency_p95_s.toFixed(3)}</td><td class="n">${m.ttft_p50_s == null ? '—' : m.ttft_p50_s.toFixed(3)}</td></tr>`).join('') + '</table>';
} else { el('models').textContent = 'No LLM calls.'; }
el('routes').innerHTML = r.routes.length ? '<table><tr><th>route</th><th>requests</th><th>LLM calls</th><th>tokens in</th><th>tokens out</th><th>cost $</th><th>cost per request $</th></tr>' +
  r.routes.map(x => `<tr><td>${esc(x.route)}</td><td class="n">${x.requests}</td><td class="n">${x.llm_calls}</td><td class="n">${x.input_tokens}</td><td class="n">${x.output_tokens}</td><td class="n">${x.cost == null ? '—' : usd(x.cost)}</td><td class="n">${x.cost == null || !x.requests ? '—' : usd(x.cost / x.requests)}</td></tr>`).join('') + '</table>'
  : 'No served request made LLM calls.';
el('budget').innerHTML = (r.budget.length ? '<table><tr><th>limit</th><th>allowed</th><th>used</th><th></th></tr>' +
  r.budget.map(b => `<tr><td>${b.limit_name}</td><td class="n">${b.limit}</td><td class="n">${+b.actual.toFixed(4)}</td><td class="${b.exceeded ? 'bad' : 'good'}">${b.exceeded ? 'exceeded' : 'ok'}</td></tr>`).join('') + '</table>' : '<div class="muted">No budget set.</div>') +
  (r.host_violations.length ? '<p class="bad">Calls to hosts not allowed:</p><ul>' + r.host_violations.map(c => `<li>${esc(c.name)} ${esc(c.url)} (PID ${c.pid})</li>`).join('') + '</ul>' : '');
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_captured_string_breaks_out_of_the_data() {
        let hostile = "<!--<script> </script> {{TITLE}} /*DATA*/null \\ \u{2028}\u{2029} & \"";
        let data = script_safe_json(&json!({ "url": hostile }));
        assert!(!data.contains('<') && !data.contains('>') && !data.contains('\u{2028}'), "{data}");
        let back: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(back["url"], hostile, "the same string once parsed");
        assert_eq!(
            escape("a </title> {{TITLE}} /*DATA*/null"),
            "a &lt;&#47;title&gt; &#123;&#123;TITLE}} &#47;*DATA*&#47;null"
        );
    }
}
