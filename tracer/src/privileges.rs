//! Can this host and this user trace? Checked before anything is loaded, so
//! the user gets one clear sentence instead of a kernel error code.

use std::path::Path;

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "pytrace needs root, or the capabilities CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, \
         CAP_DAC_READ_SEARCH and CAP_SYS_ADMIN (uprobes); run it with sudo, and `pytrace doctor` to check"
    )]
    NotPrivileged,
    #[error(
        "this kernel offers no uprobes (no {UPROBE_PMU} and no uprobe_events in tracefs); \
         pytrace needs a kernel built with CONFIG_UPROBE_EVENTS"
    )]
    NoUprobes,
    #[error(
        "tracefs is not mounted and mounting it at {TRACEFS} failed: {0}; mount it with `mount -t tracefs nodev {TRACEFS}`"
    )]
    TracefsMount(std::io::Error),
    #[error("this kernel has no tracefs ({TRACEFS} does not exist); pytrace needs CONFIG_TRACING")]
    NoTracefs,
    #[error(
        "this kernel offers no syscall tracepoints (no {TRACEFS}/events/syscalls); \
         pytrace needs CONFIG_FTRACE_SYSCALLS"
    )]
    NoSyscallTracepoints,
}

const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe/type";
const TRACEFS: &str = "/sys/kernel/tracing";

const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Root, or the capabilities tracing needs.
pub fn check_privileges() -> Result<(), PrivilegeError> {
    if sys::is_root() {
        return Ok(());
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    let bpf = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    if bpf && has(CAP_SYS_PTRACE) && has(CAP_DAC_READ_SEARCH) { Ok(()) } else { Err(PrivilegeError::NotPrivileged) }
}

/// Uprobes (through the perf PMU, or tracefs) and syscall tracepoints
/// (which need tracefs): mounts tracefs when it is merely unmounted.
pub fn ensure_tracing() -> Result<(), PrivilegeError> {
    let tracefs = Path::new(TRACEFS);
    let mounted = |p: &Path| p.join("events").is_dir();
    if !mounted(tracefs) {
        if !tracefs.is_dir() {
            return Err(PrivilegeError::NoTracefs);
        }
        mount_tracefs().map_err(PrivilegeError::TracefsMount)?;
    }
    if !Path::new(UPROBE_PMU).exists() && !tracefs.join("uprobe_events").exists() {
        return Err(PrivilegeError::NoUprobes);
    }
    if !tracefs.join("events/syscalls").is_dir() {
        return Err(PrivilegeError::NoSyscallTracepoints);
    }
    Ok(())
}

fn mount_tracefs() -> std::io::Result<()> {
    sys::mount(c"nodev", c"/sys/kernel/tracing", c"tracefs")
}

/// Lifts the locked-memory limit that kernels before 5.11 charge BPF maps to.
pub fn raise_memlock_limit() {
    sys::raise_memlock_limit();
}
