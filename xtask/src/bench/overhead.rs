//! Overhead side by side: every workload (tests/python/bench_workload.py:
//! real SDKs against the local server with no artificial delay) under every
//! configuration — no tracing, the bare probes (the floor), pytrace, pytrace
//! with `--trace-function`, and the in-process OpenTelemetry
//! instrumentation — in an order rotated each round; the figure kept is the
//! median over rounds of each run's median time per operation (each run's
//! mean is shown beside it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::processes::{Server, Tracer, Workload};
use crate::shell::step;

/// Configurations, in their display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Config {
    Baseline,
    Floor,
    Pytrace,
    PytraceFunctions,
    OpenTelemetry,
}

impl Config {
    const ALL: [Self; 5] = [Self::Baseline, Self::Floor, Self::Pytrace, Self::PytraceFunctions, Self::OpenTelemetry];

    fn label(self) -> &'static str {
        match self {
            Self::Baseline => "no tracing",
            Self::Floor => "bare probes (floor)",
            Self::Pytrace => "pytrace attach",
            Self::PytraceFunctions => "pytrace --trace-function",
            Self::OpenTelemetry => "OpenTelemetry in-process",
        }
    }

    fn pytrace_args(self) -> Option<Vec<&'static str>> {
        match self {
            Self::Baseline | Self::OpenTelemetry => None,
            Self::Floor => Some(vec!["--program-stats", "--bare-probes"]),
            Self::Pytrace => Some(vec!["--program-stats"]),
            Self::PytraceFunctions => Some(vec!["--program-stats", "--trace-function", "bench_workload:one_call"]),
        }
    }
}

/// (workload, operations in quick mode, operations in full mode).
const WORKLOADS: [(&str, u32, u32); 5] =
    [("openai", 60, 1000), ("stream", 10, 150), ("async", 320, 2560), ("requests", 100, 2000), ("cpu", 50, 400)];

