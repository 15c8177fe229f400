//! A tracing session: the kernel probes, the pipeline from kernel events to
//! spans, and the processes traced, which come from a [`TargetSource`] —
//! fixed PIDs (`pytrace attach`) or a launched command and its children
//! (`pytrace run`). The commands are thin adapters over [`trace`].
//!
//! A thread of its own drains the kernel's ring buffer ([`drain`]); one
//! `select!` loop owns everything else: shutdown first, then the drained
//! records into the pipeline, then a periodic rescan that attaches to TLS
//! libraries loaded after attach and notices targets that exited. What the
//! pipeline learns that the kernel must hear about (function verdicts,
//! resolved stacks) or that changes the traced set (forks, execs) comes back
//! as typed [`Feedback`].

pub mod drain;
pub mod export;
pub mod telemetry;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Duration;

use drain::{Batch, Drainer};
use export::ExportSession;
use pytrace_core::engine::Feedback;
use pytrace_core::llm::pricing::{PriceError, PriceTable};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::AttachConfig;
use crate::notices::{notice, warning};
use crate::otlp::OtlpError;
use crate::output::{Format, Output};
use crate::pipeline::Pipeline;
use crate::privileges::{self, PrivilegeError};
use crate::probes::{self, ProbeError, Probes};
use crate::recording::Recorder;
use crate::stats::Stats;
use crate::targets::inspect::TargetError;
use crate::targets::inspect::facts::ProcFacts;
use crate::targets::inspect::process::host_name;
use crate::targets::launch;
use crate::targets::select::Admission;
pub use crate::targets::source::{Launch, TargetSource};
use crate::targets::{Targets, TargetsError};
use telemetry::{LoopCounts, Telemetry};

