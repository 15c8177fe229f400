//! A tracing session: the kernel probes, the pipeline from kernel events to
//! spans, the sinks its spans go to, and the processes traced, which come
//! from a [`TargetSource`] — fixed PIDs (`pytrace attach`), a launched
//! command and its children (`pytrace run`), or the host's Python processes
//! (`pytrace node`). The commands are thin adapters over [`trace`].
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
use pytrace_core::model::Span;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::TraceConfig;
use crate::notices::{notice, warning};
use crate::pipeline::Pipeline;
use crate::privileges::{self, PrivilegeError};
use crate::probes::{self, ProbeError, Probes};
use crate::recording::Recorder;
use crate::sinks::otlp::OtlpError;
use crate::sinks::summary::Summary;
use crate::sinks::{Format, Sinks};
use crate::stats::Stats;
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
    MetricsEndpoint(#[from] crate::sinks::prometheus::endpoint::EndpointError),
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
    pub spans: Vec<Span>,
    pub summary: Summary,
    /// pytrace's figures at the end.
    pub stats: Stats,
}

/// Traces the processes `source` gives until they have exited, a signal
/// arrives or `--duration` passes — or, for a command, until it exits.
pub async fn trace(config: TraceConfig, mut source: TargetSource) -> Result<SessionEnd, SessionError> {
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
    let mut pipeline = open_pipeline(&config)?;
    let mut sinks = open_sinks(&config, source.collects_spans())?;
    let mut export = ExportSession::start(&config, &mut sinks, &host)?;
    let mut telemetry = Telemetry::start(config.metrics_address, &mut sinks).await?;
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
                sinks.deliver(pipeline.take_spans());
            }
            _ = sweep.tick() => probes.sweep_maps(),
            _ = rescan.tick() => {
                // Drain first, so a process's last events precede its exit.
                feed(&drainer.drain_now(), &mut pipeline, &mut recorder);
                act_on(pipeline.take_feedback(), &mut targets, &mut probes, &mut pipeline);
                targets.rescan(&mut probes, &mut pipeline);
                targets.match_pods(&mut probes, &mut pipeline);
                pipeline.tick();
                sinks.deliver(pipeline.take_spans());
                let counts = LoopCounts { traced: targets.len(), events_dropped: drainer.dropped() };
                if let Some(export) = &mut export {
                    export.tick(&mut sinks, |sinks| telemetry::snapshot(&pipeline, sinks, &probes, counts));
                }
                telemetry.tick(|| telemetry::snapshot(&pipeline, &sinks, &probes, counts));
                if targets.is_empty() && ends_with_targets {
                    notice!("every traced process has exited");
                    break;
                }
            }
        }
    }

    let counts =
        LoopCounts { traced: targets.len(), events_dropped: last_events(drainer, &mut pipeline, recorder, &config)? };
    telemetry.finish();
    let (spans, stats) = wind_down(&mut pipeline, &mut sinks, &mut probes, export, counts, &config).await?;
    Ok(SessionEnd { command_status, spans, summary: sinks.summary().clone(), stats })
}

/// Tracing ends: the spans still in flight go out, OTLP export finishes,
/// the closing summary is written. Returns the spans kept for reports and
/// pytrace's last figures.
async fn wind_down(
    pipeline: &mut Pipeline,
    sinks: &mut Sinks,
    probes: &mut Probes,
    export: Option<ExportSession>,
    counts: LoopCounts,
    config: &TraceConfig,
) -> Result<(Vec<Span>, Stats), SessionError> {
    pipeline.finish();
    sinks.deliver(pipeline.take_spans());
    sinks.set_serving(pipeline.serving_counters());
    crate::notices::warnings(&pipeline.take_feedback().warnings);
    probes.sweep_maps();
    if let Some(export) = export {
        let stats = telemetry::snapshot(pipeline, sinks, probes, counts);
        export.finish(sinks, &stats).await;
    }
    let stats = telemetry::snapshot(pipeline, sinks, probes, counts);
    warn_about_losses(&stats);
    let spans = close_sinks(sinks, config, &stats)?;
    Ok((spans, stats))
}

/// The recording `--record` asks for, created.
fn open_recorder(config: &TraceConfig) -> Result<Option<Recorder>, SessionError> {
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
    config: &TraceConfig,
) -> Result<u64, SessionError> {
    feed(&drainer.drain_now(), pipeline, &mut recorder);
    let dropped = drainer.dropped();
    drop(drainer);
    if let Some(recorder) = recorder {
        recorder.finish().map_err(|source| SessionError::Record { path: record_name(config), source })?;
    }
    Ok(dropped)
}

/// Every sink written out and closed; the spans kept for reports.
fn close_sinks(sinks: &mut Sinks, config: &TraceConfig, stats: &Stats) -> Result<Vec<Span>, SessionError> {
    match sinks.finish(stats) {
        // The reader of our stdout went away (`pytrace … | head`): not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(Vec::new()),
        result => result.map_err(|source| SessionError::Output { path: output_name(config), source }),
    }
}

/// The kernel programs, with their run-time statistics when asked for.
fn load_probes(config: &TraceConfig, follow: probes::Follow) -> Result<Probes, SessionError> {
    let mut probes = Probes::load(config.capture_limit, config.map_capacities, follow, config.bare_probes)?;
    if config.program_stats
        && let Err(error) = probes.enable_run_time_stats()
    {
        warning!("kernel program statistics unavailable: {error}");
    }
    Ok(probes)
}

/// The engine with its prices, content policy and Python options.
fn open_pipeline(config: &TraceConfig) -> Result<Pipeline, SessionError> {
    let prices = match &config.prices {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| SessionError::PriceFile { path: name.clone(), source })?;
            PriceTable::with_overrides(&name, &text)?
        }
        None => PriceTable::built_in(),
    };
    Ok(Pipeline::new(crate::clock::measure(), prices, config.content.clone(), Box::new(ProcFacts))
        .with_library_paths(config.library_paths.clone())
        .with_traced_functions(config.trace_functions.clone()))
}

/// Acts on what the pipeline learnt: tells the kernel which code objects
/// are traced functions and which stacks are resolved, follows forks and
/// execs, and shows the user's messages.
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
}

fn record_name(config: &TraceConfig) -> String {
    config.record.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

fn output_name(config: &TraceConfig) -> String {
    config.json_file.as_ref().map_or_else(|| "stdout".to_owned(), |p| p.display().to_string())
}

/// The outputs the flags name (and every span kept when `collect`).
fn open_sinks(config: &TraceConfig, collect: bool) -> Result<Sinks, SessionError> {
    // Buffered: spans are flushed once per batch (`Sinks::deliver`).
    let stdout: Box<dyn Write + Send> = Box::new(BufWriter::new(std::io::stdout()));
    let json_file: Option<Box<dyn Write + Send>> = match &config.json_file {
        Some(path) => Some(Box::new(BufWriter::new(
            File::create(path).map_err(|source| SessionError::Output { path: path.display().to_string(), source })?,
        ))),
        None => None,
    };
    let mut sinks = match (config.terminal_format, json_file) {
        (_, Some(file)) => Sinks::new(Some(stdout), Some(file)),
        (Format::Pretty, None) => Sinks::new(Some(stdout), None),
        (Format::Json, None) => Sinks::new(None, Some(stdout)),
        (Format::None, None) => Sinks::new(None, None),
    };
    if collect {
        sinks.collect_spans();
    }
    Ok(sinks)
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
