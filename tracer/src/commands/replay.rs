//! `pytrace replay FILE` (benchmarks): a session recorded with `--record`
//! fed through the user-space pipeline — decoding, reassembly, HTTP and LLM
//! parsing, span building and JSON output (to nowhere) — without the kernel,
//! pinned to one core; prints what it took as one JSON line.
//!
//! Processes of the recording that still run and are CPython get Python
//! context from their memory, as `attach` gives it, so their stacks are
//! resolved as in a live session.

use std::collections::BTreeSet;
use std::io;
use std::time::Instant;

use pytrace_core::events::{self, ConnKey};
use pytrace_core::llm::pricing::PriceTable;

use crate::cli::ReplayArgs;
use crate::notices::notice;
use crate::pipeline::Pipeline;
use crate::recording::{self, RecordingError};
use crate::sinks::Sinks;
use crate::sys;
use crate::targets::inspect::facts::ProcFacts;
use crate::targets::inspect::{TargetProcess, python_context};

/// Copies of a connection get ids that differ from the original in these
/// bits, so they never collide with real ids (pointers, socket ids).
const COPY_SHIFT: u32 = 48;
/// Most copies `--connections` makes (bits 48–61 are free in every id).
pub const MAX_CONNECTIONS: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read the recording {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Recording { path: String, source: RecordingError },
    #[error("the recording has no connection that received a response to copy")]
    NoConnection,
    #[error("--connections must be between 1 and {MAX_CONNECTIONS}, not {0}")]
    Connections(u32),
    #[error("--repeat must be at least 1")]
    Repeat,
}

pub fn run(args: &ReplayArgs) -> Result<(), ReplayError> {
    let path = args.recording.display().to_string();
    let data = std::fs::read(&args.recording).map_err(|source| ReplayError::Read { path: path.clone(), source })?;
    let records = recording::parse(&data).map_err(|source| ReplayError::Recording { path, source })?;
    pin_to_one_core();
    let mut replay = Replay::new(&records);
    let report = match args.connections {
        Some(count) => open_connections(&mut replay, &records, count)?,
        None => throughput(&mut replay, &records, args.repeat)?,
    };
    println!("{report}");
    Ok(())
}

/// Every record, `repeat` times, timed by the CPU time it took.
fn throughput(replay: &mut Replay, records: &[&[u8]], repeat: u32) -> Result<serde_json::Value, ReplayError> {
    if repeat == 0 {
        return Err(ReplayError::Repeat);
    }
    let (cpu_start, wall_start) = (cpu_seconds(), Instant::now());
    for _ in 0..repeat {
        let now = crate::clock::monotonic_now();
        for record in records {
            replay.record(record, now);
        }
        // What a live session hands to the kernel after each batch.
        drop(replay.pipeline.take_feedback());
    }
    replay.finish();
    let (cpu, wall) = (cpu_seconds() - cpu_start, wall_start.elapsed().as_secs_f64());
    let events = records.len() as u64 * u64::from(repeat);
    let spans = replay.spans_emitted();
    Ok(serde_json::json!({
        "events": events,
        "spans": spans,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "events_per_second": events as f64 / cpu.max(1e-9),
        "spans_per_second": spans as f64 / cpu.max(1e-9),
        "peak_rss_bytes": status_bytes("VmHWM"),
    }))
}

/// `count` copies of the recording's first answered connection, all opened
/// (everything up to its first response) before any is answered (its first
/// response, up to its next request): memory is measured while they are all
/// in flight, and again once they are idle keep-alive connections.
fn open_connections(replay: &mut Replay, records: &[&[u8]], count: u32) -> Result<serde_json::Value, ReplayError> {
    if count == 0 || count > MAX_CONNECTIONS {
        return Err(ReplayError::Connections(count));
    }
    let conn = first_answered_connection(records).ok_or(ReplayError::NoConnection)?;
    let of_conn: Vec<&[u8]> = records.iter().copied().filter(|r| events::conn_of(r) == Some(conn)).collect();
    let first_response = of_conn.iter().position(|r| events::is_ingress_data(r)).ok_or(ReplayError::NoConnection)?;
    let next_request = of_conn[first_response..]
        .iter()
        .position(|r| events::is_egress_data(r))
        .map_or(of_conn.len(), |at| first_response + at);
    let (opening, answer) = (&of_conn[..first_response], &of_conn[first_response..next_request]);
    let copy_id = |copy: u32| conn.conn_id ^ (u64::from(copy + 1) << COPY_SHIFT);

    let rss_before = status_bytes("VmRSS");
    for copy in 0..count {
        let now = crate::clock::monotonic_now();
        for record in opening {
            replay.record(&events::with_conn_id(record, copy_id(copy)), now);
        }
        drop(replay.pipeline.take_feedback());
    }
    let open = replay.pipeline.connection_count();
    let rss_open = status_bytes("VmRSS");
    let spans_before = replay.spans_emitted();
    for copy in 0..count {
        let now = crate::clock::monotonic_now();
        for record in answer {
            replay.record(&events::with_conn_id(record, copy_id(copy)), now);
        }
    }
    let answered = replay.spans_emitted() - spans_before;
    let rss_answered = status_bytes("VmRSS");
    replay.finish();
    Ok(serde_json::json!({
        "connections": count,
        "connections_tracked": open,
        "rss_before_bytes": rss_before,
        "rss_open_bytes": rss_open,
        "rss_per_connection_bytes": rss_open.saturating_sub(rss_before) / u64::from(count),
        "spans_answered": answered,
        "rss_answered_bytes": rss_answered,
        "peak_rss_bytes": status_bytes("VmHWM"),
    }))
}

/// The first connection (in recording order) that received data.
fn first_answered_connection(records: &[&[u8]]) -> Option<ConnKey> {
    records.iter().find(|r| events::is_ingress_data(r)).and_then(|r| events::conn_of(r))
}

/// A pipeline like `attach`'s, its spans written as JSON lines nowhere.
struct Replay {
    pipeline: Pipeline,
    sinks: Sinks,
}

impl Replay {
    /// With Python context for the recorded processes that still run.
    fn new(records: &[&[u8]]) -> Self {
        let mut pipeline = Pipeline::new(crate::clock::measure(), PriceTable::built_in(), None, Box::new(ProcFacts));
        let pids: BTreeSet<u32> = records.iter().filter_map(|r| events::conn_of(r)).map(|c| c.pid).collect();
        for pid in pids {
            let context = TargetProcess::inspect(pid).ok().and_then(|p| python_context::discover(&p).ok().flatten());
            match context {
                Some(context) => pipeline.add_python_process(pid, Box::new(context.memory), context.layout),
                None => notice!("PID {pid} is gone or not CPython: its stacks stay unresolved"),
            }
        }
        Self { pipeline, sinks: Sinks::new(None, Some(Box::new(io::sink()))) }
    }

    /// One record, and the spans it finished written out.
    fn record(&mut self, record: &[u8], now: u64) {
        self.pipeline.record(record, now);
        self.sinks.deliver(self.pipeline.take_spans());
    }

    fn finish(&mut self) {
        self.pipeline.finish();
        self.sinks.deliver(self.pipeline.take_spans());
    }

    fn spans_emitted(&self) -> u64 {
        self.sinks.summary().spans.emitted
    }
}

/// Keeps this thread on the core it runs on, so figures are per core.
fn pin_to_one_core() {
    sys::pin_to_current_cpu();
}

/// User plus system CPU time this process has used.
fn cpu_seconds() -> f64 {
    sys::cpu_seconds()
}

/// A `/proc/self/status` figure given in kB, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .map_or(0, |kb: u64| kb * 1024)
}
