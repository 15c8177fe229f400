//! The processes a session traces, found and handled in stages, the way
//! OBI's discovery is built:
//!
//! - **source** — where targets come from: fixed PIDs (`attach`), a
//!   launched command and its children (`run`, with [`launch`] and
//!   [`identity`]), or every Python process of the host (`node`);
//! - **watch** — what tells pytrace to look again: the kernel's fork, exec
//!   and mmap reports, and rescans on a schedule ([`watch`]);
//! - **select** — which processes `node` keeps, by rules and Kubernetes
//!   pods, and what their pods add to their resource ([`select`]);
//! - **inspect** — what a process maps and runs, read from `/proc` and its
//!   files: its TLS library, its CPython ([`inspect`]);
//! - **attach** — probes on its TLS library, Python context, its open
//!   sockets seeded ([`attach`]).
//!
//! [`Targets`] holds the traced set and runs the stages for each process.

pub mod attach;
pub mod identity;
pub mod inspect;
pub mod launch;
pub mod select;
pub mod source;
pub mod watch;

use std::collections::HashMap;

use attach::context;
use attach::libraries::{Look, attach_tls};
use attach::seeding::SeededSockets;
use inspect::process::{ResourceDefaults, has_exited, is_process};
use inspect::{TargetError, TargetProcess};
use pytrace_core::engine::Lifecycle;
use select::{Admission, PodVerdict};
use watch::Traced;

use crate::notices::{notice, warning};
use crate::pipeline::Pipeline;
use crate::probes::{ProbeError, Probes};

/// Why tracing the targets could not start.
#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error(transparent)]
    Inspect(#[from] TargetError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(
        "PID {pid} maps {library}, but no probe could be attached to it ({error}); run `pytrace doctor` \
         to see which privilege or kernel feature is missing"
    )]
    NoTlsProbes { pid: u32, library: String, error: Box<ProbeError> },
}

pub struct Targets {
    traced: HashMap<u32, Traced>,
    host: String,
    resource_defaults: ResourceDefaults,
    /// Off for the benchmark's bare-probe floor.
    python_context: bool,
    admission: Admission,
    seeded: SeededSockets,
}