/// How often targets are checked for new libraries and for having exited.
const RESCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How often exited processes' entries are swept out of the kernel maps
/// and the maps' use is counted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Prices(#[from] PriceError),
    #[error("cannot read the price file {path}: {source}")]
    PriceFile { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Output { path: String, source: std::io::Error },
    #[error("reading kernel events failed: {0}")]
    Events(std::io::Error),
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    #[error(transparent)]
    Kubernetes(#[from] crate::kubernetes::KubernetesError),
    #[error(transparent)]
    MetricsEndpoint(#[from] crate::metrics::endpoint::EndpointError),
    #[error(transparent)]
    Launch(#[from] launch::LaunchError),
    #[error("cannot write the recording {path}: {source}")]
    Record { path: String, source: std::io::Error },
    #[error(transparent)]
    Targets(#[from] TargetsError),
}

/// What a tracing session leaves for its caller.
pub struct SessionEnd {
    /// `pytrace run`: how the command ended.
    pub command_status: Option<std::process::ExitStatus>,
    /// Every span, when collected (`pytrace run`'s reports).
    pub spans: Vec<pytrace_core::model::Span>,
    pub summary: crate::output::summary::Summary,
    /// pytrace's figures at the end.
    pub stats: Stats,
}

/// Traces the processes `source` gives until they have exited, a signal
/// arrives or `--duration` passes — or, for a command, until it exits.
pub async fn trace(config: AttachConfig, mut source: TargetSource) -> Result<SessionEnd, SessionError> {
    privileges::check_privileges()?;
    privileges::ensure_tracing()?;
    privileges::raise_memlock_limit();

    let host = host_name();
    let mut targets = Targets::inspect(
        &source.initial_pids(),
        &host,
        &config.resource_defaults,
        !config.bare_probes,
        Admission::new(source.admission(), source.pod_metadata(&host).await?),
    )?;
    let mut probes = load_probes(&config, source.follow())?;
    let mut pipeline = open_pipeline(&config, source.collects_spans())?;
    let mut export = ExportSession::start(&config, &mut pipeline, &host)?;
    let mut telemetry = Telemetry::start(config.metrics_address, &mut pipeline).await?;
    let mut recorder = open_recorder(&config)?;
    probes.attach_syscalls()?;
    targets.start(&mut probes, &mut pipeline)?;
    let mut drainer = Drainer::start(probes.take_ring_buffer()?).map_err(SessionError::Events)?;
    // Last of the set-up: nothing after it fails, so a launched command is
    // released only into a session that runs (were it to fail, dropping the
    // source stops the command).
    source.start(&mut probes)?;
    telemetry.ready();
    let shutdown = shutdown_signal(config.duration);
    tokio::pin!(shutdown);
    let mut rescan = tokio::time::interval(RESCAN_INTERVAL);
    let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_INTERVAL, SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut command_status = None;
    source.announce(targets.len());
    let ends_with_targets = source.ends_with_its_targets();

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown, if !source.has_command() => break,
            status = source.command_exit() => {
                command_status = Some(status);
                break;
            }
            Some(batch) = drainer.next() => {
                feed(&[batch], &mut pipeline, &mut recorder);
                act_on(pipeline.take_feedback(), &mut targets, &mut probes, &mut pipeline);
            }
            _ = sweep.tick() => probes.sweep_maps(),
            _ = rescan.tick() => {
                // Drain first, so a process's last events precede its exit.
                feed(&drainer.drain_now(), &mut pipeline, &mut recorder);
                act_on(pipeline.take_feedback(), &mut targets, &mut probes, &mut pipeline);
                let counts = LoopCounts { traced: targets.len(), events_dropped: drainer.dropped() };
                if let Some(export) = &mut export {
                    export.tick(&mut pipeline, &probes, counts);
                }
                telemetry.tick(&pipeline, &probes, counts);
                targets.rescan(&mut probes, &mut pipeline);
                targets.match_pods(&mut probes, &mut pipeline);
                pipeline.tick();
                pipeline.output.flush();
                if targets.is_empty() && ends_with_targets {
                    notice!("every traced process has exited");
                    break;
                }
            }
        }
    }

    let counts =
        LoopCounts { traced: targets.len(), events_dropped: last_events(drainer, &mut pipeline, recorder, &config)? };
    pipeline.finish();
    crate::notices::warnings(&pipeline.take_feedback().warnings);
    probes.sweep_maps();
    telemetry.finish();
    if let Some(export) = export {
        export.finish(&mut pipeline, &probes, counts).await;
    }
    let stats = telemetry::snapshot(&pipeline, &probes, counts);
    warn_about_losses(&stats);
    close_output(&mut pipeline, &config, &stats)?;
    drop(probes);
    let spans = pipeline.output.collected.take().unwrap_or_default();
    Ok(SessionEnd { command_status, spans, summary: pipeline.output.summary.clone(), stats })
}

/// Acts on what the pipeline learnt: tells the kernel which code objects
/// are traced functions and which stacks are resolved, follows forks and
/// execs, and shows the user's messages.
/// The recording `--record` asks for, created.
fn open_recorder(config: &AttachConfig) -> Result<Option<Recorder>, SessionError> {
    let Some(path) = &config.record else { return Ok(None) };
    let recorder = Recorder::create(path)
        .map_err(|error| SessionError::Record { path: path.display().to_string(), source: error })?;
    Ok(Some(recorder))
}

/// The events still in the ring buffer, then the recording closed; the
/// records the drainer dropped, all told.
fn last_events(
    mut drainer: Drainer,
    pipeline: &mut Pipeline,
    mut recorder: Option<Recorder>,
    config: &AttachConfig,
) -> Result<u64, SessionError> {
    feed(&drainer.drain_now(), pipeline, &mut recorder);
    let dropped = drainer.dropped();
    drop(drainer);
    if let Some(recorder) = recorder {
        recorder.finish().map_err(|source| SessionError::Record { path: record_name(config), source })?;
    }
    Ok(dropped)
}

/// Every output written out and closed.
fn close_output(pipeline: &mut Pipeline, config: &AttachConfig, stats: &Stats) -> Result<(), SessionError> {
    match pipeline.output.finish(stats) {
        // The reader of our stdout went away (`pytrace … | head`): not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|source| SessionError::Output { path: output_name(config), source }),
    }
}

/// The kernel programs, with their run-time statistics when asked for.
fn load_probes(config: &AttachConfig, follow: probes::Follow) -> Result<Probes, SessionError> {
    let mut probes = Probes::load(config.capture_limit, config.map_capacities, follow, config.bare_probes)?;
    if config.program_stats
        && let Err(error) = probes.enable_run_time_stats()
    {
        warning!("kernel program statistics unavailable: {error}");
    }
    Ok(probes)
}

/// The engine with its prices, content policy and Python options, writing
/// to the outputs the flags name (and keeping every span when `collect`).
fn open_pipeline(config: &AttachConfig, collect: bool) -> Result<Pipeline, SessionError> {
    let prices = match &config.prices {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| SessionError::PriceFile { path: name.clone(), source })?;
            PriceTable::with_overrides(&name, &text)?
        }
        None => PriceTable::built_in(),
    };
    let mut output = open_output(config)?;
    if collect {
        output.collected = Some(Vec::new());
    }
    Ok(Pipeline::new(crate::clock::measure(), prices, config.content.clone(), Box::new(ProcFacts), output)
        .with_library_paths(config.library_paths.clone())
        .with_traced_functions(config.trace_functions.clone()))
}

