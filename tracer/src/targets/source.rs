//! Where a session's processes come from: fixed PIDs (`pytrace attach`), a
//! command pytrace launches, followed with its children (`pytrace run`), or
//! every Python process on the host, running or started later, in any
//! namespace (`pytrace node`).

use tokio::signal::unix::{SignalKind, signal};

use super::attach::libraries::{self, Look};
use super::{TargetsError, launch};
use crate::kubernetes::{self, KubernetesError, KubernetesOptions, PodMetadata};
use crate::notices::notice;
use crate::probes::{Follow, Probes};
use crate::sys::{self, Signal};
use crate::targets::inspect::process::{is_process, looks_like_python};
use crate::targets::select::rules::{ProcessFacts, Selection};

/// `pytrace run`'s command, started held by [`launch::spawn_held`].
pub struct Launch {
    pub held: launch::Held,
    pub command: Vec<String>,
}

pub enum TargetSource {
    /// These processes, until they have all exited.
    Pids(Vec<u32>),
    /// This command and every process it starts, until the command exits.
    Command(Launch),
    /// Every Python process on the host that the selection keeps, until a
    /// signal or `--duration`.
    Host(Selection, KubernetesOptions),
}

impl TargetSource {
    /// The processes traced from the start.
    pub fn initial_pids(&self) -> Vec<u32> {
        match self {
            Self::Pids(pids) => pids.clone(),
            Self::Command(_) => Vec::new(),
            Self::Host(selection, _) => python_processes(selection),
        }
    }

    /// Which processes the kernel follows beyond the initial ones.
    pub fn follow(&self) -> Follow {
        match self {
            Self::Pids(_) => Follow::Given,
            Self::Command(_) => Follow::Children,
            Self::Host(..) => Follow::Host,
        }
    }

    /// Whether every span is kept for reports (`pytrace run`).
    pub fn collects_spans(&self) -> bool {
        matches!(self, Self::Command(_))
    }

    /// `node`: which of the processes that start are traced — Python ones
    /// the selection keeps (`run` traces whatever its command starts).
    pub fn admission(&self) -> Option<Selection> {
        match self {
            Self::Host(selection, _) => Some(selection.clone()),
            Self::Pids(_) | Self::Command(_) => None,
        }
    }

    /// `node` on Kubernetes: starts watching this node's pods.
    pub async fn pod_metadata(&self, host_name: &str) -> Result<Option<PodMetadata>, KubernetesError> {
        match self {
            Self::Host(_, options) => kubernetes::start(options, host_name).await,
            Self::Pids(_) | Self::Command(_) => Ok(None),
        }
    }

    /// Whether the session ends when its traced processes have all exited
    /// (rather than when a command does, or on a signal).
    pub fn ends_with_its_targets(&self) -> bool {
        matches!(self, Self::Pids(_))
    }

    /// Whether a launched command's exit ends the session.
    pub fn has_command(&self) -> bool {
        matches!(self, Self::Command(_))
    }

    /// Puts the command's process in the traced set and lets it run.
    pub fn start(&mut self, probes: &mut Probes) -> Result<(), TargetsError> {
        match self {
            Self::Pids(_) => Ok(()),
            Self::Host(..) => Ok(probes.attach_process_tracepoints()?),
            Self::Command(launch) => {
                probes.attach_process_tracepoints()?;
                start_command(probes, launch)
            }
        }
    }

    /// The line that tells the user what is traced.
    pub fn announce(&self, targets: usize) {
        match self {
            Self::Command(launch) => {
                notice!(
                    "running {:?} (PID {}) and its children",
                    pytrace_core::redact::redact_command_args(&launch.command).join(" "),
                    launch.held.pid
                )
            }
            Self::Pids(_) => notice!("tracing {targets} process(es); press Ctrl-C to stop"),
            Self::Host(..) => notice!(
                "tracing every Python process on this host ({targets} running now, and those that start); \
                 press Ctrl-C to stop"
            ),
        }
    }

    /// The launched command's exit, or never when there is none.
    pub async fn command_exit(&mut self) -> std::process::ExitStatus {
        let mut launch = match self {
            Self::Command(launch) => Some(launch),
            Self::Pids(_) | Self::Host(..) => None,
        };
        wait_command(&mut launch).await
    }
}

/// Puts the command's process in the traced set, probes the TLS library
/// its interpreter will load, and lets it run.
fn start_command(probes: &mut Probes, launch: &mut Launch) -> Result<(), TargetsError> {
    let pid = launch.held.pid;
    probes.trace_pid(pid)?;
    if let Some(python) = launch::predicted_python(&launch.command) {
        libraries::attach_predicted(probes, pid, &launch::prediction_target(python)).announce(pid, Look::Starting);
    }
    launch.held.release();
    Ok(())
}

/// The command's exit, or never when there is no command.
async fn wait_command(launch: &mut Option<&mut Launch>) -> std::process::ExitStatus {
    let Some(launch) = launch else { return std::future::pending().await };
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let group = launch.held.pid;
    loop {
        tokio::select! {
            status = launch.held.wait() => return status,
            _ = async { match &mut terminate { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                sys::signal_group(group, Signal::Terminate);
            }
            _ = async { match &mut interrupt { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                sys::signal_group(group, Signal::Interrupt);
            }
        }
    }
}

/// The host's Python processes now that `selection` keeps (pytrace itself
/// never among them).
fn python_processes(selection: &Selection) -> Vec<u32> {
    let own = std::process::id();
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own && is_process(pid) && looks_like_python(pid))
        .filter(|&pid| selection.is_everything() || selection.selects(&ProcessFacts::of(pid)))
        .collect();
    pids.sort_unstable();
    pids
}
