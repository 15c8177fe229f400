//! The user-space pipeline alone. A session of openai-SDK calls is
//! recorded (`pytrace attach --record`) and replayed without the kernel
//! (`pytrace replay`, pinned to one core) while the workload still runs, so
//! its Python stacks resolve as they do live: events/s and spans/s per core
//! (median of three replays), then memory with 10,000 connections open at
//! once, each waiting for its response.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::processes::{Server, Tracer, Workload};
use crate::shell::{self, step};

const CONNECTIONS: u32 = 10_000;

#[derive(Clone, Debug, Default)]
pub struct PipelineFigures {
    pub events_per_second: f64,
    pub spans_per_second: f64,
    pub events_per_span: f64,
    /// The live recording session's peak RSS.
    pub session_peak_rss_kib: u64,
    /// The replay with `CONNECTIONS` requests in flight.
    pub rss_before_bytes: u64,
    pub rss_open_bytes: u64,
}

impl PipelineFigures {
    /// The live session's memory plus what the open connections added.
    pub fn estimated_rss_open_mib(&self) -> f64 {
        let added = self.rss_open_bytes.saturating_sub(self.rss_before_bytes) as f64;
        (self.session_peak_rss_kib as f64 * 1024.0 + added) / (1024.0 * 1024.0)
    }
}

pub fn measure(python: &Path, server: &Server, quick: bool, dir: &Path) -> anyhow::Result<PipelineFigures> {
    step("pipeline: recording a session of openai SDK calls");
    let count = if quick { 100 } else { 400 };
    let recording = dir.join("session.rec");
    // pytrace writes a recording only as a new file.
    let _ = std::fs::remove_file(&recording);
    let mut app = Workload::start(Command::new(python), server, "openai", count, &["--hold"])?;
    let record = recording.to_string_lossy().into_owned();
    let tracer = Tracer::attach(app.pid, &["--record", &record], dir)?;
    app.run()?;
    let session = tracer.stop();

    step("pipeline: replaying it without the kernel, on one core");
    let repeat = if quick { "10" } else { "40" };
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(replay(&recording, &["--repeat", repeat])?);
    }
    let rate = |run: &serde_json::Value| run["events_per_second"].as_f64().unwrap_or(0.0);
    runs.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let median = &runs[1];
    step(&format!("pipeline: {CONNECTIONS} connections open at once"));
    let open = replay(&recording, &["--connections", &CONNECTIONS.to_string()])?;
    app.finish()?;
    let _ = std::fs::remove_file(&recording);

    let events = median["events"].as_f64().unwrap_or(0.0);
    let spans = median["spans"].as_f64().unwrap_or(0.0);
    Ok(PipelineFigures {
        events_per_second: median["events_per_second"].as_f64().unwrap_or(0.0),
        spans_per_second: median["spans_per_second"].as_f64().unwrap_or(0.0),
        events_per_span: if spans > 0.0 { events / spans } else { 0.0 },
        session_peak_rss_kib: session.peak_rss_kib,
        rss_before_bytes: open["rss_before_bytes"].as_u64().unwrap_or(0),
        rss_open_bytes: open["rss_open_bytes"].as_u64().unwrap_or(0),
    })
}

fn replay(recording: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(shell::pytrace_binary())
        .arg("replay")
        .arg(recording)
        .args(args)
        .output()
        .context("running pytrace replay")?;
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim())
        .with_context(|| format!("pytrace replay printed {text:?}: {}", String::from_utf8_lossy(&output.stderr)))
}

pub fn render(figures: &PipelineFigures) -> String {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let per_connection = figures.rss_open_bytes.saturating_sub(figures.rss_before_bytes) / u64::from(CONNECTIONS);
    format!(
        "## User-space pipeline (recorded events replayed, one core)\n\n\
         | events/s | spans/s | events per span | replay RSS, idle → {CONNECTIONS} requests in flight (MiB) | per connection (bytes) | live session peak RSS (MiB) | estimated pytrace RSS with {CONNECTIONS} in flight (MiB) |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {:.0} | {:.0} | {:.1} | {:.1} → {:.1} | {per_connection} | {:.1} | {:.1} |\n",
        figures.events_per_second,
        figures.spans_per_second,
        figures.events_per_span,
        mib(figures.rss_before_bytes),
        mib(figures.rss_open_bytes),
        figures.session_peak_rss_kib as f64 / 1024.0,
        figures.estimated_rss_open_mib(),
    )
}

pub fn to_json(figures: &PipelineFigures) -> serde_json::Value {
    serde_json::json!({
        "events_per_second": figures.events_per_second,
        "spans_per_second": figures.spans_per_second,
        "events_per_span": figures.events_per_span,
        "connections": CONNECTIONS,
        "replay_rss_before_bytes": figures.rss_before_bytes,
        "replay_rss_open_bytes": figures.rss_open_bytes,
        "session_peak_rss_kib": figures.session_peak_rss_kib,
        "estimated_rss_open_mib": figures.estimated_rss_open_mib(),
    })
}
