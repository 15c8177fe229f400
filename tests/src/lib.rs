//! Harness for pytrace's root integration tests: the local server, the
//! traced Python programs and pytrace itself run as real processes, each held
//! by a guard that kills and reaps it even when a test fails.
//!
//! `cargo xtask test` sets `PYTRACE_BIN` (the release binary) and
//! `PYTRACE_PYTHON` (the virtualenv with the client SDKs) before running these.

pub mod kube;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn pytrace_bin() -> PathBuf {
    PathBuf::from(
        std::env::var_os("PYTRACE_BIN").expect("PYTRACE_BIN is unset: run these tests with `cargo xtask test`"),
    )
}

pub fn venv_python() -> PathBuf {
    PathBuf::from(
        std::env::var_os("PYTRACE_PYTHON").expect("PYTRACE_PYTHON is unset: run these tests with `cargo xtask test`"),
    )
}

pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// A fresh scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pytrace-test-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Kills and reaps the process when dropped.
pub struct ProcessGuard(pub Child);

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's exit status, or `None` when it has not exited within `limit`.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of `stream`, read on a thread of their own, as they come.
pub fn line_reader(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line starting with `prefix`, keeping every line seen.
fn wait_for_line(
    rx: &mpsc::Receiver<String>,
    prefix: &str,
    seen: &mut Vec<String>,
    timeout: Duration,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = rx.recv_timeout(left).ok()?;
        seen.push(line.clone());
        if line.starts_with(prefix) {
            return Some(line);
        }
    }
}

/// The local test server (tests/python/server.py).
pub struct Server {
    _process: ProcessGuard,
    pub port: u16,
    pub ca: Option<PathBuf>,
    pub scheme: &'static str,
    /// Host part of the base URL (`localhost`, or `[::1]`).
    pub host: &'static str,
}

impl Server {
    pub fn https() -> Self {
        Self::start(&[])
    }

    /// Plain HTTP on 127.0.0.1.
    pub fn plain() -> Self {
        Self::start(&["--plain"])
    }

    /// Plain HTTP on the IPv6 loopback.
    pub fn plain_ipv6() -> Self {
        let mut server = Self::start(&["--plain", "--host", "::1"]);
        server.host = "[::1]";
        server
    }

    fn start(extra: &[&str]) -> Self {
        let dir = scratch_dir("server");
        let mut child = Command::new(venv_python())
            .arg(python_dir().join("server.py"))
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start server.py");
        let rx = line_reader(child.stdout.take().expect("stdout"));
        let process = ProcessGuard(child);
        let ready = wait_for_line(&rx, "READY", &mut Vec::new(), Duration::from_secs(30)).expect("server READY");
        let fields: Vec<&str> = ready.split_whitespace().collect();
        let ca = (fields[2] != "-").then(|| PathBuf::from(fields[2]));
        let scheme = if ca.is_some() { "https" } else { "http" };
        Self { _process: process, port: fields[1].parse().expect("port"), ca, scheme, host: "localhost" }
    }

    pub fn base(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A traced Python program (tests/python/client.py) waiting for "go".
pub struct Client {
    process: ProcessGuard,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    /// The interpreter's PID as the host sees it.
    pub pid: u32,
    /// `Some` when it runs in a container: the container's id.
    pub container_id: Option<String>,
    /// Removes what the setting made for it (scripts copied into a root
    /// file system, a container), after the process is gone.
    _setting: Option<SettingGuard>,
}

/// What the client did, per its own report lines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Done {
    pub method: String,
    pub path: String,
    pub status: i64,
}

impl Client {
    /// Starts `client.py` with `python` and the given arguments (plus the
    /// server's base URL and CA), and waits until it is ready.
    pub fn start(python: &Path, server: &Server, args: &[&str]) -> Self {
        Self::start_script(python, "client.py", server, &[&["--wait-for-go"], args].concat())
    }

    /// Starts `llm_client.py` (real LLM SDKs) running `scenario`.
    pub fn start_llm(server: &Server, scenario: &str) -> Self {
        Self::start_script(&venv_python(), "llm_client.py", server, &["--scenario", scenario])
    }

