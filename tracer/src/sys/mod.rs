//! Every call pytrace makes into libc, and every other `unsafe` of the
//! agent (a file mapped into memory), behind safe functions: the rest of
//! the agent holds no `unsafe` (the kernel programs' maps and ring buffer
//! go through aya). Each `unsafe` block here says why it is sound; a guard
//! (`xtask/src/guards/system_calls.rs`) keeps it this way.

pub mod child;
pub mod users;

use std::io;
use std::time::Duration;

/// `open(2)` flag: fail rather than follow a symbolic link at the last
/// component (files pytrace creates as root in shared directories).
pub const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;

/// `errno` of a socket whose address family the host lacks (IPv6 off).
pub const EAFNOSUPPORT: i32 = libc::EAFNOSUPPORT;

/// A signal pytrace sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Kill,
}

impl Signal {
    fn number(self) -> i32 {
        match self {
            Self::Interrupt => libc::SIGINT,
            Self::Terminate => libc::SIGTERM,
            Self::Kill => libc::SIGKILL,
        }
    }
}

/// Sends `signal` to process `pid`.
pub fn signal_process(pid: u32, signal: Signal) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) takes plain integers; a process that is gone is an error, not a fault.
    unsafe { libc::kill(pid, signal.number()) };
}

/// Sends `signal` to every process of the process group `group`.
pub fn signal_group(group: u32, signal: Signal) {
    let Ok(group) = i32::try_from(group) else { return };
    // SAFETY: as above; a negative pid names the process group.
    unsafe { libc::kill(-group, signal.number()) };
}

/// Whether pytrace runs with effective user id 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The clocks pytrace reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockId {
    Monotonic,
    Realtime,
}

/// A clock's time in nanoseconds.
pub fn clock_ns(clock: ClockId) -> i128 {
    let id = match clock {
        ClockId::Monotonic => libc::CLOCK_MONOTONIC,
        ClockId::Realtime => libc::CLOCK_REALTIME,
    };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Waits until `fd` is readable or `timeout` passes (an error or a signal
/// counts as a timeout). `fd` must stay open for the call.
pub fn wait_readable(fd: i32, timeout: Duration) {
    let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call; a closed fd
    // is reported in `revents`, not a fault.
    unsafe {
        libc::poll(&raw mut poll, 1, millis);
    }
}

/// Keeps the calling thread on the CPU it runs on now.
pub fn pin_to_current_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the cpu_set_t is zeroed
    // and then filled by CPU_SET before sched_setaffinity reads it.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// User plus system CPU time this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Mounts the file system `fstype` from `source` on `target`.
pub fn mount(source: &std::ffi::CStr, target: &std::ffi::CStr, fstype: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Lifts the locked-memory limit (kernels before 5.11 charge BPF maps to it).
pub fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: valid rlimit struct; failure is harmless on memcg-accounting kernels.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

/// A read-only mapping of a library or executable file.
pub fn map_executable(file: &std::fs::File) -> io::Result<memmap2::Mmap> {
    // SAFETY: a private read-only mapping of a library or executable;
    // such files are replaced (renamed over), not rewritten in place,
    // and a mapping of a replaced file keeps the old contents.
    unsafe { memmap2::Mmap::map(file) }
}

/// The device number of `major:minor`, as `stat(2)` reports it.
pub fn makedev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_and_cpu_time_grows() {
        let before = cpu_seconds();
        let start = clock_ns(ClockId::Monotonic);
        let mut spin = 0_u64;
        while clock_ns(ClockId::Monotonic) - start < 20_000_000 {
            spin = spin.wrapping_add(1);
        }
        assert!(spin > 0 && cpu_seconds() > before);
        assert!(clock_ns(ClockId::Realtime) > 1_700_000_000 * 1_000_000_000);
    }
}
