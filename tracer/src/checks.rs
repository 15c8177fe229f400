//! `pytrace doctor`: what will and will not work on this host, and which
//! pytrace (built with which toolchain) says so; one line per item, each
//! failure with what to change — by reading the kernel's facts
//! and by trying: loading and verifying the kernel programs, attaching one
//! uprobe and the syscall tracepoints, then detaching them. With a PID, what
//! pytrace finds in that process.
//!
//! The facts are parsed by pure functions (tested); the tries need the
//! kernel.

use std::path::Path;

use crate::probes::{ProbeError, Probes, kernel};
use crate::targets::inspect::elf::Elf;
use crate::targets::inspect::mapped_files::parse_maps;
use crate::targets::inspect::{TargetProcess, tls};

/// How one item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, with a caveat.
    Note,
    /// Tracing cannot work until this changes.
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub item: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

impl Check {
    fn new(item: &'static str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self { item, verdict, detail: detail.into() }
    }

    pub fn line(&self) -> String {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Note => "note",
            Verdict::Fail => "FAIL",
        };
        format!("{mark}  {:<20} {}", self.item, self.detail)
    }
}

/// The capabilities tracing uses, each with what it is for.
pub const CAPABILITIES: &[(u32, &str, &str)] = &[
    (39, "CAP_BPF", "load the kernel programs and their maps"),
    (38, "CAP_PERFMON", "attach uprobes and tracepoints, read the kernel's clock in programs"),
    (19, "CAP_SYS_PTRACE", "read the traced processes' memory (/proc/PID/mem, /proc/PID/root)"),
    (2, "CAP_DAC_READ_SEARCH", "open the traced processes' files whoever owns them"),
    (
        21,
        "CAP_SYS_ADMIN",
        "attach uprobes to another process (perf_event_open refuses them without it here, whatever \
         perf_event_paranoid says) and open /proc/PID/map_files",
    ),
];

/// Every check about the host, in order; with `programs`, each kernel
/// program's budgets after them (every program loaded, not only those the
/// commands load at start).
pub fn host_checks(programs: bool) -> (Vec<Check>, Vec<crate::probes::budget::ProgramBudget>) {
    let kernel = kernel_check(&read("/proc/sys/kernel/osrelease"));
    let kernel_refused = kernel.verdict == Verdict::Fail;
    let mut checks = vec![
        kernel,
        Check::new("pytrace", Verdict::Ok, crate::VERSION),
        capabilities_check(effective_capabilities()),
        file_check("BTF", "/sys/kernel/btf/vmlinux", "kernel type information present", Verdict::Note),
        lockdown_check(&read("/sys/kernel/security/lockdown")),
        tracefs_check(),
        file_check("uprobes", "/sys/bus/event_source/devices/uprobe/type", "the uprobe PMU is there", Verdict::Fail),
        file_check(
            "syscall tracepoints",
            "/sys/kernel/tracing/events/syscalls",
            "syscalls:sys_enter_*/sys_exit_* present",
            Verdict::Fail,
        ),
        paranoid_check(&read("/proc/sys/kernel/perf_event_paranoid")),
        cgroup_check(&read("/proc/self/mounts")),
    ];
    if kernel_refused {
        return (checks, Vec::new()); // a kernel the programs are not for: nothing is loaded
    }
    let (tries, budgets) = try_probes(programs);
    checks.extend(tries);
    (checks, budgets)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The kernel release, against the oldest the programs are proven on.
pub fn kernel_check(release: &str) -> Check {
    match kernel::supported(release) {
        Ok(()) => Check::new("kernel", Verdict::Ok, format!("Linux {}", release.trim())),
        Err(_) if kernel::overridden() => Check::new(
            "kernel",
            Verdict::Note,
            format!(
                "Linux {}: older than pytrace's minimum; tried anyway ({}=1)",
                release.trim(),
                kernel::OVERRIDE_VARIABLE
            ),
        ),
        Err(too_old) => Check::new("kernel", Verdict::Fail, too_old.to_string()),
    }
}

/// The effective capability set of this process.
fn effective_capabilities() -> u64 {
    read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// Which of [`CAPABILITIES`] are missing, each named with its purpose.
pub fn capabilities_check(effective: u64) -> Check {
    let missing: Vec<String> = CAPABILITIES
        .iter()
        .filter(|(bit, _, _)| effective & (1 << bit) == 0)
        .map(|(_, name, purpose)| format!("{name} (to {purpose})"))
        .collect();
    if missing.is_empty() {
        return Check::new(
            "capabilities",
            Verdict::Ok,
            "CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SYS_ADMIN",
        );
    }
    Check::new("capabilities", Verdict::Fail, format!("missing {}; run as root or grant them", missing.join(", ")))
}

/// Kernel lockdown: `confidentiality` forbids reading user memory from BPF.
pub fn lockdown_check(lockdown: &str) -> Check {
    let mode = lockdown.split('[').nth(1).and_then(|rest| rest.split(']').next()).unwrap_or("none");
    match mode {
        "confidentiality" => Check::new(
            "lockdown",
            Verdict::Fail,
            "confidentiality: BPF programs may not read process memory; boot with lockdown=integrity or none",
        ),
        "integrity" => Check::new(
            "lockdown",
            Verdict::Note,
            "integrity: uprobes and tracepoints work; kprobes and fentry do not (not needed)",
        ),
        _ => Check::new("lockdown", Verdict::Ok, "none"),
    }
}

/// `perf_event_paranoid` (informative: uprobes need CAP_SYS_ADMIN here at any value).
pub fn paranoid_check(value: &str) -> Check {
    let value = value.trim();
    Check::new("perf_event_paranoid", Verdict::Ok, format!("{value} (pytrace's needs do not depend on it)"))
}

/// cgroup v1, v2 or hybrid, from the mounts (for `container.id`).
pub fn cgroup_check(mounts: &str) -> Check {
    let fstype_at = |target: &str| {
        mounts.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&target)).then(|| fields.get(2).copied().unwrap_or_default())
        })
    };
    let version = match (fstype_at("/sys/fs/cgroup"), fstype_at("/sys/fs/cgroup/unified")) {
        (Some("cgroup2"), _) => "v2",
        (Some(_), Some("cgroup2")) => "hybrid (v1 controllers, v2 unified)",
        (Some(_), _) => "v1",
        (None, _) => "not mounted",
    };
    Check::new("cgroups", Verdict::Ok, format!("{version}: container ids are read from /proc/PID/cgroup either way"))
}