    /// As [`Client::start_llm`], `repeat` times, as the service `service`
    /// (`OTEL_SERVICE_NAME`, which pytrace reads for its resource).
    pub fn start_llm_as(server: &Server, scenario: &str, repeat: u32, service: &str) -> Self {
        let mut command = Command::new(venv_python());
        command
            .arg(python_dir().join("llm_client.py"))
            .args(["--base", &server.base(), "--scenario", scenario, "--repeat", &repeat.to_string()])
            .env("OTEL_SERVICE_NAME", service);
        if let Some(ca) = &server.ca {
            command.arg("--ca").arg(ca);
        }
        Self::spawn(command, None, None)
    }

    /// Starts any script in tests/python with `--base` (and `--ca`), waiting for READY.
    pub fn start_script(python: &Path, script: &str, server: &Server, args: &[&str]) -> Self {
        let mut command = Command::new(python);
        command.arg(python_dir().join(script)).args(["--base", &server.base()]).args(args);
        if let Some(ca) = &server.ca {
            command.arg("--ca").arg(ca);
        }
        Self::spawn(command, None, None)
    }

    /// Starts `client.py` with `interpreter`, in its setting.
    pub fn start_in(interpreter: &Interpreter, server: &Server, args: &[&str]) -> Self {
        Self::start_script_in(interpreter, "client.py", server, &[&["--wait-for-go"], args].concat())
    }

    /// Starts a script of tests/python with `interpreter`, in its setting
    /// (on the host, chroot'ed in namespaces of its own, or in a container),
    /// with `--base` and `--ca` as the script sees them.
    pub fn start_script_in(interpreter: &Interpreter, script: &str, server: &Server, args: &[&str]) -> Self {
        if matches!(interpreter.setting, Setting::Host) {
            return Self::start_script(&interpreter.python, script, server, args);
        }
        let marker = format!("pytrace-test-{}-{}", std::process::id(), next_id());
        let (command, guard) = interpreter.setting.command(&interpreter.python, script, server, args, &marker);
        let mut client = Self::spawn(command, Some(&marker), Some(guard));
        client.container_id = client._setting.as_ref().and_then(SettingGuard::container_id);
        client
    }

    /// Spawns `command`, waits for its READY line, and — for a process in
    /// a PID namespace of its own — finds its host PID by `marker`.
    fn spawn(mut command: Command, marker: Option<&str>, setting: Option<SettingGuard>) -> Self {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start the client");
        let stdin = child.stdin.take();
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let pid = child.id();
        let mut client =
            Self { process: ProcessGuard(child), stdin, stdout, pid, container_id: None, _setting: setting };
        let mut seen = Vec::new();
        let ready = wait_for_line(&client.stdout, "READY", &mut seen, Duration::from_secs(60));
        assert!(ready.is_some(), "client not READY: {seen:?}");
        if let Some(marker) = marker {
            client.pid = pid_with_marker(marker).unwrap_or_else(|| panic!("no process carries {marker}"));
        }
        client
    }

    /// Lets the client start its requests.
    pub fn go(&mut self) {
        let mut stdin = self.stdin.take().expect("go once");
        stdin.write_all(b"go\n").expect("write go");
    }

    /// Waits for the client to finish and exit; returns what it reported.
    pub fn finish(mut self) -> Vec<Done> {
        let mut lines = Vec::new();
        let finished = wait_for_line(&self.stdout, "FINISHED", &mut lines, Duration::from_secs(120));
        assert!(finished.is_some(), "client did not finish; it printed {lines:?}");
        let status = self.process.0.wait().expect("wait client");
        assert!(status.success(), "client failed: {status}");
        lines.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).map(|v| done_of(&v)).collect()
    }

    /// Kills the client abruptly (SIGKILL).
    pub fn kill(mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
    }

    /// Waits until the client printed `count` report lines.
    pub fn wait_reports(&self, count: usize) {
        let mut lines = Vec::new();
        while lines.iter().filter(|l: &&String| l.starts_with('{')).count() < count {
            assert!(wait_for_line(&self.stdout, "", &mut lines, Duration::from_secs(60)).is_some(), "client stalled");
        }
    }
}

fn done_of(v: &Value) -> Done {
    Done {
        method: v["method"].as_str().unwrap_or_default().to_owned(),
        path: v["path"].as_str().unwrap_or_default().to_owned(),
        status: v["status"].as_i64().unwrap_or_default(),
    }
}