fn act_on(feedback: Feedback, targets: &mut Targets, probes: &mut Probes, pipeline: &mut Pipeline) {
    if !feedback.verdicts.is_empty()
        && let Err(error) = probes.trace_codes(&feedback.verdicts)
    {
        tracing::warn!(%error, "marking traced functions failed");
    }
    if !feedback.known_stacks.is_empty()
        && let Err(error) = probes.mark_stacks_known(&feedback.known_stacks)
    {
        tracing::warn!(%error, "marking resolved stacks failed");
    }
    targets.follow(feedback.lifecycle, probes, pipeline);
    crate::notices::warnings(&feedback.warnings);
}

/// Hands drained records to the pipeline (and the recording, with
/// `--record`; a recording that fails to write stops).
fn feed(batches: &[Batch], pipeline: &mut Pipeline, recorder: &mut Option<Recorder>) {
    let now = crate::clock::monotonic_now();
    for record in batches.iter().flat_map(Batch::records) {
        if let Some(writer) = recorder
            && let Err(error) = writer.record(record)
        {
            warning!("the recording stopped: {error}");
            *recorder = None;
        }
        pipeline.record(record, now);
    }
    pipeline.output.flush();
}

fn record_name(config: &AttachConfig) -> String {
    config.record.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

fn output_name(config: &AttachConfig) -> String {
    config.json_file.as_ref().map_or_else(|| "stdout".to_owned(), |p| p.display().to_string())
}

fn open_output(config: &AttachConfig) -> Result<Output, SessionError> {
    // Buffered: spans are flushed once per batch of events (`Output::flush`).
    let stdout: Box<dyn Write + Send> = Box::new(BufWriter::new(std::io::stdout()));
    let json_file: Option<Box<dyn Write + Send>> = match &config.json_file {
        Some(path) => Some(Box::new(BufWriter::new(
            File::create(path).map_err(|source| SessionError::Output { path: path.display().to_string(), source })?,
        ))),
        None => None,
    };
    Ok(match (config.terminal_format, json_file) {
        (_, Some(file)) => Output::new(Some(stdout), Some(file)),
        (Format::Pretty, None) => Output::new(Some(stdout), None),
        (Format::Json, None) => Output::new(None, Some(stdout)),
        (Format::None, None) => Output::new(None, None),
    })
}

/// Tells the user what was lost: kernel maps at their limits, events
/// dropped or lost.
fn warn_about_losses(stats: &Stats) {
    crate::notices::warnings(&probes::limit_warnings(&stats.kernel_maps));
    if stats.events_dropped > 0 {
        warning!(
            "{} events were dropped: pytrace fell {} MiB behind the kernel; some spans may be missing",
            stats.events_dropped,
            drain::BACKLOG_BYTES >> 20
        );
    }
    if stats.events_lost > 0 {
        warning!("{} events were lost (ring buffer full); some spans may be missing", stats.events_lost);
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
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal()
}