fn file_check(item: &'static str, path: &str, present: &str, missing: Verdict) -> Check {
    if Path::new(path).exists() {
        Check::new(item, Verdict::Ok, present)
    } else {
        Check::new(item, missing, format!("{path} is missing"))
    }
}

/// tracefs mounted, or mountable (pytrace mounts it itself).
fn tracefs_check() -> Check {
    match crate::privileges::ensure_tracing() {
        Ok(()) => Check::new("tracefs", Verdict::Ok, "mounted at /sys/kernel/tracing"),
        Err(error) => Check::new("tracefs", Verdict::Fail, error.to_string()),
    }
}

/// Loads the kernel programs (with `programs`, every one, and reads their
/// budgets), then attaches one uprobe (to this process) and the syscall
/// tracepoints, and detaches everything.
fn try_probes(programs: bool) -> (Vec<Check>, Vec<crate::probes::budget::ProgramBudget>) {
    crate::privileges::raise_memlock_limit();
    let mut probes = match Probes::load(
        tracer_common::DEFAULT_CAPTURE_LIMIT,
        crate::probes::MapCapacities::default(),
        crate::probes::Follow::Given,
        false,
    ) {
        Ok(probes) => probes,
        Err(error) => return (vec![programs_check(&error)], Vec::new()),
    };
    let mut budgets = Vec::new();
    if programs {
        if let Err(error) = probes.load_every_program() {
            return (vec![programs_check(&error)], Vec::new());
        }
        match probes.budgets() {
            Ok(read) => budgets = read,
            Err(error) => return (vec![Check::new("kernel programs", Verdict::Fail, error.to_string())], Vec::new()),
        }
    }
    let mut checks = vec![Check::new("kernel programs", Verdict::Ok, "loaded and verified (ring buffer, bpf_loop)")];
    if budgets.iter().any(|b| !b.within_budget()) {
        checks.push(Check::new(
            "program budgets",
            Verdict::Note,
            "a program is over pytrace's stack or instruction budget (OVER below): it loads here, but close to the \
             verifier's limits; please report it",
        ));
    }
    checks.push(match own_function() {
        Some((object, offset)) => match probes.try_uprobe(&object, offset) {
            Ok(()) => Check::new("uprobe attach", Verdict::Ok, "a uprobe attached and detached"),
            Err(error) => Check::new(
                "uprobe attach",
                Verdict::Fail,
                format!("{error}; on this kernel uprobes need CAP_SYS_ADMIN besides CAP_BPF and CAP_PERFMON"),
            ),
        },
        None => Check::new("uprobe attach", Verdict::Note, "not tried: no C library found in this process"),
    });
    checks.push(match probes.attach_syscalls() {
        Ok(()) => Check::new("tracepoint attach", Verdict::Ok, "the syscall tracepoints attached and detached"),
        Err(error) => Check::new("tracepoint attach", Verdict::Fail, error.to_string()),
    });
    (checks, budgets)
}

/// Why the kernel programs did not load: the verifier's rejection as what
/// it is, or what else the kernel refused.
fn programs_check(error: &ProbeError) -> Check {
    let detail = match error {
        ProbeError::Rejected(_) | ProbeError::KernelTooOld(_) => error.to_string(),
        other => format!(
            "{other}; loading needs CAP_BPF and CAP_PERFMON (or root), and a kernel with BPF ring buffers and bpf_loop"
        ),
    };
    Check::new("kernel programs", Verdict::Fail, detail)
}

