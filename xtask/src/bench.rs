//! `cargo xtask bench [--quick]`: what pytrace costs the programs it traces,
//! against no tracing, the bare probes (the floor) and the in-process
//! OpenTelemetry instrumentation, measured side by side in one run.
//!
//! Every workload (tests/python/bench_workload.py: real SDKs against the
//! local server with no artificial delay) runs under every configuration,
//! in an order rotated each round; the figure kept is the median over
//! rounds of each run's mean time per operation. pytrace's own CPU time and
//! peak RSS come from /proc, its probe hits and lost events from its
//! summary. Results go to target/bench/results.md and results.json.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::demo::ChildGuard;
use crate::setup;
use crate::shell::{self, output, step, workspace_root};

/// Configurations, in their display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Config {
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
            Self::Floor => Some(vec!["--bare-probes"]),
            Self::Pytrace => Some(vec![]),
            Self::PytraceFunctions => Some(vec!["--trace-function", "bench_workload:one_call"]),
        }
    }
}

/// (workload, operations in quick mode, operations in full mode).
const WORKLOADS: [(&str, u32, u32); 5] =
    [("openai", 100, 400), ("stream", 40, 150), ("async", 640, 2560), ("requests", 200, 800), ("cpu", 100, 400)];

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct Sample {
    mean_us: f64,
    uprobe_hits_per_op: f64,
    tracepoint_hits_per_op: f64,
    cpu_ms: f64,
    peak_rss_kib: u64,
    events_lost: u64,
}

struct Server {
    _process: ChildGuard,
    base: String,
    ca: String,
}

pub fn run(quick: bool) -> anyhow::Result<()> {
    shell::require_root("the benchmarks")?;
    let env = setup::run()?;
    ensure_opentelemetry(&env.python)?;
    shell::build_release(&env)?;
    let root = workspace_root();
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let server = start_server(&env.python, &out_dir)?;
    let rounds = if quick { 1 } else { 3 };
    let mut samples: BTreeMap<(&str, Config), Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for (workload, quick_count, full_count) in WORKLOADS {
            let count = if quick { quick_count } else { full_count };
            for offset in 0..Config::ALL.len() {
                let config = Config::ALL[(offset + round) % Config::ALL.len()];
                step(&format!("round {}/{rounds}: {workload} under {}", round + 1, config.label()));
                let sample = measure(&env.python, &server, workload, count, config, &out_dir)?;
                samples.entry((workload, config)).or_default().push(sample);
            }
        }
    }
    let table = render(&samples, quick);
    println!("\n{table}");
    std::fs::write(out_dir.join("results.md"), &table)?;
    std::fs::write(out_dir.join("results.json"), to_json(&samples).to_string())?;
    step(&format!("results written to {}", out_dir.join("results.md").display()));
    Ok(())
}