pub type Samples = BTreeMap<(&'static str, Config), Vec<Sample>>;

/// Runs every workload under every configuration, `rounds` times.
pub fn measure(python: &Path, server: &Server, quick: bool, dir: &Path) -> anyhow::Result<Samples> {
    let rounds = if quick { 1 } else { 3 };
    let mut samples = Samples::new();
    for round in 0..rounds {
        for (workload, quick_count, full_count) in WORKLOADS {
            let count = if quick { quick_count } else { full_count };
            for offset in 0..Config::ALL.len() {
                let config = Config::ALL[(offset + round) % Config::ALL.len()];
                step(&format!("round {}/{rounds}: {workload} under {}", round + 1, config.label()));
                let sample = measure_one(python, server, workload, count, config, dir)?;
                samples.entry((workload, config)).or_default().push(sample);
            }
        }
    }
    Ok(samples)
}

fn measure_one(
    python: &Path,
    server: &Server,
    workload: &str,
    count: u32,
    config: Config,
    dir: &Path,
) -> anyhow::Result<Sample> {
    let command = if config == Config::OpenTelemetry {
        let mut c = Command::new(python.with_file_name("opentelemetry-instrument"));
        c.arg(python);
        c.envs([
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_SERVICE_NAME", "bench"),
        ]);
        c
    } else {
        Command::new(python)
    };
    let mut app = Workload::start(command, server, workload, count, &[])?;
    let tracer = match config.pytrace_args() {
        Some(args) => Some(Tracer::attach(app.pid, &args, dir)?),
        None => None,
    };
    let result = app.run()?;
    let mut sample = Sample {
        median_us: result["p50_us"].as_f64().unwrap_or(0.0),
        mean_us: result["mean_us"].as_f64().unwrap_or(0.0),
        cpu_us_per_op: result["cpu_us_per_op"].as_f64().unwrap_or(0.0),
        ..Sample::default()
    };
    if let Some(tracer) = tracer {
        let figures = tracer.stop();
        sample.cpu_ms = figures.cpu_ms;
        sample.peak_rss_kib = figures.peak_rss_kib;
        let warm_up = if workload == "async" { 3 * 64 } else { 10 };
        let operations = f64::from(count + warm_up);
        sample.uprobe_hits_per_op = figures.summary["uprobe_hits"].as_f64().unwrap_or(0.0) / operations;
        sample.tracepoint_hits_per_op = figures.summary["tracepoint_hits"].as_f64().unwrap_or(0.0) / operations;
        sample.events_lost = figures.summary["events_lost"].as_u64().unwrap_or(0);
        if let Some(programs) = figures.summary["kernel_programs"].as_object() {
            for (name, program) in programs {
                let us_per_op = program["ns"].as_f64().unwrap_or(0.0) / 1000.0 / operations;
                sample.kernel_us_per_op += us_per_op;
                sample.program_us_per_op.insert(name.clone(), us_per_op);
            }
        }
    }
    app.finish()?;
    Ok(sample)
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// The typical operation: what the added latency is computed from (a
    /// 2-core VM's scheduling hiccups move the mean by more than pytrace adds).
    median_us: f64,
    mean_us: f64,
    /// The traced program's own CPU time (user + system, all threads) per
    /// operation: uprobe handlers and BPF programs are charged to it, and
    /// unlike wall time it does not mix in contention with pytrace's own
    /// process on a 2-core machine.
    cpu_us_per_op: f64,
    uprobe_hits_per_op: f64,
    tracepoint_hits_per_op: f64,
    /// Time in pytrace's kernel programs (BPF run-time statistics; the
    /// syscall tracepoints' programs also run, and return at once, for
    /// untraced processes such as the server).
    kernel_us_per_op: f64,
    program_us_per_op: BTreeMap<String, f64>,
    cpu_ms: f64,
    peak_rss_kib: u64,
    events_lost: u64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The side-by-side table (Markdown).
pub fn render(samples: &Samples) -> String {
    let mut out = String::from("## Overhead on the traced program\n\n");
    out.push_str("| workload | configuration | median time per op (µs) | mean (µs) | added (µs) | added vs OpenTelemetry | added vs floor | program CPU per op (µs) | added CPU (µs) | uprobe hits/op | tracepoint hits/op | in kernel programs (µs/op) | pytrace CPU (ms) | pytrace peak RSS (MiB) | events lost |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (workload, _, _) in WORKLOADS {
        let median_of = |config, figure: fn(&Sample) -> f64| {
            let mut values: Vec<f64> =
                samples.get(&(workload, config)).map(|s| s.iter().map(figure).collect()).unwrap_or_default();
            median(&mut values)
        };
        let time = |config| median_of(config, |s| s.median_us);
        let baseline = time(Config::Baseline);
        let added = |config| time(config) - baseline;
        let cpu = |config| median_of(config, |s| s.cpu_us_per_op);
        for config in Config::ALL {
            let Some(runs) = samples.get(&(workload, config)) else { continue };
            let last = runs.last().cloned().unwrap_or_default();
            // A time below the baseline is noise; a ratio involving one means nothing.
            let ratio = |other: f64| {
                if config == Config::Baseline || added(config) <= 0.0 || other <= 0.0 {
                    "—".to_owned()
                } else {
                    format!("{:.2}×", added(config) / other)
                }
            };
            let added_cell = match added(config) {
                _ if config == Config::Baseline => "—".to_owned(),
                value if value <= 0.0 => format!("{value:+.1} (noise)"),
                value => format!("{value:+.1}"),
            };
            let traced = config.pytrace_args().is_some();
            let cell = |value: String| if traced { value } else { "—".to_owned() };
            out.push_str(&format!(
                "| {workload} | {} | {:.1} | {:.1} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
                config.label(),
                time(config),
                median_of(config, |s| s.mean_us),
                added_cell,
                if config == Config::OpenTelemetry { "—".to_owned() } else { ratio(added(Config::OpenTelemetry)) },
                if matches!(config, Config::Pytrace | Config::PytraceFunctions) {
                    ratio(added(Config::Floor))
                } else {
                    "—".to_owned()
                },
                cpu(config),
                if config == Config::Baseline {
                    "—".to_owned()
                } else {
                    format!("{:+.1}", cpu(config) - cpu(Config::Baseline))
                },
                cell(format!("{:.1}", last.uprobe_hits_per_op)),
                cell(format!("{:.1}", last.tracepoint_hits_per_op)),
                cell(format!("{:.1}", last.kernel_us_per_op)),
                cell(format!("{:.0}", last.cpu_ms)),
                cell(format!("{:.1}", last.peak_rss_kib as f64 / 1024.0)),
                cell(last.events_lost.to_string()),
            ));
        }
    }
    out.push_str(&render_programs(samples));
    out
}

/// Where the kernel-side time goes: each workload's costliest programs under
/// `pytrace attach` (last round).
fn render_programs(samples: &Samples) -> String {
    let mut out = String::from("\n### Time in each kernel program under `pytrace attach` (µs per operation)\n\n");
    out.push_str("| workload | costliest programs |\n|---|---|\n");
    for (workload, _, _) in WORKLOADS {
        let Some(last) = samples.get(&(workload, Config::Pytrace)).and_then(|runs| runs.last()) else { continue };
        let mut programs: Vec<(&String, &f64)> = last.program_us_per_op.iter().collect();
        programs.sort_by(|a, b| b.1.total_cmp(a.1));
        let listed: Vec<String> = programs.iter().take(5).map(|(name, us)| format!("`{name}` {us:.1}")).collect();
        out.push_str(&format!("| {workload} | {} |\n", listed.join(", ")));
    }
    out
}

pub fn to_json(samples: &Samples) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = samples
        .iter()
        .map(|((workload, config), runs)| {
            serde_json::json!({
                "workload": workload,
                "configuration": config.label(),
                "median_us": runs.iter().map(|s| s.median_us).collect::<Vec<_>>(),
                "mean_us": runs.iter().map(|s| s.mean_us).collect::<Vec<_>>(),
                "cpu_us_per_op": runs.iter().map(|s| s.cpu_us_per_op).collect::<Vec<_>>(),
                "uprobe_hits_per_op": runs.iter().map(|s| s.uprobe_hits_per_op).collect::<Vec<_>>(),
                "tracepoint_hits_per_op": runs.iter().map(|s| s.tracepoint_hits_per_op).collect::<Vec<_>>(),
                "pytrace_cpu_ms": runs.iter().map(|s| s.cpu_ms).collect::<Vec<_>>(),
                "pytrace_peak_rss_kib": runs.iter().map(|s| s.peak_rss_kib).collect::<Vec<_>>(),
                "events_lost": runs.iter().map(|s| s.events_lost).collect::<Vec<_>>(),
                "kernel_us_per_op": runs.iter().map(|s| s.kernel_us_per_op).collect::<Vec<_>>(),
                "program_us_per_op": runs.iter().map(|s| &s.program_us_per_op).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}
