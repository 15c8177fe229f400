//! `pytrace attach`: trace running processes until they exit, a signal
//! arrives, or `--duration` passes.
//!
//! One `select!` loop owns everything: shutdown first, then ring-buffer
//! records into the pipeline, then a periodic rescan that attaches to TLS
//! libraries loaded after attach and notices targets that exited.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use tracer_common::Stat;

use crate::cli::AttachConfig;
use crate::clock::Clock;
use crate::commands::export::ExportSession;
use crate::commands::launch;
use crate::events::{ConnKey, Endpoints, Event};
use crate::llm::pricing::{PriceError, PriceTable};
use crate::otlp::OtlpError;
use crate::output::{Format, Output};
use crate::pipeline::{Lifecycle, Pipeline};
use crate::privileges::{self, PrivilegeError};
use crate::probes::{self, ProbeError, Probes};
use crate::python;
use crate::recording::Recorder;
use crate::span::function::FunctionCalls;
use crate::target::process::{has_exited, host_name, is_process};
use crate::target::tls::{self, FileId, TlsLibrary};
use crate::target::{TargetError, TargetProcess};
use crate::target::{sockets, threads};
use tracer_common::{SEEDED_SOCKET_ID_BIT, SOCKET_ID_BIT, SocketState, TLS_UNKNOWN};

