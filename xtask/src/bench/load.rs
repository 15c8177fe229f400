//! Load: HTTPS GETs paced at 2,000 requests/s (four keep-alive connections,
//! http.client) under `pytrace attach`. Every request must become a span and
//! no event may be lost.

use std::path::Path;
use std::process::Command;

use super::processes::{Server, Tracer, Workload};
use crate::shell::step;

const RATE: u32 = 2_000;

#[derive(Clone, Debug, Default)]
pub struct Load {
    pub requests: u64,
    pub achieved_rate: f64,
    pub spans: u64,
    pub events_lost: u64,
    pub cpu_ms: f64,
    pub peak_rss_kib: u64,
}

pub fn measure(python: &Path, server: &Server, quick: bool, dir: &Path) -> anyhow::Result<Load> {
    let seconds = if quick { 2 } else { 10 };
    step(&format!("load: {RATE} requests/s for {seconds} s under pytrace attach"));
    let count = RATE * seconds;
    let mut app = Workload::start(Command::new(python), server, "rate", count, &["--rate", &RATE.to_string()])?;
    let tracer = Tracer::attach(app.pid, &[], dir)?;
    let result = app.run()?;
    let figures = tracer.stop();
    app.finish()?;
    Ok(Load {
        requests: result["count"].as_u64().unwrap_or(0),
        achieved_rate: result["rate"].as_f64().unwrap_or(0.0),
        spans: figures.summary["spans_emitted"].as_u64().unwrap_or(0),
        events_lost: figures.summary["events_lost"].as_u64().unwrap_or(0),
        cpu_ms: figures.cpu_ms,
        peak_rss_kib: figures.peak_rss_kib,
    })
}

pub fn render(load: &Load) -> String {
    format!(
        "## Load: {RATE} requests/s\n\n\
         | requests | achieved rate (/s) | spans | events lost | pytrace CPU (ms) | pytrace peak RSS (MiB) |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.0} | {} | {} | {:.0} | {:.1} |\n",
        load.requests,
        load.achieved_rate,
        load.spans,
        load.events_lost,
        load.cpu_ms,
        load.peak_rss_kib as f64 / 1024.0
    )
}

pub fn to_json(load: &Load) -> serde_json::Value {
    serde_json::json!({
        "rate_asked": RATE,
        "requests": load.requests,
        "achieved_rate": load.achieved_rate,
        "spans": load.spans,
        "events_lost": load.events_lost,
        "pytrace_cpu_ms": load.cpu_ms,
        "pytrace_peak_rss_kib": load.peak_rss_kib,
    })
}
