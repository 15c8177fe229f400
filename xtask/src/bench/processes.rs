//! The processes a benchmark runs: the local server, a workload
//! (tests/python/bench_workload.py) and pytrace attached to it, with the
//! figures read from them — pytrace's CPU time and peak RSS from /proc, its
//! summary from its JSON output.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::cgroup::MemoryCgroup;
use crate::demo::ChildGuard;
use crate::shell::{self, step, workspace_root};

pub struct Server {
    _process: ChildGuard,
    pub base: String,
    pub ca: String,
}

impl Server {
    /// The local server with no artificial delay, streams of 200 chunks.
    pub fn start(python: &Path, dir: &Path) -> anyhow::Result<Self> {
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
        let (Some(port), Some(ca)) = (fields.get(1), fields.get(2)) else {
            bail!("the server did not start: {ready:?}")
        };
        Ok(Self { _process: process, base: format!("https://localhost:{port}"), ca: (*ca).to_owned() })
    }
}

/// A workload process, started and waiting for `go`.
pub struct Workload {
    process: ChildGuard,
    lines: mpsc::Receiver<String>,
    pub pid: u32,
}

impl Workload {
    /// Starts `name` for `count` operations; `command` is the interpreter
    /// (or `opentelemetry-instrument python`) with its environment.
    pub fn start(
        mut command: Command,
        server: &Server,
        name: &str,
        count: u32,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        command.arg(workspace_root().join("tests/python/bench_workload.py"));
        command.args(["--workload", name, "--base", &server.base, "--ca", &server.ca]);
        command.args(["--count", &count.to_string()]).args(extra).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut process = ChildGuard(command.spawn().context("starting the workload")?);
        let lines = line_channel(process.0.stdout.take().context("workload stdout")?);
        let ready = lines.recv_timeout(Duration::from_secs(60)).context("the workload did not start")?;
        let pid = ready.split_whitespace().nth(1).and_then(|p| p.parse().ok()).context("workload READY line")?;
        Ok(Self { process, lines, pid })
    }

    /// Runs the operations; returns the workload's JSON result line.
    pub fn run(&mut self) -> anyhow::Result<serde_json::Value> {
        self.go()?;
        self.result()
    }

    /// Tells the workload to start, without waiting for its result.
    pub fn go(&mut self) -> anyhow::Result<()> {
        self.say("go")
    }

    /// The workload's JSON result line, once it has finished.
    pub fn result(&mut self) -> anyhow::Result<serde_json::Value> {
        let result = self.lines.recv_timeout(Duration::from_secs(600)).context("the workload did not finish")?;
        serde_json::from_str(&result).context("workload result")
    }

    /// The workload's JSON result line if it arrives within `wait`.
    pub fn poll_result(&mut self, wait: Duration) -> anyhow::Result<Option<serde_json::Value>> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => Ok(Some(serde_json::from_str(&line).context("workload result")?)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the workload exited without a result"),
        }
    }

    /// Lets a workload started with `--hold` exit, and waits for it.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let _ = self.say("exit");
        self.process.0.wait()?;
        Ok(())
    }

    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.process.0.stdin.as_mut().context("workload stdin")?, "{line}")?;
        Ok(())
    }
}

/// `pytrace attach` running against a workload.
pub struct Tracer {
    process: ChildGuard,
    output: PathBuf,
}

/// What a pytrace session cost and reported.
#[derive(Clone, Debug, Default)]
pub struct TracerFigures {
    pub cpu_ms: f64,
    pub peak_rss_kib: u64,
    /// The `summary` object of its JSON output.
    pub summary: serde_json::Value,
}

impl Tracer {
    /// Attaches to `pid` and returns once it traces; spans go to `dir`.
    pub fn attach(pid: u32, args: &[&str], dir: &Path) -> anyhow::Result<Self> {
        Self::start(&["attach", "--pid", &pid.to_string()], args, dir, None)
    }

    /// `pytrace node` in the memory cgroup `cgroup` (as in a pod),
    /// returning once it traces; spans go to `dir`.
    pub fn node_in(cgroup: &MemoryCgroup, args: &[&str], dir: &Path) -> anyhow::Result<Self> {
        Self::start(&["node"], args, dir, Some(cgroup))
    }

    fn start(command: &[&str], args: &[&str], dir: &Path, cgroup: Option<&MemoryCgroup>) -> anyhow::Result<Self> {
        let output = dir.join("spans.jsonl");
        let _ = std::fs::remove_file(&output);
        let mut arguments: Vec<String> = command.iter().map(|a| (*a).to_owned()).collect();
        arguments.extend(["--format".into(), "json".into(), "--output".into(), output.display().to_string()]);
        arguments.extend(args.iter().map(|a| (*a).to_owned()));
        let mut launcher = match cgroup {
            Some(cgroup) => cgroup.command(&shell::pytrace_binary(), &arguments),
            None => {
                let mut plain = Command::new(shell::pytrace_binary());
                plain.args(&arguments);
                plain
            }
        };
        let mut process =
            ChildGuard(launcher.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("starting pytrace")?);
        let lines = line_channel(process.0.stderr.take().context("pytrace stderr")?);
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
        Ok(Self { process, output })
    }

    /// pytrace's resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.process.0.id(), "VmRSS:")
    }

    /// pytrace's CPU time so far (user + system), in milliseconds.
    pub fn cpu_ms(&self) -> f64 {
        cpu_ms(self.process.0.id())
    }

    /// Stops pytrace (as Ctrl-C would) and reads what it cost and reported.
    pub fn stop(mut self) -> TracerFigures {
        let pid = self.process.0.id();
        let cpu_ms = cpu_ms(pid);
        let peak_rss_kib = peak_rss_kib(pid);
        // SAFETY: kill(2) on our own child: pytrace reports and exits on SIGINT.
        unsafe { libc_kill(pid as i32, 2) };
        let _ = self.process.0.wait();
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let summary: serde_json::Value =
            text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_default();
        TracerFigures { cpu_ms, peak_rss_kib, summary: summary["summary"].clone() }
    }
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
    status_kib(pid, "VmHWM:")
}

/// A `kB` field of /proc/PID/status.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}
