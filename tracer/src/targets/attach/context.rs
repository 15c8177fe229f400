//! Python context on a traced process: its CPython's layout verified and
//! its thread states handed to the kernel programs, so each call names the
//! Python function that made it; with `--trace-function`, the per-call
//! probes too. What cannot be done is a typed [`ContextSetupError`].

use crate::notices::{notice, warning};
use crate::pipeline::Pipeline;
use crate::probes::{ProbeError, Probes};
use crate::targets::inspect::call_probes::{self, CallProbeError};
use crate::targets::inspect::python_context::{self, ContextError, PythonContext};
use crate::targets::inspect::{TargetProcess, threads};

/// Why a process has no Python context (yet: an interpreter still starting
/// up has no threads).
#[derive(Debug, thiserror::Error)]
pub enum ContextSetupError {
    #[error(transparent)]
    Inspect(#[from] ContextError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
}

/// Why `--trace-function` has no probes in a process.
#[derive(Debug, thiserror::Error)]
enum FunctionCallsError {
    #[error(transparent)]
    Locate(#[from] CallProbeError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
}

/// Sets up Python context (and function probes) for `process`, and says so.
pub fn enable(probes: &mut Probes, pipeline: &mut Pipeline, process: &TargetProcess) -> Result<(), ContextSetupError> {
    let pid = process.pid;
    let Some(context) = python_context::discover(process)? else {
        if pipeline.traces_functions() {
            notice!("PID {pid}: not CPython, so --trace-function has nothing to trace there");
        }
        return Ok(());
    };
    let threads = host_thread_states(process, &context);
    probes.enable_python(
        pid,
        context.kernel_layout,
        &threads,
        &context.object_host_path,
        context.restore_thread_offset,
    )?;
    if let Some(text) = python_context::newer_version_warning(&context.layout) {
        warning!("PID {pid}: {text}");
    }
    notice!(
        "PID {pid}: Python context on (CPython 3.{} layout verified, {} threads)",
        context.layout.minor,
        context.threads.len()
    );
    if pipeline.traces_functions() {
        match enable_function_calls(probes, pid, &context) {
            Ok(()) => notice!("PID {pid}: function spans on (every Python call is probed while tracing)"),
            Err(error) => notice!("PID {pid}: no function spans: {error}; other spans are still produced"),
        }
    }
    pipeline.add_python_process(pid, Box::new(context.memory), context.layout);
    Ok(())
}

/// Tells the user `pid` has no Python context, and why.
pub fn report_missing(pipeline: &Pipeline, pid: u32, error: &ContextSetupError) {
    let functions = if pipeline.traces_functions() { " or function spans" } else { "" };
    notice!("PID {pid}: no Python context{functions}: {error}; HTTP spans are still produced");
}

/// Thread states by host thread id (CPython records ids in its own PID namespace).
fn host_thread_states(process: &TargetProcess, context: &PythonContext) -> Vec<(u32, u64)> {
    let host_ids = process.pid_namespace.map(|_| threads::host_thread_ids(process.pid));
    context
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
        .collect()
}

/// `--trace-function`: the per-call probes for this interpreter.
fn enable_function_calls(probes: &mut Probes, pid: u32, context: &PythonContext) -> Result<(), FunctionCallsError> {
    let sites = call_probes::locate(context)?;
    probes.enable_function_calls(pid, &context.object_host_path, &sites)?;
    Ok(())
}
