//! Loading the embedded kernel programs and attaching them.
//!
//! Which hook gets which program is declared in two tables: [`TLS_PROBES`]
//! (uprobes in OpenSSL) and [`SYSCALL_TRACEPOINTS`]; attaching is the same
//! loop for every row. Uprobes are attached per (process, library file) with
//! the process as the uprobe's scope, so no other process on the host hits
//! them. Syscall tracepoints are global; their programs return at once for
//! processes not in the `TARGET_PIDS` map. Dropping [`Probes`] detaches
//! everything.

use std::collections::HashSet;
use std::num::NonZeroU32;

use aya::maps::{MapData, RingBuf};
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::{TracePoint, UProbe, uprobe::UProbeAttachLocation, uprobe::UProbeScope};
use aya::{Ebpf, EbpfLoader};
use std::path::Path;

use tracer_common::{ALL_KERNEL_MAPS, KernelMap, PyLayout, STAT_COUNT, Stat};

pub mod budget;
mod capacities;
pub mod kernel;
mod ledger;
mod maps;
pub mod rejection;
pub mod sites;

pub use capacities::{MAX_MAP_CAPACITY, MapCapacities, MapCapacityError};
use ledger::MapLedger;
pub use ledger::{MapUsage, limit_warnings};

use sites::{CallEnds, CallProbes, FileId, TlsLibrary};

/// The kernel object built from `tracer-ebpf`.
static KERNEL_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// The kernel object pytrace embeds (every program and map), for tools and
/// tests that load one program of it on their own.
pub fn kernel_object() -> &'static [u8] {
    KERNEL_OBJECT
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Entry,
    Return,
}

/// One uprobe: which program runs where.
#[derive(Clone, Copy, Debug)]
pub struct ProbeSpec {
    pub symbol: &'static str,
    pub program: &'static str,
    pub hook: Hook,
}

const fn probe(symbol: &'static str, program: &'static str, hook: Hook) -> ProbeSpec {
    ProbeSpec { symbol, program, hook }
}

/// OpenSSL: CPython ≥ 3.10 calls only the `_ex` variants, 3.8/3.9 only the
/// plain ones; one return program serves all four. Where the `_ex` variant
/// and the plain one share an internal function, that function is probed
/// instead of both (`tls::probe_shared_callees`).
pub const TLS_PROBES: &[ProbeSpec] = &[
    probe("SSL_write", "ssl_write", Hook::Entry),
    probe("SSL_write", "ssl_call_return", Hook::Return),
    probe("SSL_write_ex", "ssl_write_ex", Hook::Entry),
    probe("SSL_write_ex", "ssl_call_return", Hook::Return),
    probe("SSL_read", "ssl_read", Hook::Entry),
    probe("SSL_read", "ssl_call_return", Hook::Return),
    probe("SSL_read_ex", "ssl_read_ex", Hook::Entry),
    probe("SSL_read_ex", "ssl_call_return", Hook::Return),
    probe("SSL_free", "ssl_free", Hook::Entry),
    probe("SSL_ctrl", "ssl_ctrl", Hook::Entry),
];

/// CPython: thread states, remembered when a thread takes the GIL back.
pub const PYTHON_PROBES: &[ProbeSpec] = &[probe("PyEval_RestoreThread", "py_restore_thread", Hook::Entry)];

/// `--trace-function`: loaded and attached only when the flag is given.
const EVAL_FRAME_ENTRY: &str = "py_eval_frame_entry";
const EVAL_FRAME_ENTRY_38: &str = "py_eval_frame_entry_38";
const EVAL_FRAME_RETURN: &str = "py_eval_frame_return";
const RESUME: &str = "py_resume";
const FRAME_CLEAR: &str = "py_frame_clear";
const RETURN: &str = "py_return";

/// One `syscalls:` tracepoint and the program it runs.
#[derive(Clone, Copy, Debug)]
pub struct TracepointSpec {
    pub name: &'static str,
    pub program: &'static str,
}

const fn tracepoint(name: &'static str, program: &'static str) -> TracepointSpec {
    TracepointSpec { name, program }
}