/// A running `pytrace attach`.
pub struct Tracer {
    process: ProcessGuard,
    json_path: PathBuf,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

/// Everything pytrace produced.
#[derive(Debug)]
pub struct Trace {
    pub spans: Vec<Value>,
    pub summary: Value,
    /// Raw contents of every output: the JSON file, stdout (pretty) and stderr.
    pub json_text: String,
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

impl Tracer {
    /// Runs `pytrace attach --pid … --output FILE`, and waits until it traces.
    pub fn attach(pids: &[u32], extra: &[&str]) -> Self {
        Self::attach_with_env(pids, extra, &[])
    }

    /// Runs `pytrace node --output FILE`, and waits until it traces.
    pub fn node(extra: &[&str]) -> Self {
        let mut command = Command::new(pytrace_bin());
        command.arg("node").args(extra);
        Self::spawn(command)
    }

    /// As [`Tracer::attach`], with extra environment variables for pytrace.
    pub fn attach_with_env(pids: &[u32], extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(pytrace_bin());
        command.envs(env.iter().copied());
        command.arg("attach");
        for pid in pids {
            command.args(["--pid", &pid.to_string()]);
        }
        command.args(extra);
        Self::spawn(command)
    }

    /// Starts `command` with `--output FILE` added, and waits until it traces.
    fn spawn(mut command: Command) -> Self {
        let json_path = scratch_dir("trace").join("spans.jsonl");
        command.arg("--output").arg(&json_path);
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start pytrace");
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        let mut tracer = Self { process: ProcessGuard(child), json_path, stdout, stderr, stderr_seen: Vec::new() };
        let ready = wait_for_line(&tracer.stderr, "pytrace: tracing", &mut tracer.stderr_seen, Duration::from_secs(60));
        assert!(ready.is_some(), "pytrace did not start tracing: {:?}", tracer.stderr_seen);
        tracer
    }

    /// `http://HOST:PORT` of the endpoint `--metrics-address` opened.
    pub fn metrics_url(&self) -> String {
        let line = self.stderr_seen.iter().find(|l| l.contains("serving /metrics")).expect("the endpoint's address");
        line.rsplit(' ').next().unwrap_or_default().to_owned()
    }

    /// Stops pytrace with SIGINT (Ctrl-C) and collects its output.
    pub fn interrupt(self) -> Trace {
        // SAFETY: kill(2) on a child pid we own and have not reaped.
        unsafe { libc_kill(self.process.0.id() as i32, 2) };
        self.wait()
    }

    /// Kills pytrace with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill(mut self) -> std::process::ExitStatus {
        let _ = self.process.0.kill();
        self.process.0.wait().expect("wait for pytrace")
    }

    /// Waits for pytrace to exit by itself (its targets exited, --duration).
    pub fn wait(mut self) -> Trace {
        let status = wait_within(&mut self.process.0, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("pytrace did not exit; stderr so far: {:?}", self.stderr_seen));
        std::thread::sleep(Duration::from_millis(100));
        let stdout: Vec<String> = self.stdout.try_iter().collect();
        self.stderr_seen.extend(self.stderr.try_iter());
        let json_text = std::fs::read_to_string(&self.json_path).unwrap_or_default();
        let mut spans = Vec::new();
        let mut summary = Value::Null;
        for line in json_text.lines() {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
            if value.get("summary").is_some() {
                summary = value["summary"].clone();
            } else {
                spans.push(value);
            }
        }
        Trace {
            spans,
            summary,
            json_text,
            stdout: stdout.join("\n"),
            stderr: self.stderr_seen.join("\n"),
            success: status.success(),
        }
    }
}

/// A real OTLP receiver (tests/python/otlp_receiver.py) collecting what it
/// receives as JSON records: `{"signal": "span"|"metric", …}`.
pub struct Receiver {
    process: Option<ProcessGuard>,
    pub port: u16,
    /// The CA that signed its certificate, when started with `--tls-dir`.
    pub ca: Option<PathBuf>,
    records: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Starts a receiver for `protocol` (`grpc` or `http`), on `port` (0: any).
    pub fn start(protocol: &str, port: u16, extra: &[&str]) -> Self {
        let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (process, port, ca) = Self::spawn(protocol, port, extra, &records);
        Self { process: Some(process), port, ca, records }
    }