/// The OpenTelemetry packages the comparison needs, in the venv (idempotent).
fn ensure_opentelemetry(python: &Path) -> anyhow::Result<()> {
    let check = "import opentelemetry.instrumentation.openai_v2, opentelemetry.instrumentation.httpx, opentelemetry.instrumentation.requests, opentelemetry.sdk";
    if output(Command::new(python).args(["-c", check])).is_some() {
        step("OpenTelemetry instrumentation for the comparison: present");
        return Ok(());
    }
    step("installing the OpenTelemetry SDK and the openai-v2, httpx and requests instrumentations");
    let requirements = workspace_root().join("tests/python/bench-requirements.txt");
    shell::run(
        Command::new(python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q", "-r"])
            .arg(requirements),
    )
}

fn start_server(python: &Path, dir: &Path) -> anyhow::Result<Server> {
    step("starting the local server with no artificial delay (streams of 200 chunks)");
    let mut process = ChildGuard(
        Command::new(python)
            .arg(workspace_root().join("tests/python/server.py"))
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .args(["--no-delay", "--stream-pieces", "200"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the benchmark server")?,
    );
    let mut ready = String::new();
    BufReader::new(process.0.stdout.take().context("server stdout")?).read_line(&mut ready)?;
    let fields: Vec<&str> = ready.split_whitespace().collect();
    let (Some(port), Some(ca)) = (fields.get(1), fields.get(2)) else { bail!("the server did not start: {ready:?}") };
    Ok(Server { _process: process, base: format!("https://localhost:{port}"), ca: (*ca).to_owned() })
}

fn measure(
    python: &Path,
    server: &Server,
    workload: &str,
    count: u32,
    config: Config,
    dir: &Path,
) -> anyhow::Result<Sample> {
    let script = workspace_root().join("tests/python/bench_workload.py");
    let mut command = if config == Config::OpenTelemetry {
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
    command.arg(&script).args(["--workload", workload, "--base", &server.base, "--ca", &server.ca]);
    command.args(["--count", &count.to_string()]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut app = ChildGuard(command.spawn().context("starting the workload")?);
    let lines = line_channel(app.0.stdout.take().context("workload stdout")?);
    let ready = lines.recv_timeout(Duration::from_secs(60)).context("the workload did not start")?;
    let pid: u32 = ready.split_whitespace().nth(1).and_then(|p| p.parse().ok()).context("workload READY line")?;

    let summary_path = dir.join("summary.jsonl");
    let mut tracer = match config.pytrace_args() {
        Some(args) => Some(start_pytrace(pid, &args, &summary_path)?),
        None => None,
    };
    writeln!(app.0.stdin.as_mut().context("workload stdin")?, "go")?;
    let result = lines.recv_timeout(Duration::from_secs(600)).context("the workload did not finish")?;
    let result: serde_json::Value = serde_json::from_str(&result).context("workload result")?;
    let mut sample = Sample { mean_us: result["mean_us"].as_f64().unwrap_or(0.0), ..Sample::default() };
    if let Some(tracer) = &mut tracer {
        let tracer_pid = tracer.0.id();
        sample.cpu_ms = cpu_ms(tracer_pid);
        sample.peak_rss_kib = peak_rss_kib(tracer_pid);
        // SAFETY: kill(2) on our own child: pytrace reports and exits on SIGINT.
        unsafe { libc_kill(tracer_pid as i32, 2) };
        let _ = tracer.0.wait();
        let text = std::fs::read_to_string(&summary_path).unwrap_or_default();
        let summary: serde_json::Value =
            text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_default();
        let summary = &summary["summary"];
        let warm_up = if workload == "async" { 3 * 64 } else { 10 };
        let operations = f64::from(count + warm_up);
        sample.uprobe_hits_per_op = summary["uprobe_hits"].as_f64().unwrap_or(0.0) / operations;
        sample.tracepoint_hits_per_op = summary["tracepoint_hits"].as_f64().unwrap_or(0.0) / operations;
        sample.events_lost = summary["events_lost"].as_u64().unwrap_or(0);
    }
    let _ = app.0.wait();
    Ok(sample)
}

fn start_pytrace(pid: u32, args: &[&str], summary_path: &Path) -> anyhow::Result<ChildGuard> {
    let _ = std::fs::remove_file(summary_path);
    let mut child = ChildGuard(
        Command::new(shell::pytrace_binary())
            .args(["attach", "--pid", &pid.to_string(), "--format", "json", "--output"])
            .arg(summary_path)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pytrace")?,
    );
    let lines = line_channel(child.0.stderr.take().context("pytrace stderr")?);
    loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).context("pytrace did not start tracing")?;
        if line.starts_with("pytrace: tracing") {
            break;
        }
        if line.contains("error") {
            bail!("pytrace failed: {line}");
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok(child)
}

fn line_channel(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// User + system CPU time of `pid`, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the command name.
    (ticks(11) + ticks(12)) * 1000.0 / 100.0
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:")?.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn render(samples: &BTreeMap<(&str, Config), Vec<Sample>>, quick: bool) -> String {
    let mut out = String::new();
    let mode = if quick { "quick mode: one round, fewer operations — indicative only" } else { "3 rounds, median" };
    out.push_str(&format!("# pytrace benchmarks ({mode})\n\n"));
    out.push_str("| workload | configuration | time per op (µs) | added (µs) | added vs OpenTelemetry | added vs floor | uprobe hits/op | tracepoint hits/op | pytrace CPU (ms) | pytrace peak RSS (MiB) | events lost |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (workload, _, _) in WORKLOADS {
        let time = |config| {
            let mut values: Vec<f64> =
                samples.get(&(workload, config)).map(|s| s.iter().map(|x| x.mean_us).collect()).unwrap_or_default();
            median(&mut values)
        };
        let baseline = time(Config::Baseline);
        let added = |config| time(config) - baseline;
        for config in Config::ALL {
            let Some(runs) = samples.get(&(workload, config)) else { continue };
            let last = runs.last().cloned().unwrap_or_default();
            let ratio = |other: f64| {
                if config == Config::Baseline || other.abs() < 0.05 {
                    "—".to_owned()
                } else {
                    format!("{:.2}×", added(config) / other)
                }
            };
            let traced = config.pytrace_args().is_some();
            let cell = |value: String| if traced { value } else { "—".to_owned() };
            out.push_str(&format!(
                "| {workload} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                config.label(),
                time(config),
                if config == Config::Baseline { "—".to_owned() } else { format!("{:+.1}", added(config)) },
                if config == Config::OpenTelemetry { "—".to_owned() } else { ratio(added(Config::OpenTelemetry)) },
                if matches!(config, Config::Pytrace | Config::PytraceFunctions) {
                    ratio(added(Config::Floor))
                } else {
                    "—".to_owned()
                },
                cell(format!("{:.1}", last.uprobe_hits_per_op)),
                cell(format!("{:.1}", last.tracepoint_hits_per_op)),
                cell(format!("{:.0}", last.cpu_ms)),
                cell(format!("{:.1}", last.peak_rss_kib as f64 / 1024.0)),
                cell(last.events_lost.to_string()),
            ));
        }
    }
    out
}

fn to_json(samples: &BTreeMap<(&str, Config), Vec<Sample>>) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = samples
        .iter()
        .map(|((workload, config), runs)| {
            serde_json::json!({
                "workload": workload,
                "configuration": config.label(),
                "mean_us": runs.iter().map(|s| s.mean_us).collect::<Vec<_>>(),
                "uprobe_hits_per_op": runs.iter().map(|s| s.uprobe_hits_per_op).collect::<Vec<_>>(),
                "tracepoint_hits_per_op": runs.iter().map(|s| s.tracepoint_hits_per_op).collect::<Vec<_>>(),
                "pytrace_cpu_ms": runs.iter().map(|s| s.cpu_ms).collect::<Vec<_>>(),
                "pytrace_peak_rss_kib": runs.iter().map(|s| s.peak_rss_kib).collect::<Vec<_>>(),
                "events_lost": runs.iter().map(|s| s.events_lost).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}