/// Socket life cycle, then data: the exits share one program per argument shape.
pub const SYSCALL_TRACEPOINTS: &[TracepointSpec] = &[
    tracepoint("sys_enter_mmap", "sys_enter_mmap"),
    tracepoint("sys_enter_socket", "sys_enter_socket"),
    tracepoint("sys_exit_socket", "sys_exit_socket"),
    tracepoint("sys_enter_connect", "sys_enter_connect"),
    tracepoint("sys_enter_accept", "sys_enter_accept"),
    tracepoint("sys_enter_accept4", "sys_enter_accept"),
    tracepoint("sys_exit_accept", "sys_exit_accept"),
    tracepoint("sys_exit_accept4", "sys_exit_accept"),
    tracepoint("sys_enter_close", "sys_enter_close"),
    tracepoint("sys_enter_write", "sys_enter_write"),
    tracepoint("sys_enter_sendto", "sys_enter_sendto"),
    tracepoint("sys_enter_writev", "sys_enter_writev"),
    tracepoint("sys_enter_sendmsg", "sys_enter_sendmsg"),
    tracepoint("sys_enter_read", "sys_enter_read"),
    tracepoint("sys_enter_recvfrom", "sys_enter_recvfrom"),
    tracepoint("sys_enter_readv", "sys_enter_readv"),
    tracepoint("sys_enter_recvmsg", "sys_enter_recvmsg"),
    tracepoint("sys_exit_write", "sys_exit_buffer_data"),
    tracepoint("sys_exit_sendto", "sys_exit_buffer_data"),
    tracepoint("sys_exit_writev", "sys_exit_iovec_data"),
    tracepoint("sys_exit_sendmsg", "sys_exit_iovec_data"),
    tracepoint("sys_exit_read", "sys_exit_buffer_data"),
    tracepoint("sys_exit_recvfrom", "sys_exit_buffer_data"),
    tracepoint("sys_exit_readv", "sys_exit_iovec_data"),
    tracepoint("sys_exit_recvmsg", "sys_exit_iovec_data"),
];

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    KernelTooOld(#[from] kernel::TooOld),
    #[error("loading the kernel programs failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("{0}")]
    Rejected(Box<rejection::Rejection>),
    #[error("kernel program {program}: {source}")]
    Program { program: String, source: aya::programs::ProgramError },
    #[error("map {0} is missing from the kernel object")]
    MissingMap(&'static str),
    #[error("map {map}: {source}")]
    Map { map: &'static str, source: aya::maps::MapError },
    #[error("the kernel map of {} is full ({source}); raise it with --map-capacity {name}=N", name.replace('_', " "))]
    MapFull { name: &'static str, source: aya::maps::MapError },
    #[error("attaching to {symbol} in {library} failed: {source}")]
    Attach { symbol: &'static str, library: String, source: aya::programs::ProgramError },
    #[error("attaching to the syscalls:{tracepoint} tracepoint failed: {source}")]
    Tracepoint { tracepoint: &'static str, source: aya::programs::ProgramError },
}

pub struct Probes {
    ebpf: Ebpf,
    /// User space's changes to the per-process maps, and the evictions found.
    ledger: MapLedger,
    /// (pid, file) pairs attached; pid 0 when probes are for all processes.
    attached: HashSet<(u32, FileId)>,
    /// Python probes attached for all processes: (program, object, offset).
    attached_python: HashSet<(&'static str, std::path::PathBuf, u64)>,
    /// `pytrace run`: uprobes fire for every process and the programs pick
    /// the traced ones, so a child is traced from its first instruction.
    all_processes: bool,
    /// Benchmark floor: the same hooks run programs that do no work.
    bare: bool,
    /// Held while the kernel times every BPF program (`--program-stats`).
    run_time_stats: Option<std::os::fd::OwnedFd>,
    /// Uprobes that could not be attached, for `/metrics`.
    attach_failures: u64,
    /// Every tracepoint attachment, detached side by side on drop.
    tracepoint_links: Vec<(&'static str, TracePointLinkId)>,
}

/// Which program runs at a hook: the real one, or the benchmark floor's.
fn program_for(program: &'static str, hook: Hook, bare: bool) -> &'static str {
    match (bare, hook) {
        (false, _) => program,
        (true, Hook::Entry) => "floor_uprobe",
        (true, Hook::Return) => "floor_uretprobe",
    }
}

fn tracepoint_program_for(program: &'static str, bare: bool) -> &'static str {
    if bare { "floor_tracepoint" } else { program }
}

/// Process life-cycle tracepoints for `pytrace run` (`sched:` events).
pub const PROCESS_TRACEPOINTS: &[TracepointSpec] =
    &[tracepoint("sched_process_fork", "sched_process_fork"), tracepoint("sched_process_exec", "sched_process_exec")];

/// Which processes a session follows beyond those it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// None: uprobes are scoped to each traced process.
    Given,
    /// Their children (`pytrace run`): uprobes for all processes, filtered
    /// in the kernel; forks and execs of traced processes reported.
    Children,
    /// Every process's exec too (`pytrace node`), to find new Python processes.
    Host,
}

impl Probes {
    /// Loads and verifies every program; attaches nothing yet.
    pub fn load(capture_limit: u32, capacities: MapCapacities, follow: Follow, bare: bool) -> Result<Self, ProbeError> {
        kernel::check_this_kernel()?;
        let child_pid_offset = fork_child_pid_offset();
        let watch_all_execs = u32::from(follow == Follow::Host);
        let follow_children = follow != Follow::Given;
        let mut loader = EbpfLoader::new();
        for map in ALL_KERNEL_MAPS {
            loader.map_max_entries(map.info().symbol, capacities.of(map));
        }
        let mut ebpf = loader
            .override_global("CAPTURE_LIMIT", &capture_limit, true)
            .override_global("FORK_CHILD_PID_OFFSET", &child_pid_offset, true)
            .override_global("WATCH_ALL_EXECS", &watch_all_execs, true)
            .load(KERNEL_OBJECT)?;
        for program in unique(TLS_PROBES.iter().chain(PYTHON_PROBES).map(|p| program_for(p.program, p.hook, bare))) {
            let started = std::time::Instant::now();
            uprobe(&mut ebpf, program)?.load().map_err(|source| load_error(program, source))?;
            log_verified(&ebpf, program, started);
        }
        let process_tracepoints = if follow_children { PROCESS_TRACEPOINTS } else { &[] };
        let tracepoints = SYSCALL_TRACEPOINTS.iter().chain(process_tracepoints);
        for program in unique(tracepoints.map(|t| tracepoint_program_for(t.program, bare))) {
            let started = std::time::Instant::now();
            tracepoint_program(&mut ebpf, program)?.load().map_err(|source| load_error(program, source))?;
            log_verified(&ebpf, program, started);
        }
        Ok(Self {
            ebpf,
            ledger: MapLedger::new(capacities),
            attached: HashSet::new(),
            attached_python: HashSet::new(),
            all_processes: follow_children,
            bare,
            run_time_stats: None,
            attach_failures: 0,
            tracepoint_links: Vec::new(),
        })
    }

    /// Loads every program of the kernel object that is not loaded yet
    /// (`--trace-function`'s, `pytrace run`'s, the benchmark floor's): `doctor`
    /// has this kernel's verifier check them all.
    pub fn load_every_program(&mut self) -> Result<(), ProbeError> {
        for (name, program) in self.ebpf.programs_mut() {
            let loaded = match program {
                aya::programs::Program::UProbe(p) if p.fd().is_err() => p.load(),
                aya::programs::Program::TracePoint(p) if p.fd().is_err() => p.load(),
                _ => Ok(()),
            };
            loaded.map_err(|source| load_error(name, source))?;
        }
        Ok(())
    }

    /// What each loaded program asks of the verifier, against the budgets
    /// (`budget`), by program name.
    pub fn budgets(&self) -> Result<Vec<budget::ProgramBudget>, budget::BudgetError> {
        let mut stacks = budget::object_stack_use(KERNEL_OBJECT)?;
        let mut budgets: Vec<budget::ProgramBudget> = self
            .ebpf
            .programs()
            .filter_map(|(name, program)| {
                let info = program.info().ok()?;
                Some(budget::ProgramBudget {
                    program: name.to_owned(),
                    instructions: info.verified_instruction_count(),
                    stack: stacks.remove(name)?,
                })
            })
            .collect();
        budgets.sort_by(|a, b| a.program.cmp(&b.program));
        Ok(budgets)
    }

    /// Uprobes that could not be attached so far.
    pub fn attach_failures(&self) -> u64 {
        self.attach_failures
    }

    /// Has the kernel time every BPF program run from now on (host-wide,
    /// until `self` is dropped): a few nanoseconds per run, for benchmarks.
    pub fn enable_run_time_stats(&mut self) -> Result<(), aya::sys::SyscallError> {
        self.run_time_stats = Some(aya::sys::enable_stats(aya::sys::Stats::RunTime)?);
        Ok(())
    }

    /// Runs and time spent in each of our programs that ran, by program name,
    /// since [`Self::enable_run_time_stats`] (empty when it was not called).
    pub fn program_run_times(&self) -> std::collections::BTreeMap<String, ProgramRunTime> {
        if self.run_time_stats.is_none() {
            return std::collections::BTreeMap::new();
        }
        self.ebpf
            .programs()
            .filter_map(|(name, program)| {
                let info = program.info().ok()?;
                let runs = info.run_count();
                (runs > 0).then(|| (name.to_owned(), ProgramRunTime { runs, ns: info.run_time().as_nanos() as u64 }))
            })
            .collect()
    }

    /// Follows forks and execs of traced processes (`pytrace run`).
    pub fn attach_process_tracepoints(&mut self) -> Result<(), ProbeError> {
        for spec in PROCESS_TRACEPOINTS {
            let link = tracepoint_program(&mut self.ebpf, spec.program)?
                .attach("sched", spec.name)
                .map_err(|source| ProbeError::Tracepoint { tracepoint: spec.name, source })?;
            self.tracepoint_links.push((spec.program, link));
        }
        Ok(())
    }

    /// The uprobe scope for `pid`'s probes.
    fn scope(&self, pid: u32) -> UProbeScope {
        match NonZeroU32::new(pid) {
            Some(pid) if !self.all_processes => UProbeScope::OneProcess(pid),
            _ => UProbeScope::AllProcesses,
        }
    }

    /// Attaches every syscall tracepoint (once per session).
    pub fn attach_syscalls(&mut self) -> Result<(), ProbeError> {
        for spec in SYSCALL_TRACEPOINTS {
            let program = tracepoint_program_for(spec.program, self.bare);
            let link = tracepoint_program(&mut self.ebpf, program)?
                .attach("syscalls", spec.name)
                .map_err(|source| ProbeError::Tracepoint { tracepoint: spec.name, source })?;
            self.tracepoint_links.push((program, link));
        }
        Ok(())
    }

    /// Turns on Python stack capture for `pid`: its layout, the thread
    /// states known at attach, and — for versions whose thread states do not
    /// record native thread ids (3.8–3.10) — the `PyEval_RestoreThread` probe.
    pub fn enable_python(
        &mut self,
        pid: u32,
        layout: PyLayout,
        threads: &[(u32, u64)],
        object: &Path,
        restore_thread_offset: u64,
    ) -> Result<(), ProbeError> {
        self.store(KernelMap::PythonLayouts, pid, layout)?;
        for (tid, tstate) in threads {
            // A thread the map has no room for is found by the kernel's own walk.
            let _ = self.store(KernelMap::ThreadStates, (u64::from(pid) << 32) | u64::from(*tid), *tstate);
        }
        if layout.tstate_native_thread_id != 0 {
            return Ok(());
        }
        let scope = self.scope(pid);
        if self.all_processes
            && !self.attached_python.insert(("py_restore_thread", object.to_owned(), restore_thread_offset))
        {
            return Ok(());
        }
        for spec in PYTHON_PROBES {
            let attached = uprobe(&mut self.ebpf, spec.program)?.attach(
                UProbeAttachLocation::AbsoluteOffset(restore_thread_offset),
                object,
                scope,
            );
            if let Err(source) = attached {
                self.attach_failures += 1;
                return Err(ProbeError::Attach { symbol: spec.symbol, library: object.display().to_string(), source });
            }
        }
        Ok(())
    }

    /// Turns on `--trace-function` probes for `pid` at `sites` in the
    /// interpreter `object`.
    pub fn enable_function_calls(&mut self, pid: u32, object: &Path, sites: &CallProbes) -> Result<(), ProbeError> {
        match sites {
            CallProbes::EvalFrame { offset, frame_is_first_argument } => {
                let entry = if *frame_is_first_argument { EVAL_FRAME_ENTRY_38 } else { EVAL_FRAME_ENTRY };
                self.attach_python(pid, entry, "_PyEval_EvalFrameDefault", *offset, object)?;
                self.attach_python(pid, EVAL_FRAME_RETURN, "_PyEval_EvalFrameDefault", *offset, object)?;
            }
            CallProbes::Resume { handlers, end } => {
                for handler in handlers {
                    self.attach_python(pid, RESUME, "the RESUME handler", *handler, object)?;
                }
                match end {
                    CallEnds::FrameClear(offset) => {
                        self.attach_python(pid, FRAME_CLEAR, "the frame-clearing function", *offset, object)?;
                    }
                    CallEnds::ReturnHandlers(offsets) => {
                        for offset in offsets {
                            self.attach_python(pid, RETURN, "a return handler", *offset, object)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Attaches `program` (loading it on first use) at `offset` in `object`, scoped to `pid`.
    fn attach_python(
        &mut self,
        pid: u32,
        program: &'static str,
        site: &'static str,
        offset: u64,
        object: &Path,
    ) -> Result<(), ProbeError> {
        if self.all_processes && !self.attached_python.insert((program, object.to_owned(), offset)) {
            return Ok(());
        }
        let scope = self.scope(pid);
        let probe = uprobe(&mut self.ebpf, program)?;
        if probe.fd().is_err() {
            let started = std::time::Instant::now();
            probe.load().map_err(|source| load_error(program, source))?;
            log_verified(&self.ebpf, program, started);
        }
        let attached =
            uprobe(&mut self.ebpf, program)?.attach(UProbeAttachLocation::AbsoluteOffset(offset), object, scope);
        if let Err(source) = attached {
            self.attach_failures += 1;
            return Err(ProbeError::Attach { symbol: site, library: object.display().to_string(), source });
        }
        Ok(())
    }

    /// Attaches every probe whose symbol `library` defines, scoped to `pid`.
    /// Returns false when this library was already attached for this pid.
    pub fn attach_library(&mut self, pid: u32, library: &TlsLibrary) -> Result<bool, ProbeError> {
        let owner = if self.all_processes { 0 } else { pid };
        if !self.attached.insert((owner, library.id)) {
            return Ok(false);
        }
        let scope = self.scope(pid);
        for spec in TLS_PROBES {
            let Some((_, offset)) = library.symbols.iter().find(|(s, _)| *s == spec.symbol) else {
                continue;
            };
            let program = uprobe(&mut self.ebpf, program_for(spec.program, spec.hook, self.bare))?;
            let attached = program.attach(UProbeAttachLocation::AbsoluteOffset(*offset), &library.host_path, scope);
            if let Err(source) = attached {
                // Not attached after all: a later try may succeed (and must not be skipped).
                self.attached.remove(&(owner, library.id));
                self.attach_failures += 1;
                return Err(ProbeError::Attach { symbol: spec.symbol, library: library.path.clone(), source });
            }
        }
        Ok(true)
    }

    /// Whether uprobes can be attached here: one probe on `offset` in
    /// `object`, for this process only, attached and detached at once.
    pub fn try_uprobe(&mut self, object: &Path, offset: u64) -> Result<(), ProbeError> {
        let scope = UProbeScope::OneProcess(NonZeroU32::new(std::process::id()).unwrap_or(NonZeroU32::MIN));
        let program = uprobe(&mut self.ebpf, "ssl_free")?;
        let link = program.attach(UProbeAttachLocation::AbsoluteOffset(offset), object, scope).map_err(|source| {
            ProbeError::Attach { symbol: "a test function", library: object.display().to_string(), source }
        })?;
        program.detach(link).map_err(|source| ProbeError::Program { program: "ssl_free".into(), source })
    }

    pub fn take_ring_buffer(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self.ebpf.take_map("EVENTS").ok_or(ProbeError::MissingMap("EVENTS"))?;
        RingBuf::try_from(map).map_err(|source| ProbeError::Map { map: "EVENTS", source })
    }
}

/// Where `child_pid` sits in this kernel's `sched_process_fork` records,
/// from the tracepoint's format file (20 on recent kernels, 24 on older ones).
fn fork_child_pid_offset() -> u32 {
    let format = std::fs::read_to_string("/sys/kernel/tracing/events/sched/sched_process_fork/format")
        .or_else(|_| std::fs::read_to_string("/sys/kernel/debug/tracing/events/sched/sched_process_fork/format"))
        .unwrap_or_default();
    format
        .lines()
        .find(|line| line.contains("pid_t child_pid;"))
        .and_then(|line| line.split("offset:").nth(1)?.split(';').next()?.trim().parse().ok())
        .unwrap_or(20)
}

/// Program names in first-seen order, each once.
fn unique(names: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut seen = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

fn tracepoint_program<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut TracePoint, ProbeError> {
    let missing = || ProbeError::Program { program: program.into(), source: aya::programs::ProgramError::NotLoaded };
    ebpf.program_mut(program)
        .ok_or_else(missing)?
        .try_into()
        .map_err(|source| ProbeError::Program { program: program.into(), source })
}

impl Drop for Probes {
    /// Detaches the tracepoints side by side: each detach waits for the
    /// kernel's RCU grace period (~75 ms in this VM), which one after the
    /// other kept pytrace from exiting for ~1.8 s after its summary.
    fn drop(&mut self) {
        let mut links = Vec::new();
        for (program, id) in std::mem::take(&mut self.tracepoint_links) {
            if let Ok(link) = tracepoint_program(&mut self.ebpf, program).map(|p| p.take_link(id)) {
                links.extend(link.ok());
            }
        }
        std::thread::scope(|scope| {
            for link in links {
                scope.spawn(move || drop(link));
            }
        });
    }
}

/// A failed load: the kernel's verifier refusing the program (its log
/// kept, the rejection named as a bug to report), or anything else.
fn load_error(program: &str, source: aya::programs::ProgramError) -> ProbeError {
    if let aya::programs::ProgramError::LoadError { verifier_log, .. } = &source {
        let log = verifier_log.to_string();
        if rejection::is_verifier_log(&log) {
            return ProbeError::Rejected(Box::new(rejection::Rejection::new(program, &kernel::release(), &log)));
        }
    }
    ProbeError::Program { program: program.into(), source }
}

/// What verifying `program` took (`-vv`): the verifier's work is most of
/// pytrace's start-up time.
fn log_verified(ebpf: &Ebpf, program: &str, started: std::time::Instant) {
    let instructions =
        ebpf.program(program).and_then(|p| p.info().ok()).and_then(|info| info.verified_instruction_count());
    tracing::debug!(program, ?instructions, elapsed_ms = started.elapsed().as_millis() as u64, "program verified");
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut UProbe, ProbeError> {
    let missing = || ProbeError::Program { program: program.into(), source: aya::programs::ProgramError::NotLoaded };
    ebpf.program_mut(program)
        .ok_or_else(missing)?
        .try_into()
        .map_err(|source| ProbeError::Program { program: program.into(), source })
}

/// How often a kernel program ran and for how long in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProgramRunTime {
    pub runs: u64,
    pub ns: u64,
}

/// Stat index helper for readers of [`Probes::stats`].
pub fn stat(totals: &[u64; STAT_COUNT as usize], which: Stat) -> u64 {
    totals[which as usize]
}

#[cfg(test)]
mod tests {
    use super::sites::TLS_FUNCTIONS;
    use super::*;

    #[test]
    fn every_tls_probe_is_on_a_function_inspection_finds() {
        for spec in TLS_PROBES {
            assert!(TLS_FUNCTIONS.contains(&spec.symbol), "{} is not among the functions inspected", spec.symbol);
        }
        for function in TLS_FUNCTIONS {
            assert!(TLS_PROBES.iter().any(|spec| spec.symbol == *function), "{function} is found but never probed");
        }
    }
}