    fn spawn(
        protocol: &str,
        port: u16,
        extra: &[&str],
        records: &std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    ) -> (ProcessGuard, u16, Option<PathBuf>) {
        let mut child = Command::new(venv_python())
            .arg(python_dir().join("otlp_receiver.py"))
            .args(["--protocol", protocol, "--port", &port.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start otlp_receiver.py");
        let rx = line_reader(child.stdout.take().expect("stdout"));
        let process = ProcessGuard(child);
        let ready = wait_for_line(&rx, "READY", &mut Vec::new(), Duration::from_secs(30)).expect("receiver READY");
        let fields: Vec<&str> = ready.split_whitespace().collect();
        let port = fields.get(1).and_then(|p| p.parse().ok()).expect("port");
        let ca = fields.get(2).filter(|path| **path != "-").map(PathBuf::from);
        let sink = records.clone();
        std::thread::spawn(move || {
            for line in rx {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    sink.lock().expect("records").push(value);
                }
            }
        });
        (process, port, ca)
    }

    /// Stops the receiver (a collector outage); what it received is kept.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self, protocol: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may linger for a moment after the old process died.
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.process = Some(Self::spawn(protocol, self.port, &[], &self.records).0);
    }

    pub fn records(&self) -> Vec<Value> {
        self.records.lock().expect("records").clone()
    }

    /// Received span records (`{"signal": "span", "resource", "scope", "span"}`).
    pub fn spans(&self) -> Vec<Value> {
        self.records().into_iter().filter(|r| r["signal"] == "span").collect()
    }

    /// Waits until `done(records)` holds (true) or `timeout` passes (false).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(&self.records()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        done(&self.records())
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// What `pytrace run` did.
pub struct RunOutcome {
    pub code: Option<i32>,
    /// The command's standard output (pytrace writes its spans to a file).
    pub stdout: String,
    pub stderr: String,
    pub spans: Vec<Value>,
    pub json_text: String,
}

/// The file names `pytrace run`'s reports get in a test's directory.
pub const REPORTS: [&str; 3] = ["summary.md", "summary.json", "report.html"];

/// `--summary-md D/summary.md --summary-json D/summary.json --report-html D/report.html`.
pub fn report_args(dir: &Path) -> Vec<String> {
    ["--summary-md", "--summary-json", "--report-html"]
        .iter()
        .zip(REPORTS)
        .flat_map(|(flag, name)| [(*flag).to_owned(), dir.join(name).to_string_lossy().into_owned()])
        .collect()
}

/// Runs `pytrace run --output FILE ARGS… -- COMMAND…` to completion, with
/// extra environment variables (inherited by the command).
pub fn pytrace_run(args: &[&str], command: &[&str], env: &[(&str, &str)]) -> RunOutcome {
    let json_path = scratch_dir("run").join("spans.jsonl");
    let output = Command::new(pytrace_bin())
        .arg("run")
        .arg("--output")
        .arg(&json_path)
        .args(args)
        .arg("--")
        .args(command)
        // As CI runs it (root, not under sudo), unless a test says otherwise.
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .env_remove("SUDO_USER")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run pytrace run");
    let json_text = std::fs::read_to_string(&json_path).unwrap_or_default();
    let spans = json_text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("summary").is_none())
        .collect();
    RunOutcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        spans,
        json_text,
    }
}

/// Runs pytrace to completion with the given arguments.
pub fn run_pytrace(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(pytrace_bin()).args(args).output().expect("run pytrace");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

impl Trace {
    /// (method, path, status) of every span, sorted, for comparison with [`Done`].
    pub fn done(&self) -> Vec<Done> {
        let mut done: Vec<Done> = self
            .spans
            .iter()
            .map(|s| {
                let a = &s["attributes"];
                let url = a["url.full"].as_str().unwrap_or_default();
                let path = url.splitn(4, '/').nth(3).map(|p| format!("/{}", p.split('?').next().unwrap_or_default()));
                Done {
                    method: a["http.request.method"].as_str().unwrap_or_default().to_owned(),
                    path: path.unwrap_or_default(),
                    status: a["http.response.status_code"].as_i64().unwrap_or_default(),
                }
            })
            .collect();
        done.sort();
        done
    }

    /// Every output pytrace wrote, concatenated (for secret checks).
    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.json_text, self.stdout, self.stderr)
    }
}

/// Interpreters the tests cover, from `PYTRACE_INTERPRETERS` (set by
/// `cargo xtask test`): pyenv's 3.8–3.13, Debian's python3.11, and Debian
/// sid's 3.14 and 3.15 (paths inside the sid root file system).
pub fn interpreters() -> Vec<(String, PathBuf)> {
    let list =
        std::env::var("PYTRACE_INTERPRETERS").expect("PYTRACE_INTERPRETERS is unset: run with `cargo xtask test`");
    list.split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(label, path)| (label.to_owned(), PathBuf::from(path)))
        .collect()
}

