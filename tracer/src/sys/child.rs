//! A child process held before `exec`: forked with a pipe it waits on,
//! so that pytrace can trace it before it runs a single instruction of the
//! command (`targets::launch`). In the child, between `fork` and `exec`,
//! only async-signal-safe calls are made.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Who the command runs as, instead of pytrace's user.
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The command's whole environment, `KEY=value`.
    pub environment: Vec<CString>,
}

/// The forked child, and the end of the pipe that releases it.
pub struct HeldChild {
    pub pid: u32,
    pub release: OwnedFd,
}

/// Forks a child that waits for [`release`], then (as `identity`, when
/// given) `exec`s `arguments` (looked up on `PATH`) in a process group of
/// its own, killed by the kernel should pytrace die first.
pub fn fork_held(arguments: &[CString], identity: Option<&Identity>) -> io::Result<HeldChild> {
    let mut argv: Vec<*const libc::c_char> = arguments.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // Made before the fork: the child may only call async-signal-safe functions.
    let mut envp: Vec<*const libc::c_char> =
        identity.map(|i| i.environment.iter().map(|e| e.as_ptr()).collect()).unwrap_or_default();
    envp.push(std::ptr::null());
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (hold, release) = (fds[0], fds[1]);
    // SAFETY: getpid(2) cannot fail.
    let pytrace = unsafe { libc::getpid() };
    // SAFETY: the child only calls async-signal-safe functions before exec.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child, with pointers made before the fork.
        unsafe { run_child(hold, release, pytrace, identity, &argv, &envp) }
    }
    // SAFETY: the parent's copies: the hold end is the child's; the release end is ours.
    let release = unsafe {
        libc::close(hold);
        OwnedFd::from_raw_fd(release)
    };
    Ok(HeldChild { pid: pid as u32, release })
}

/// The child's side: close our copy of the release end (so pytrace dying
/// ends the wait), wait for the byte, switch user, then exec.
///
/// # Safety
/// Called only in the child of `fork`, with `argv` and `envp` null-terminated
/// arrays of pointers to live C strings.
unsafe fn run_child(
    hold: i32,
    release: i32,
    pytrace: libc::pid_t,
    identity: Option<&Identity>,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: async-signal-safe calls on the child's own descriptors and
    // identity, with the pointers the caller vouches for.
    unsafe {
        libc::close(release);
        libc::setpgid(0, 0);
        let mut byte = 0_u8;
        if libc::read(hold, (&mut byte as *mut u8).cast(), 1) != 1 {
            libc::_exit(125);
        }
        if let Some(identity) = identity
            && (libc::setgroups(identity.groups.len(), identity.groups.as_ptr()) != 0
                || libc::setgid(identity.gid) != 0
                || libc::setuid(identity.uid) != 0)
        {
            let message = b"pytrace: cannot switch to the invoking user\n";
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(126);
        }
        // After the switch of user, which clears it: should pytrace die,
        // the command dies too (pytrace forks from its main thread).
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != pytrace {
            libc::_exit(125);
        }
        if identity.is_some() {
            libc::execvpe(argv[0], argv.as_ptr(), envp.as_ptr());
        } else {
            libc::execvp(argv[0], argv.as_ptr());
        }
        let message = b"pytrace: cannot execute the command\n";
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(127)
    }
}

/// Lets the held child `exec`.
pub fn release(fd: &OwnedFd) {
    // SAFETY: writing one byte from a valid buffer to a pipe we own.
    unsafe { libc::write(fd.as_raw_fd(), [1_u8].as_ptr().cast(), 1) };
}

/// Blocks until child `pid` exits; how it ended.
pub fn wait_exit(pid: u32) -> ExitStatus {
    let mut status = 0;
    // SAFETY: waiting for our own child, with a valid status pointer.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    ExitStatus::from_raw(status)
}