/// How often targets are checked for new libraries and for having exited.
const RESCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How often events are collected from the ring buffer. The kernel wakes
/// pytrace only for a large backlog or an urgent event, so a traced call
/// does not pay for a wake-up after each event; spans appear at most this
/// late (their timings come from the kernel's clock, unaffected).
const COLLECT_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Prices(#[from] PriceError),
    #[error("cannot write {path}: {source}")]
    Output { path: String, source: std::io::Error },
    #[error("reading kernel events failed: {0}")]
    Events(std::io::Error),
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    #[error(transparent)]
    Launch(#[from] launch::LaunchError),
    #[error("cannot write the recording {path}: {source}")]
    Record { path: String, source: std::io::Error },
}

struct Traced {
    process: TargetProcess,
    known_files: HashSet<FileId>,
    /// `pytrace run`: Python context not set up yet — the interpreter may
    /// still be starting — and how many times it was tried.
    context_pending: Option<u32>,
}

impl Traced {
    fn new(process: TargetProcess) -> Self {
        Self { process, known_files: HashSet::new(), context_pending: None }
    }
}

/// `pytrace run`'s command, started held by [`launch::spawn_held`].
pub struct Launch {
    pub held: launch::Held,
    pub command: Vec<String>,
}

/// What a tracing session leaves for its caller.
pub struct SessionEnd {
    /// `pytrace run`: how the command ended.
    pub command_status: Option<std::process::ExitStatus>,
    /// Every span, when collected (`pytrace run`'s reports).
    pub spans: Vec<crate::span::Span>,
    pub summary: crate::output::summary::Summary,
}

/// Tries to set up Python context this many times (every rescan, 100 ms)
/// for a process whose interpreter is starting, before saying why not.
const CONTEXT_ATTEMPTS: u32 = 50;

pub async fn run(config: AttachConfig) -> Result<(), AttachError> {
    trace(config, None).await.map(drop)
}

/// Traces `config.pids`, or — with `launch` — a command and its children
/// until the command exits.
pub async fn trace(config: AttachConfig, mut launch: Option<Launch>) -> Result<SessionEnd, AttachError> {
    privileges::check_privileges()?;
    privileges::ensure_tracing()?;
    privileges::raise_memlock_limit();

    let mut targets = HashMap::new();
    for &pid in &config.pids {
        targets.insert(pid, Traced::new(TargetProcess::inspect(pid)?));
    }
    let prices = match &config.prices {
        Some(path) => PriceTable::with_overrides(path)?,
        None => PriceTable::built_in(),
    };
    let mut probes = Probes::load(config.capture_limit, launch.is_some(), config.bare_probes)?;
    if config.program_stats
        && let Err(error) = probes.enable_run_time_stats()
    {
        eprintln!("pytrace: warning: kernel program statistics unavailable: {error}");
    }
    let mut output = open_output(&config)?;
    if launch.is_some() {
        output.collected = Some(Vec::new());
    }
    let mut pipeline = Pipeline::new(Clock::measure(), prices, config.content.clone(), output);
    pipeline.library_paths = config.library_paths.clone();
    pipeline.functions = FunctionCalls::new(config.trace_functions.clone());
    let host = host_name();
    let mut export = ExportSession::start(&config, &mut pipeline, &host)?;
    probes.attach_syscalls()?;
    let mut seeded_ids = 0;
    for (pid, traced) in &mut targets {
        probes.trace_pid(*pid)?;
        pipeline.add_process(*pid, traced.process.resource(&host, &config.resource_defaults));
        attach_initial(&mut probes, traced);
        if !config.bare_probes {
            enable_python_context(&mut probes, &mut pipeline, &traced.process);
        }
        seed_sockets(&mut probes, &mut pipeline, *pid, &mut seeded_ids)?;
    }
    if let Some(launch) = &mut launch {
        probes.attach_process_tracepoints()?;
        start_command(&mut probes, launch)?;
    }

    let mut recorder = match &config.record {
        Some(path) => Some(
            Recorder::create(path)
                .map_err(|source| AttachError::Record { path: path.display().to_string(), source })?,
        ),
        None => None,
    };
    let ring = probes.take_ring_buffer()?;
    // SAFETY: the ring buffer owns its map's file descriptor for its whole
    // life and always reports that same descriptor.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| AttachError::Events(std::io::Error::other(e.to_string())))?;
    let shutdown = shutdown_signal(config.duration);
    tokio::pin!(shutdown);
    let mut rescan = tokio::time::interval(RESCAN_INTERVAL);
    let mut collect = tokio::time::interval(COLLECT_INTERVAL);
    collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut command_status = None;
    match &launch {
        Some(launch) => {
            eprintln!("pytrace: running {:?} (PID {}) and its children", launch.command.join(" "), launch.held.pid)
        }
        None => eprintln!("pytrace: tracing {} process(es); press Ctrl-C to stop", targets.len()),
    }

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown, if launch.is_none() => break,
            status = wait_command(&mut launch) => {
                command_status = Some(status);
                break;
            }
            // Woken by the kernel: a backlog built up, or a process forked or exec'd.
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(AttachError::Events)?;
                drain(guard.get_inner_mut(), &mut pipeline, &mut recorder);
                guard.clear_ready();
                after_events(&mut targets, &mut probes, &mut pipeline, &host, &config);
            }
            _ = collect.tick() => {
                drain(ring.get_mut(), &mut pipeline, &mut recorder);
                after_events(&mut targets, &mut probes, &mut pipeline, &host, &config);
            }
            _ = rescan.tick() => {
                // Drain first, so a process's last events precede its exit.
                drain(ring.get_mut(), &mut pipeline, &mut recorder);
                mark_traced_functions(&mut probes, &mut pipeline);
                if let Some(export) = &mut export {
                    export.tick(&mut pipeline, &probes);
                }
                follow_lifecycle(&mut targets, &mut probes, &mut pipeline, &host, &config);
                rescan_targets(&mut targets, &mut probes, &mut pipeline);
                pipeline.tick();
                pipeline.output.flush();
                if targets.is_empty() && launch.is_none() {
                    eprintln!("pytrace: every traced process has exited");
                    break;
                }
            }
        }
    }

    drain(ring.get_mut(), &mut pipeline, &mut recorder);
    if let Some(recorder) = recorder {
        recorder.finish().map_err(|source| AttachError::Record { path: record_name(&config), source })?;
    }
    pipeline.finish();
    print_warnings(&mut pipeline);
    add_kernel_counters(&probes, &mut pipeline);
    if let Some(export) = export {
        export.finish(&mut pipeline, &probes).await;
    }
    match pipeline.output.finish() {
        // The reader of our stdout went away (`pytrace … | head`): not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        result => result.map_err(|source| AttachError::Output { path: output_name(&config), source })?,
    }
    drop(probes);
    let spans = pipeline.output.collected.take().unwrap_or_default();
    Ok(SessionEnd { command_status, spans, summary: pipeline.output.summary.clone() })
}