/// Where a traced interpreter runs.
#[derive(Clone, Debug)]
pub enum Setting {
    /// On the host, as pytrace.
    Host,
    /// In a root file system of its own, chroot'ed in new mount, PID and
    /// UTS namespaces (`unshare`).
    Chroot(PathBuf),
    /// In a podman container (runc) of this image, sharing the host's network.
    Container(String),
    /// As `Container`, placed where the kubelet places a pod's containers:
    /// in the cgroup `/kubepods/burstable/pod<uid>` (the pod's uid here).
    ContainerInPod(String, String),
}

/// An interpreter to trace: its label, its path where it runs, and where.
#[derive(Clone, Debug)]
pub struct Interpreter {
    pub label: String,
    pub python: PathBuf,
    pub setting: Setting,
}

impl Interpreter {
    /// The minor version, from the interpreter's name (`python3.12` → 12).
    pub fn minor(&self) -> u32 {
        let name = self.python.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.strip_prefix("python3.").and_then(|m| m.parse().ok()).expect("an interpreter named python3.N")
    }
}

/// The interpreter labelled `label` in [`interpreters`]: on the host, or —
/// Debian sid's 3.14 and 3.15 (`sid 3.14`) — chroot'ed in the sid root file
/// system (`cargo xtask fixtures`).
pub fn interpreter(label: &str) -> Interpreter {
    let (_, python) =
        interpreters().into_iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("{label} is not installed"));
    let setting = if label.starts_with("sid ") { Setting::Chroot(sid_rootfs()) } else { Setting::Host };
    Interpreter { label: label.to_owned(), python, setting }
}

/// Debian sid's CPython 3.`minor` in a podman container.
pub fn sid_in_container(minor: u32) -> Interpreter {
    let image = std::env::var("PYTRACE_SID_IMAGE").expect("PYTRACE_SID_IMAGE is unset: run with `cargo xtask test`");
    Interpreter {
        label: format!("sid 3.{minor} (podman)"),
        python: PathBuf::from(format!("/usr/bin/python3.{minor}")),
        setting: Setting::Container(image),
    }
}

/// Debian sid's CPython 3.`minor` in a podman container in pod `pod_uid`'s
/// kubelet-style cgroup.
pub fn sid_in_pod(minor: u32, pod_uid: &str) -> Interpreter {
    let image = std::env::var("PYTRACE_SID_IMAGE").expect("PYTRACE_SID_IMAGE is unset: run with `cargo xtask test`");
    Interpreter {
        label: format!("sid 3.{minor} (podman, pod {pod_uid})"),
        python: PathBuf::from(format!("/usr/bin/python3.{minor}")),
        setting: Setting::ContainerInPod(image, pod_uid.to_owned()),
    }
}

/// The Debian sid root file system built by `cargo xtask fixtures`.
pub fn sid_rootfs() -> PathBuf {
    PathBuf::from(
        std::env::var_os("PYTRACE_SID_ROOTFS").expect("PYTRACE_SID_ROOTFS is unset: run with `cargo xtask test`"),
    )
}

fn next_id() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Where the test scripts are, seen from inside a chroot or container.
const SCRIPTS_INSIDE: &str = "/opt/pytrace-test";

