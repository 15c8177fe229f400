//! Node: `pytrace node` on a host of 50 Python processes — 40 idle, 10 busy
//! making 50 HTTPS requests/s each (500/s in total, one keep-alive
//! connection each) — started after pytrace, so it finds every one by its
//! exec. Measured over the busy window: pytrace's CPU as a share of one
//! core, its peak RSS, events lost, and spans against requests. Targets:
//! ≤ 3 % of one core, ≤ 96 MiB, nothing lost. pytrace runs in a memory
//! cgroup of its own, as in a pod: what the cgroup is charged — its pages
//! and its kernel maps and ring buffer — when it has just started, once it
//! has attached to every process, and at its peak under the load is what
//! the Helm chart's memory request and limit are set from. The benchmark's server
//! (Python too) is left out with `--exclude`, so the figures are the
//! clients'.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::cgroup::MemoryCgroup;
use super::processes::{Server, Tracer, Workload};
use crate::shell::step;

const IDLE: usize = 40;
const BUSY: usize = 10;
const RATE_PER_PROCESS: u32 = 50;

#[derive(Clone, Debug, Default)]
pub struct Node {
    pub processes_traced: u64,
    pub requests: u64,
    pub seconds: f64,
    pub spans: u64,
    pub events_lost: u64,
    /// pytrace's CPU over the busy window, as a share of one core.
    pub cpu_percent: f64,
    pub peak_rss_kib: u64,
    /// The memory cgroup's charge (KiB): pytrace started, nothing traced yet.
    pub cgroup_started_kib: u64,
    /// … attached to every process, before the load.
    pub cgroup_attached_kib: u64,
    /// … its peak, load included.
    pub cgroup_peak_kib: u64,
}

pub fn measure(python: &Path, server: &Server, quick: bool, dir: &Path) -> anyhow::Result<Node> {
    let seconds = if quick { 5 } else { 20 };
    step(&format!(
        "node: pytrace node over {IDLE} idle and {BUSY} busy Python processes, {} HTTPS requests/s for {seconds} s",
        BUSY as u32 * RATE_PER_PROCESS
    ));
    let cgroup = MemoryCgroup::create("pytrace-bench-node")?;
    let tracer = Tracer::node_in(&cgroup, &["--exclude", "cmdline=*server.py*"], dir)?;
    let cgroup_started_kib = cgroup.current_kib();
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(Workload::start(Command::new(python), server, "idle", 0, &[])?);
    }
    let mut busy = Vec::new();
    let rate = RATE_PER_PROCESS.to_string();
    for _ in 0..BUSY {
        let extra = ["--rate", rate.as_str(), "--connections", "1"];
        busy.push(Workload::start(Command::new(python), server, "rate", RATE_PER_PROCESS * seconds, &extra)?);
    }
    // Let pytrace finish setting up the last processes it found.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let cgroup_attached_kib = cgroup.current_kib();
    let cpu_before = tracer.cpu_ms();
    let started = Instant::now();
    for workload in &mut busy {
        workload.go()?;
    }
    let mut requests = 0;
    for workload in &mut busy {
        requests += workload.result()?["count"].as_u64().unwrap_or(0);
    }
    let window = started.elapsed().as_secs_f64();
    let cpu_ms = tracer.cpu_ms() - cpu_before;
    // The idle ones exit once told (the busy ones have).
    for workload in &mut idle {
        workload.go()?;
    }
    let cgroup_peak_kib = cgroup.peak_kib();
    let figures = tracer.stop();
    for workload in idle.into_iter().chain(busy) {
        workload.finish()?;
    }
    Ok(Node {
        processes_traced: (IDLE + BUSY) as u64,
        requests,
        seconds: window,
        spans: figures.summary["spans_client"].as_u64().unwrap_or(0),
        events_lost: figures.summary["events_lost"].as_u64().unwrap_or(0),
        cpu_percent: cpu_ms / 10.0 / window,
        peak_rss_kib: figures.peak_rss_kib,
        cgroup_started_kib,
        cgroup_attached_kib,
        cgroup_peak_kib,
    })
}

pub fn render(node: &Node) -> String {
    format!(
        "## Node: {IDLE} idle and {BUSY} busy Python processes, {} HTTPS requests/s\n\n\
         Targets: ≤ 3 % of one core, ≤ 96 MiB, 0 events lost.\n\n\
         | processes | requests | seconds | client spans | events lost | pytrace CPU (% of one core) | pytrace peak RSS (MiB) |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {:.1} | {} | {} | {:.2} | {:.1} |\n\n\
         pytrace's memory cgroup, as a pod's memory request and limit count it (its pages, kernel maps \
         and ring buffer included), in MiB:\n\n\
         | started | attached to every process | peak under the load |\n\
         |---:|---:|---:|\n\
         | {:.1} | {:.1} | {:.1} |\n",
        BUSY as u32 * RATE_PER_PROCESS,
        node.processes_traced,
        node.requests,
        node.seconds,
        node.spans,
        node.events_lost,
        node.cpu_percent,
        node.peak_rss_kib as f64 / 1024.0,
        node.cgroup_started_kib as f64 / 1024.0,
        node.cgroup_attached_kib as f64 / 1024.0,
        node.cgroup_peak_kib as f64 / 1024.0,
    )
}

pub fn to_json(node: &Node) -> serde_json::Value {
    serde_json::json!({
        "idle_processes": IDLE,
        "busy_processes": BUSY,
        "rate_asked": BUSY as u32 * RATE_PER_PROCESS,
        "requests": node.requests,
        "seconds": node.seconds,
        "client_spans": node.spans,
        "cgroup_started_kib": node.cgroup_started_kib,
        "cgroup_attached_kib": node.cgroup_attached_kib,
        "cgroup_peak_kib": node.cgroup_peak_kib,
        "events_lost": node.events_lost,
        "pytrace_cpu_percent_of_one_core": node.cpu_percent,
        "pytrace_peak_rss_kib": node.peak_rss_kib,
    })
}