/// What follows a batch of events: function verdicts for the kernel, new
/// processes' probes, messages for the user.
fn after_events(
    targets: &mut HashMap<u32, Traced>,
    probes: &mut Probes,
    pipeline: &mut Pipeline,
    host: &str,
    config: &AttachConfig,
) {
    mark_traced_functions(probes, pipeline);
    mark_known_stacks(probes, pipeline);
    follow_lifecycle(targets, probes, pipeline, host, config);
    print_warnings(pipeline);
}

/// Hands every record waiting in the ring buffer to the pipeline (and the
/// recording, with `--record`; a recording that fails to write stops).
fn drain(ring: &mut RingBuf<MapData>, pipeline: &mut Pipeline, recorder: &mut Option<Recorder>) {
    while let Some(record) = ring.next() {
        if let Some(writer) = recorder
            && let Err(error) = writer.record(&record)
        {
            eprintln!("pytrace: warning: the recording stopped: {error}");
            *recorder = None;
        }
        pipeline.record(&record);
    }
    pipeline.output.flush();
}

fn record_name(config: &AttachConfig) -> String {
    config.record.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

/// Puts the command's process in the traced set, probes the TLS library
/// its interpreter will load, and lets it run.
fn start_command(probes: &mut Probes, launch: &mut Launch) -> Result<(), AttachError> {
    let pid = launch.held.pid;
    probes.trace_pid(pid)?;
    if let Some(python) = launch::predicted_python(&launch.command) {
        let target = launch::prediction_target(python);
        if let Some(library) = tls::predict_libssl(&target) {
            attach(probes, pid, &library);
        }
    }
    launch.held.release();
    Ok(())
}

/// The command's exit, or never when there is no command.
async fn wait_command(launch: &mut Option<Launch>) -> std::process::ExitStatus {
    let Some(launch) = launch else { return std::future::pending().await };
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let group = launch.held.pid as i32;
    loop {
        tokio::select! {
            status = launch.held.wait() => return status,
            _ = async { match &mut terminate { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                // SAFETY: kill(2) on the command's process group.
                unsafe { libc::kill(-group, libc::SIGTERM) };
            }
            _ = async { match &mut interrupt { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                // SAFETY: as above.
                unsafe { libc::kill(-group, libc::SIGINT) };
            }
        }
    }
}

/// `pytrace run`: new processes (forks) and new programs (execs) among the
/// traced ones: their resource, TLS libraries and Python context.
fn follow_lifecycle(
    targets: &mut HashMap<u32, Traced>,
    probes: &mut Probes,
    pipeline: &mut Pipeline,
    host: &str,
    config: &AttachConfig,
) {
    for event in std::mem::take(&mut pipeline.lifecycle) {
        let (pid, exec) = match event {
            Lifecycle::Forked(pid) => (pid, false),
            Lifecycle::Exec(pid) => (pid, true),
        };
        if !exec && (targets.contains_key(&pid) || !is_process(pid)) {
            // A new thread of a traced process: already covered by its process.
            if !targets.contains_key(&pid) {
                probes.forget_pid(pid);
            }
            continue;
        }
        if exec {
            // Another program: what was known of the old one's code no longer holds.
            pipeline.symbolizer.remove_process(pid);
        }
        let Ok(process) = TargetProcess::inspect(pid) else { continue };
        pipeline.add_process(pid, process.resource(host, &config.resource_defaults));
        let mut traced = Traced::new(process);
        attach_libraries(probes, &mut traced);
        traced.context_pending = Some(0);
        targets.insert(pid, traced);
    }
    for (pid, traced) in targets.iter_mut() {
        let Some(attempts) = traced.context_pending else { continue };
        let exhausted = attempts >= CONTEXT_ATTEMPTS;
        if traced.process.python.is_none() {
            // The interpreter's library may not be mapped yet: look again, quietly.
            if let Ok(process) = TargetProcess::inspect(*pid) {
                traced.process = process;
            }
            if traced.process.python.is_none() {
                traced.context_pending = (!exhausted).then_some(attempts + 1);
                continue;
            }
        }
        traced.context_pending = match try_python_context(probes, pipeline, &traced.process) {
            Ok(()) => None,
            Err(reason) if exhausted => {
                report_no_context(pipeline, *pid, &reason);
                None
            }
            Err(_) => Some(attempts + 1),
        };
    }
}

/// The TLS libraries a (new) process maps, or the one its interpreter will load.
fn attach_libraries(probes: &mut Probes, traced: &mut Traced) {
    let pid = traced.process.pid;
    for library in tls::find_mapped(&traced.process, &mut traced.known_files).libraries {
        attach(probes, pid, &library);
    }
    let predicted = if traced.process.python.is_some() {
        // Resolved inside the process's own root directory.
        tls::predict_libssl(&traced.process)
    } else if traced.process.sees_files_as_pytrace() {
        // Its interpreter is not mapped yet: judged by its executable, which
        // only names the same file here when the process shares pytrace's view.
        launch::python_runtime(Path::new(&traced.process.executable))
            .and_then(|python| tls::predict_libssl(&launch::prediction_target(python)))
    } else {
        None
    };
    if let Some(library) = predicted
        && traced.known_files.insert(library.id)
    {
        attach(probes, pid, &library);
    }
}

fn output_name(config: &AttachConfig) -> String {
    config.json_file.as_ref().map_or_else(|| "stdout".to_owned(), |p| p.display().to_string())
}

fn open_output(config: &AttachConfig) -> Result<Output, AttachError> {
    // Buffered: spans are flushed once per batch of events (`Output::flush`).
    let stdout: Box<dyn Write + Send> = Box::new(BufWriter::new(std::io::stdout()));
    let json_file: Option<Box<dyn Write + Send>> = match &config.json_file {
        Some(path) => Some(Box::new(BufWriter::new(
            File::create(path).map_err(|source| AttachError::Output { path: path.display().to_string(), source })?,
        ))),
        None => None,
    };
    Ok(match (config.terminal_format, json_file) {
        (_, Some(file)) => Output::new(Some(stdout), Some(file)),
        (Format::Pretty, None) => Output::new(Some(stdout), None),
        (Format::Json, None) => Output::new(None, Some(stdout)),
    })
}

/// Attaches to the TLS libraries a target maps, or, for a Python process that
/// has not imported `ssl` yet, to the libssl it will load. Without either,
/// only plaintext HTTP is visible, which the user is told.
fn attach_initial(probes: &mut Probes, traced: &mut Traced) {
    let process = &traced.process;
    let pid = process.pid;
    match &process.python {
        Some(python) => eprintln!("pytrace: PID {pid} runs CPython {} ({})", python.version, python.object_path),
        None => eprintln!(
            "pytrace: warning: PID {pid} ({}) does not look like CPython; tracing its HTTP traffic anyway",
            process.executable
        ),
    }
    let search = tls::find_mapped(process, &mut traced.known_files);
    let mut attached = false;
    for library in &search.libraries {
        attached |= attach(probes, pid, library);
    }
    if attached {
        report_unusable(pid, &search);
        return;
    }
    if let Some(library) = tls::predict_libssl(process) {
        traced.known_files.insert(library.id);
        if attach(probes, pid, &library) {
            eprintln!(
                "pytrace: PID {pid} has not loaded ssl yet; probes are in place on {} for when it does",
                library.path
            );
            for (path, why) in &search.unusable {
                eprintln!("pytrace: warning: PID {pid}: HTTPS through {path} is not visible: {why}");
            }
            return;
        }
    }
    eprintln!(
        "pytrace: warning: PID {pid} maps no OpenSSL pytrace can probe ({}); tracing plaintext HTTP, and watching \
         for one to load",
        search.explain()
    );
}

/// Names the objects whose HTTPS cannot be seen, beside the usable ones.
fn report_unusable(pid: u32, search: &tls::TlsSearch) {
    for (path, why) in &search.unusable {
        tracing::info!("PID {pid}: HTTPS through {path} is not visible: {why}");
    }
}

/// Python context (which function made each call) when the target's CPython
/// layout is known and verifies; otherwise a one-line reason, and HTTP spans
/// without it.
fn enable_python_context(probes: &mut Probes, pipeline: &mut Pipeline, process: &TargetProcess) {
    if let Err(reason) = try_python_context(probes, pipeline, process) {
        report_no_context(pipeline, process.pid, &reason);
    }
}

fn report_no_context(pipeline: &Pipeline, pid: u32, reason: &str) {
    let functions = if pipeline.functions.is_enabled() { " or function spans" } else { "" };
    eprintln!("pytrace: PID {pid}: no Python context{functions}: {reason}; HTTP spans are still produced");
}

/// Sets up Python context (and function probes) for `process`; the reason
/// when it cannot be (yet: an interpreter still starting up has no threads).
fn try_python_context(probes: &mut Probes, pipeline: &mut Pipeline, process: &TargetProcess) -> Result<(), String> {
    let pid = process.pid;
    let context = match python::discover::discover(process) {
        Ok(Some(context)) => context,
        Ok(None) => {
            if pipeline.functions.is_enabled() {
                eprintln!("pytrace: PID {pid}: not CPython, so --trace-function has nothing to trace there");
            }
            return Ok(());
        }
        Err(error) => return Err(error.to_string()),
    };
    // Thread states by host thread id (CPython records ids in its own PID namespace).
    let host_ids = process.pid_namespace.map(|_| threads::host_thread_ids(pid));
    let threads: Vec<(u32, u64)> = context
        .threads
        .iter()
        .filter_map(|(tstate, native)| {
            let recorded = u32::try_from((*native)?).ok()?;
            let tid = match &host_ids {
                Some(ids) => *ids.get(&recorded)?,
                None => recorded,
            };
            Some((tid, *tstate))
        })
        .collect();
    let enabled = probes.enable_python(
        pid,
        context.kernel_layout,
        &threads,
        &context.object_host_path,
        context.restore_thread_offset,
    );
    match enabled {
        Ok(()) => {
            if let Some(warning) = python::discover::newer_version_warning(&context.layout) {
                eprintln!("pytrace: warning: PID {pid}: {warning}");
            }
            eprintln!(
                "pytrace: PID {pid}: Python context on (CPython 3.{} layout verified, {} threads)",
                context.layout.minor,
                context.threads.len()
            );
            if pipeline.functions.is_enabled() {
                enable_function_calls(probes, pid, &context);
            }
            pipeline.symbolizer.add_process(pid, context.memory, context.layout);
            Ok(())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// `--trace-function`: the per-call probes for this interpreter, or why not.
fn enable_function_calls(probes: &mut Probes, pid: u32, context: &python::discover::PythonContext) {
    let enabled = python::call_probes::locate(context).map_err(|error| error.to_string()).and_then(|sites| {
        probes.enable_function_calls(pid, &context.object_host_path, &sites).map_err(|e| e.to_string())
    });
    match enabled {
        Ok(()) => eprintln!("pytrace: PID {pid}: function spans on (every Python call is probed while tracing)"),
        Err(error) => eprintln!("pytrace: PID {pid}: no function spans: {error}; other spans are still produced"),
    }
}

/// Tells the kernel which newly seen code objects are traced functions.
fn mark_traced_functions(probes: &mut Probes, pipeline: &mut Pipeline) {
    let verdicts = pipeline.functions.take_verdicts();
    if !verdicts.is_empty()
        && let Err(error) = probes.trace_codes(&verdicts)
    {
        tracing::warn!(%error, "marking traced functions failed");
    }
}

/// Tells the kernel which stacks user space has resolved, so their next
/// occurrences need not wake it.
fn mark_known_stacks(probes: &mut Probes, pipeline: &mut Pipeline) {
    let stacks = pipeline.take_resolved_stacks();
    if !stacks.is_empty()
        && let Err(error) = probes.mark_stacks_known(&stacks)
    {
        tracing::warn!(%error, "marking resolved stacks failed");
    }
}

/// Tells the kernel about the TCP sockets the target had open before attach,
/// and the pipeline about their endpoints.
fn seed_sockets(probes: &mut Probes, pipeline: &mut Pipeline, pid: u32, next_id: &mut u64) -> Result<(), AttachError> {
    for socket in sockets::open_sockets(pid) {
        *next_id += 1;
        let conn_id = SOCKET_ID_BIT | SEEDED_SOCKET_ID_BIT | *next_id;
        let addrs = socket.to_raw();
        probes.seed_socket(pid, socket.fd, SocketState { conn_id, addrs, tls: TLS_UNKNOWN, _pad: 0 })?;
        if socket.peer.is_some() {
            let endpoints = Endpoints::from_raw(&addrs);
            pipeline.event(&Event::SocketInfo { conn: ConnKey { pid, conn_id }, endpoints });
        }
    }
    Ok(())
}

/// Attaches to one library; failures are warnings (other paths may still work).
fn attach(probes: &mut Probes, pid: u32, library: &TlsLibrary) -> bool {
    match probes.attach_library(pid, library) {
        Ok(true) => {
            let symbols: Vec<&str> = library.symbols.iter().map(|(s, _)| *s).collect();
            let covered = match library.covered_by_callee.as_slice() {
                [] => String::new(),
                names => format!("; {} through the internal functions they share", names.join(" ")),
            };
            eprintln!("pytrace: PID {pid}: probes on {} [{}{covered}]", library.path, symbols.join(" "));
            true
        }
        Ok(false) => true,
        Err(error) => {
            eprintln!("pytrace: warning: {error}");
            false
        }
    }
}

fn rescan_targets(targets: &mut HashMap<u32, Traced>, probes: &mut Probes, pipeline: &mut Pipeline) {
    targets.retain(|&pid, traced| {
        if has_exited(pid) || traced.process.refresh_maps().is_err() {
            eprintln!("pytrace: PID {pid} exited");
            pipeline.process_exited(pid);
            probes.forget_pid(pid);
            return false;
        }
        // Objects loaded since the last look (dlopen).
        let search = tls::find_mapped(&traced.process, &mut traced.known_files);
        for library in &search.libraries {
            attach(probes, pid, library);
        }
        for (path, why) in &search.unusable {
            eprintln!("pytrace: PID {pid} loaded {path}; HTTPS through it is not visible: {why}");
        }
        true
    });
}

/// Copies the kernel's counters into the summary, and warns about lost events.
fn add_kernel_counters(probes: &Probes, pipeline: &mut Pipeline) {
    let kernel = probes.stats();
    let counters = &mut pipeline.output.summary.counters;
    counters.events_lost = probes::stat(&kernel, Stat::EventsLost);
    counters.calls_truncated = probes::stat(&kernel, Stat::CallsTruncated);
    counters.bytes_truncated = probes::stat(&kernel, Stat::BytesTruncated);
    counters.read_errors = probes::stat(&kernel, Stat::ReadErrors);
    counters.uprobe_hits = probes::stat(&kernel, Stat::UprobeHits);
    counters.tracepoint_hits = probes::stat(&kernel, Stat::TracepointHits);
    counters.kernel_programs = probes.program_run_times();
    if counters.events_lost > 0 {
        eprintln!(
            "pytrace: warning: {} events were lost (ring buffer full); some spans may be missing",
            counters.events_lost
        );
    }
}

fn print_warnings(pipeline: &mut Pipeline) {
    for warning in pipeline.warnings.drain(..) {
        eprintln!("pytrace: warning: {warning}");
    }
}

async fn shutdown_signal(duration: Option<Duration>) {
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let elapsed = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = async { match &mut terminate { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = async { match &mut interrupt { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        () = elapsed => {}
    }
}

/// Whether stdout is a terminal (chooses the default format).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