impl Setting {
    /// The command that runs `script` (with the server's address and CA as
    /// seen inside), and what to clean up afterwards. `marker` goes into
    /// the process's environment, to find its host PID.
    fn command(
        &self,
        python: &Path,
        script: &str,
        server: &Server,
        args: &[&str],
        marker: &str,
    ) -> (Command, SettingGuard) {
        let scripts = scratch_dir("scripts");
        for entry in std::fs::read_dir(python_dir()).expect("tests/python").flatten() {
            if entry.path().extension().is_some_and(|e| e == "py") {
                std::fs::copy(entry.path(), scripts.join(entry.file_name())).expect("copy a script");
            }
        }
        if let Some(ca) = &server.ca {
            std::fs::copy(ca, scripts.join("ca.pem")).expect("copy the CA");
        }
        // "localhost" need not resolve inside: a minimal root file system has no /etc/hosts.
        let base = format!("{}://127.0.0.1:{}", server.scheme, server.port);
        let mut script_args: Vec<String> = vec![format!("{SCRIPTS_INSIDE}/{script}"), "--base".into(), base];
        if server.ca.is_some() {
            script_args.extend(["--ca".into(), format!("{SCRIPTS_INSIDE}/ca.pem")]);
        }
        script_args.extend(args.iter().map(|a| a.to_string()));
        match self {
            Setting::Host => unreachable!("host clients start directly"),
            Setting::Chroot(rootfs) => {
                let inside = rootfs.join(SCRIPTS_INSIDE.trim_start_matches('/')).join(marker);
                std::fs::create_dir_all(inside.parent().expect("parent")).expect("scripts dir in the rootfs");
                std::fs::rename(&scripts, &inside)
                    .or_else(|_| copy_dir(&scripts, &inside))
                    .expect("scripts into the rootfs");
                let script_args: Vec<String> = script_args
                    .into_iter()
                    .map(|a| a.replace(SCRIPTS_INSIDE, &format!("{SCRIPTS_INSIDE}/{marker}")))
                    .collect();
                let mut command = Command::new("unshare");
                command
                    .args(["--mount", "--pid", "--uts", "--fork", "--kill-child", "chroot"])
                    .arg(rootfs)
                    .arg(python)
                    .args(script_args)
                    .env("PYTRACE_TEST_MARKER", marker);
                (command, SettingGuard::Directory(inside))
            }
            Setting::Container(image) | Setting::ContainerInPod(image, _) => {
                let cid_file = scratch_dir("container").join("cid");
                let mut command = Command::new("podman");
                command.args(["--runtime", "runc", "run", "--rm", "-i", "--network", "host"]);
                if let Setting::ContainerInPod(_, uid) = self {
                    command.arg("--cgroup-parent").arg(format!("/kubepods/burstable/pod{uid}"));
                }
                command
                    .arg("--cidfile")
                    .arg(&cid_file)
                    .args(["-e", &format!("PYTRACE_TEST_MARKER={marker}")])
                    .arg("-v")
                    .arg(format!("{}:{SCRIPTS_INSIDE}:ro", scripts.display()))
                    .arg(image)
                    .arg(python)
                    .args(script_args);
                (command, SettingGuard::Container(cid_file))
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)?.flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// What a client's setting leaves behind, removed on drop.
enum SettingGuard {
    /// Scripts copied into a root file system.
    Directory(PathBuf),
    /// A container, by the file podman wrote its id to.
    Container(PathBuf),
}

impl SettingGuard {
    fn container_id(&self) -> Option<String> {
        let SettingGuard::Container(cid_file) = self else { return None };
        std::fs::read_to_string(cid_file).ok().map(|id| id.trim().to_owned()).filter(|id| !id.is_empty())
    }
}

impl Drop for SettingGuard {
    fn drop(&mut self) {
        match self {
            SettingGuard::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            SettingGuard::Container(_) => {
                if let Some(id) = self.container_id() {
                    let _ = Command::new("podman").args(["--runtime", "runc", "rm", "-f", &id]).output();
                }
            }
        }
    }
}

/// The process whose environment holds `PYTRACE_TEST_MARKER=marker`.
fn pid_with_marker(marker: &str) -> Option<u32> {
    let wanted = format!("PYTRACE_TEST_MARKER={marker}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let is_python = std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.starts_with("python"));
            if is_python && environ.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()) {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// pyenv's root directory.
pub fn pyenv_root() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".pyenv"))
}

/// Defines one `#[test]` per interpreter in [`interpreters`], each calling
/// `$check` with the interpreter's label.
#[macro_export]
macro_rules! test_each_interpreter {
    ($check:path) => {
        #[test]
        fn pyenv_3_8() {
            $check("pyenv 3.8");
        }
        #[test]
        fn pyenv_3_9() {
            $check("pyenv 3.9");
        }
        #[test]
        fn pyenv_3_10() {
            $check("pyenv 3.10");
        }
        #[test]
        fn pyenv_3_11() {
            $check("pyenv 3.11");
        }
        #[test]
        fn pyenv_3_12() {
            $check("pyenv 3.12");
        }
        #[test]
        fn pyenv_3_13() {
            $check("pyenv 3.13");
        }
        #[test]
        fn debian_system_3_11() {
            $check("debian 3.11");
        }
        #[test]
        fn debian_sid_3_14_chroot() {
            $check("sid 3.14");
        }
        #[test]
        fn debian_sid_3_15_chroot() {
            $check("sid 3.15");
        }
    };
}
