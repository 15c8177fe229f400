//! Hostile traffic: what pytrace costs while a traced program receives what
//! an attacker (or a broken server) could send — streams of special tokens
//! without usage, a gzip bomb, a new model name on every call, connections
//! that never close. Each runs under `pytrace attach`; its peak RSS is held
//! against the targets of the hardening issue (128 MiB; 64 MiB for the
//! bomb), and the limits the summary counts are shown.

use std::path::Path;
use std::process::Command;

use super::processes::{Server, Tracer, Workload};
use crate::shell::step;

/// (workload, calls in quick mode, calls in a full run, RSS target in MiB)
const SCENARIOS: &[(&str, u32, u32, u64)] = &[
    ("special-tokens", 5, 20, 128),
    ("gzip-bomb", 2, 5, 64),
    ("models", 500, 5_000, 128),
    ("connections", 300, 900, 128),
];

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub workload: &'static str,
    pub calls: u32,
    pub target_mib: u64,
    pub spans: u64,
    pub events_lost: u64,
    pub cpu_ms: f64,
    pub peak_rss_kib: u64,
    /// Limits reached, bodies undecodable and summary rows folded, as the summary counts them.
    pub limits: serde_json::Value,
}

pub fn measure(python: &Path, server: &Server, quick: bool, dir: &Path) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for &(workload, quick_calls, calls, target_mib) in SCENARIOS {
        let calls = if quick { quick_calls } else { calls };
        step(&format!("hostile: {workload}, {calls} calls under pytrace attach"));
        let mut app = Workload::start(Command::new(python), server, workload, calls, &[])?;
        let tracer = Tracer::attach(app.pid, &[], dir)?;
        app.run()?;
        let figures = tracer.stop();
        drop(app);
        let summary = &figures.summary;
        outcomes.push(Outcome {
            workload,
            calls,
            target_mib,
            spans: summary["spans_emitted"].as_u64().unwrap_or(0),
            events_lost: summary["events_lost"].as_u64().unwrap_or(0) + summary["events_dropped"].as_u64().unwrap_or(0),
            cpu_ms: figures.cpu_ms,
            peak_rss_kib: figures.peak_rss_kib,
            limits: serde_json::json!({
                "limits": summary["limits"],
                "bodies_undecodable": summary["bodies_undecodable"],
                "summary_overflow": summary["summary_overflow"],
            }),
        });
    }
    Ok(outcomes)
}

pub fn render(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "## Hostile traffic\n\n\
         | workload | calls (+10 warm-up) | spans | events lost | pytrace CPU (ms) | pytrace peak RSS (MiB) | target (MiB) | limits counted |\n\
         |---|---:|---:|---:|---:|---:|---|---|\n",
    );
    for o in outcomes {
        let rss_mib = o.peak_rss_kib as f64 / 1024.0;
        let verdict = if rss_mib <= o.target_mib as f64 { "met" } else { "**not met**" };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {:.1} | ≤ {} ({verdict}) | {} |\n",
            o.workload,
            o.calls,
            o.spans,
            o.events_lost,
            o.cpu_ms,
            rss_mib,
            o.target_mib,
            counted(&o.limits)
        ));
    }
    out
}

/// The non-zero counters, as `name n` pairs.
fn counted(limits: &serde_json::Value) -> String {
    let mut named: Vec<String> = Vec::new();
    if let Some(map) = limits["limits"].as_object() {
        named.extend(map.iter().filter(|(_, v)| v.as_u64().unwrap_or(0) > 0).map(|(k, v)| format!("{k} {v}")));
    }
    for key in ["bodies_undecodable", "summary_overflow"] {
        if let Some(n) = limits[key].as_u64().filter(|n| *n > 0) {
            named.push(format!("{key} {n}"));
        }
    }
    if named.is_empty() { "—".to_owned() } else { named.join(", ") }
}

pub fn to_json(outcomes: &[Outcome]) -> serde_json::Value {
    outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "workload": o.workload,
                "calls": o.calls,
                "spans": o.spans,
                "events_lost": o.events_lost,
                "pytrace_cpu_ms": o.cpu_ms,
                "pytrace_peak_rss_kib": o.peak_rss_kib,
                "target_mib": o.target_mib,
                "counted": o.limits,
            })
        })
        .collect()
}