impl Targets {
    /// Inspects `pids`; any that cannot be inspected is an error (`node`:
    /// found by a scan of the host, it may have exited since).
    pub fn inspect(
        pids: &[u32],
        host: &str,
        resource_defaults: &ResourceDefaults,
        python_context: bool,
        admission: Admission,
    ) -> Result<Self, TargetsError> {
        let mut traced = HashMap::new();
        for &pid in pids {
            match TargetProcess::inspect(pid) {
                Ok(process) => {
                    traced.insert(pid, Traced::new(process));
                }
                Err(TargetError::NoSuchProcess(_)) if admission.judges() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Self {
            traced,
            host: host.to_owned(),
            resource_defaults: resource_defaults.clone(),
            python_context,
            admission,
            seeded: SeededSockets::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.traced.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traced.is_empty()
    }

    /// Starts tracing the inspected processes: the kernel's traced set,
    /// their resources, TLS probes, Python context and open sockets.
    /// `node`: a process that cannot be probed is reported once and left
    /// out; the others are still traced.
    pub fn start(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) -> Result<(), TargetsError> {
        let mut left_out = Vec::new();
        for (&pid, traced) in &mut self.traced {
            probes.trace_pid(pid)?;
            traced.pod = self.admission.pod_resource(&traced.process);
            pipeline
                .add_process(pid, traced.process.resource(&self.host, &self.resource_defaults, traced.pod.as_ref()));
            announce_runtime(&traced.process);
            let report = attach_tls(probes, traced, Look::First);
            report.announce(pid, Look::First);
            if let Some((library, error)) = report.blocking_refusal() {
                let error = TargetsError::NoTlsProbes { pid, library, error: Box::new(error) };
                if !self.admission.judges() {
                    return Err(error);
                }
                warning!("{error}; leaving it out");
                left_out.push(pid);
                continue;
            }
            if self.python_context
                && let Err(error) = context::enable(probes, pipeline, &traced.process)
            {
                context::report_missing(pipeline, pid, &error);
            }
            self.seeded.seed(probes, pipeline, pid)?;
        }
        for pid in left_out {
            self.traced.remove(&pid);
            probes.forget_pid(pid);
        }
        Ok(())
    }

    /// New processes (forks) and new programs (execs) among the traced
    /// ones, and libraries they mapped; then another try at Python context
    /// for those still starting.
    pub fn follow(&mut self, lifecycle: Vec<Lifecycle>, probes: &mut Probes, pipeline: &mut Pipeline) {
        for event in lifecycle {
            match event {
                Lifecycle::Mapped(pid) => self.mapped(pid, probes),
                Lifecycle::Forked(pid) => self.forked(pid, probes, pipeline),
                Lifecycle::Exec(pid) => self.exec(pid, probes, pipeline),
            }
        }
        self.retry_starting(probes, pipeline);
    }

    /// A traced process mapped a file executable: look at once — a library
    /// just loaded is about to be called — and again at the next look, in
    /// case the loader had not finished mapping it.
    fn mapped(&mut self, pid: u32, probes: &mut Probes) {
        let Some(traced) = self.traced.get_mut(&pid) else { return };
        if traced.process.refresh_maps().is_ok() {
            attach_tls(probes, traced, Look::Again).announce(pid, Look::Starting);
        }
        traced.map_changed();
    }

    /// A traced process forked: the child runs its parent's program. (A new
    /// thread of a traced process is covered by its process already.)
    fn forked(&mut self, pid: u32, probes: &mut Probes, pipeline: &mut Pipeline) {
        if self.traced.contains_key(&pid) {
            return;
        }
        if !is_process(pid) {
            probes.forget_pid(pid);
            return;
        }
        self.trace_new(pid, probes, pipeline);
    }

    /// A traced process runs another program: what was known of the old
    /// one's code no longer holds, and `node` judges the new one.
    fn exec(&mut self, pid: u32, probes: &mut Probes, pipeline: &mut Pipeline) {
        pipeline.forget_program(pid);
        if !self.admission.admits_program(pid) {
            // Not Python (or no longer), or not selected: left alone.
            if self.traced.remove(&pid).is_some() {
                pipeline.process_exited(pid);
            }
            probes.forget_pid(pid);
            return;
        }
        self.trace_new(pid, probes, pipeline);
    }

    /// Starts tracing a process that just started or exec'd: Python
    /// context is tried at each look while its interpreter starts.
    fn trace_new(&mut self, pid: u32, probes: &mut Probes, pipeline: &mut Pipeline) {
        let Ok(process) = TargetProcess::inspect(pid) else { return };
        if let Err(error) = probes.trace_pid(pid) {
            warning!("PID {pid} cannot be traced: {error}");
            return;
        }
        let mut traced = Traced::new(process);
        traced.pod = self.admission.pod_resource(&traced.process);
        pipeline.add_process(pid, traced.process.resource(&self.host, &self.resource_defaults, traced.pod.as_ref()));
        attach_tls(probes, &mut traced, Look::Starting).announce(pid, Look::Starting);
        traced.context_pending = Some(0);
        self.traced.insert(pid, traced);
    }

    /// Processes still starting: probes that could not be attached, and
    /// Python context, are tried again.
    fn retry_starting(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) {
        for (&pid, traced) in &mut self.traced {
            if traced.context_pending.is_none() {
                continue;
            }
            attach_tls(probes, traced, Look::Starting).announce(pid, Look::Starting);
            if traced.process.python.is_none() {
                // The interpreter's library may not be mapped yet: look again, quietly.
                if let Ok(process) = TargetProcess::inspect(pid) {
                    traced.process = process;
                }
                if traced.process.python.is_none() {
                    traced.context_pending = traced.next_context_attempt();
                    continue;
                }
            }
            traced.context_pending = match context::enable(probes, pipeline, &traced.process) {
                Ok(()) => None,
                Err(error) if traced.context_attempts_exhausted() => {
                    context::report_missing(pipeline, pid, &error);
                    None
                }
                Err(_) => traced.next_context_attempt(),
            };
        }
    }

    /// Forgets the targets that exited; probes the TLS objects the others
    /// loaded since their memory map was last read (dlopen), when it is due.
    pub fn rescan(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) {
        self.traced.retain(|&pid, traced| {
            let due = traced.map_due();
            if has_exited(pid) {
                notice!("PID {pid} exited");
                pipeline.process_exited(pid);
                probes.forget_pid(pid);
                return false;
            }
            if !due {
                return true;
            }
            // A map that cannot be read now (the process in the middle of an
            // exec) is read again at the next look.
            if traced.process.refresh_maps().is_err() {
                traced.map_changed();
                return true;
            }
            attach_tls(probes, traced, Look::Again).announce(pid, Look::Again);
            true
        });
    }

    /// `node` on Kubernetes: when the watch learnt something, matches the
    /// traced processes with their pods again — their resources gain the
    /// pods' attributes, and a process the selection (or its pod's opt-out)
    /// now leaves out is no longer traced.
    pub fn match_pods(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) {
        if !self.admission.pods_changed() {
            return;
        }
        let mut left_out = Vec::new();
        for (&pid, traced) in &mut self.traced {
            match self.admission.judge_with_pod(pid, traced) {
                PodVerdict::Unknown => {}
                PodVerdict::LeftOut(pod) => {
                    notice!("PID {pid} left out: its pod {pod} is not selected (or opts out)");
                    left_out.push(pid);
                }
                PodVerdict::Kept(pod) => {
                    if traced.pod.as_ref() != Some(&pod) {
                        let resource = traced.process.resource(&self.host, &self.resource_defaults, Some(&pod));
                        pipeline.add_process(pid, resource);
                        traced.pod = Some(pod);
                    }
                }
            }
        }
        for pid in left_out {
            self.traced.remove(&pid);
            pipeline.process_exited(pid);
            probes.forget_pid(pid);
        }
    }
}

/// What a process runs, as attach finds it.
fn announce_runtime(process: &TargetProcess) {
    let pid = process.pid;
    match &process.python {
        Some(python) => notice!("PID {pid} runs CPython {} ({})", python.version, python.object_path),
        None => {
            warning!("PID {pid} ({}) does not look like CPython; tracing its HTTP traffic anyway", process.executable)
        }
    }
}