/// A function of this process's C library to try a uprobe on.
fn own_function() -> Option<(std::path::PathBuf, u64)> {
    let maps = parse_maps(&read("/proc/self/maps"), None);
    let libc = maps
        .iter()
        .find(|f| Path::new(&f.path).file_name().is_some_and(|n| n.to_string_lossy().starts_with("libc.so")))?;
    let path = std::path::PathBuf::from(&libc.path);
    let offset = Elf::open(&path).ok()?.symbol("getpid")?.file_offset?;
    Some((path, offset))
}

/// What pytrace finds in process `pid`: its interpreter, Python layout and
/// TLS objects.
pub fn process_checks(pid: u32) -> Vec<Check> {
    let process = match TargetProcess::inspect(pid) {
        Ok(process) => process,
        Err(error) => return vec![Check::new("process", Verdict::Fail, error.to_string())],
    };
    let mut checks = vec![Check::new("process", Verdict::Ok, format!("PID {pid}: {}", process.executable))];
    checks.push(match &process.python {
        Some(python) => {
            Check::new("interpreter", Verdict::Ok, format!("CPython {} ({})", python.version, python.object_path))
        }
        None => Check::new("interpreter", Verdict::Note, "not CPython: HTTP spans only, no Python context"),
    });
    if process.python.is_some() {
        checks.push(match crate::targets::inspect::python_context::discover(&process) {
            Ok(Some(context)) => Check::new(
                "Python context",
                Verdict::Ok,
                format!("CPython 3.{} layout verified, {} threads", context.layout.minor, context.threads.len()),
            ),
            Ok(None) => Check::new("Python context", Verdict::Note, "no interpreter found"),
            Err(error) => Check::new("Python context", Verdict::Note, format!("off: {error}; HTTP spans still come")),
        });
    }
    let search = tls::find_mapped(&process, &mut Default::default());
    checks.push(if search.libraries.is_empty() {
        match tls::predict_libssl(&process) {
            Some(library) => Check::new("TLS", Verdict::Ok, format!("ssl not loaded yet; will probe {}", library.path)),
            None => Check::new(
                "TLS",
                Verdict::Note,
                format!("no OpenSSL to probe ({}): plaintext HTTP only", search.explain()),
            ),
        }
    } else {
        let names: Vec<&str> = search.libraries.iter().map(|l| l.path.as_str()).collect();
        Check::new("TLS", Verdict::Ok, format!("OpenSSL in {}", names.join(", ")))
    });
    checks
}

/// Whether tracing can work, given the checks.
pub fn can_trace(checks: &[Check]) -> bool {
    checks.iter().all(|check| check.verdict != Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_release() {
        assert_eq!(kernel_check("6.18.2-cloud\n").verdict, Verdict::Ok);
        assert_eq!(kernel_check("6.1.0-50-amd64").verdict, Verdict::Ok);
        let old = kernel_check("5.15.0-91-generic");
        assert_eq!(old.verdict, Verdict::Fail);
        assert!(old.detail.contains("older than 6.1") && old.detail.contains("bpf_loop"), "{}", old.detail);
    }

    #[test]
    fn names_each_missing_capability_with_its_purpose() {
        assert_eq!(capabilities_check(u64::MAX).verdict, Verdict::Ok);
        let readme_set = (1 << 39) | (1 << 38) | (1 << 19) | (1 << 2);
        let check = capabilities_check(readme_set);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.detail.starts_with("missing CAP_SYS_ADMIN (to attach uprobes"), "{}", check.detail);
        assert!(!check.detail.contains("CAP_BPF"));
        assert!(capabilities_check(0).detail.contains("CAP_BPF (to load the kernel programs"));
    }

    #[test]
    fn reads_lockdown_and_cgroups() {
        assert_eq!(lockdown_check("[none] integrity confidentiality\n").verdict, Verdict::Ok);
        assert_eq!(lockdown_check("none [integrity] confidentiality").verdict, Verdict::Note);
        assert_eq!(lockdown_check("none integrity [confidentiality]").verdict, Verdict::Fail);
        assert_eq!(lockdown_check("").verdict, Verdict::Ok, "no lockdown LSM");
        let v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert!(cgroup_check(v2).detail.starts_with("v2"));
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert!(cgroup_check(hybrid).detail.starts_with("hybrid"));
        assert!(cgroup_check("tmpfs /sys/fs/cgroup tmpfs ro 0 0\n").detail.starts_with("v1"));
    }

    #[test]
    fn any_failure_means_tracing_cannot_work() {
        let ok = Check::new("a", Verdict::Ok, "");
        let note = Check::new("b", Verdict::Note, "");
        assert!(can_trace(&[ok.clone(), note]));
        assert!(!can_trace(&[ok, Check::new("c", Verdict::Fail, "")]));
    }
}
