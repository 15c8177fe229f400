//! Starting `pytrace run`'s command so that it is traced from its first
//! instruction: the child is forked held on a pipe, its pid joins the traced
//! set and the probes go on the TLS library its interpreter will load, and
//! only then is it released to `exec` the command. It runs in a process
//! group of its own, so pytrace can forward Ctrl-C and SIGTERM to it and its
//! children. It never runs untraced: a child never released is killed, a
//! session that fails after releasing it kills its process group, and the
//! kernel kills it should pytrace itself die (`PR_SET_PDEATHSIG`).

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::identity::RunAs;
use crate::notices::notice;
use crate::sys::{self, Signal, child};
use crate::targets::inspect::TargetProcess;
use crate::targets::inspect::process::{PythonRuntime, version_from_path};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot find the command {0:?} (not a file, and not on PATH)")]
    NotFound(String),
    #[error("cannot start {command:?}: {source}")]
    Spawn { command: String, source: std::io::Error },
}

/// The command's process, held before `exec` until [`Held::release`].
pub struct Held {
    pub pid: u32,
    release: Option<OwnedFd>,
    exit: Option<tokio::sync::oneshot::Receiver<ExitStatus>>,
}

impl Drop for Held {
    /// The command must not run untraced: a child never released (pytrace
    /// failed to start tracing) is killed; a command still running when the
    /// session ends without having seen it exit (a failure, a panic) is
    /// stopped with its process group.
    fn drop(&mut self) {
        if self.release.is_some() {
            sys::signal_process(self.pid, Signal::Kill);
        } else if self.exit.as_mut().is_some_and(|exit| exit.try_recv().is_err()) {
            notice!("tracing failed while the command ran: stopping it (process group {})", self.pid);
            sys::signal_group(self.pid, Signal::Kill);
        }
    }
}

impl Held {
    /// Lets the child `exec` the command.
    pub fn release(&mut self) {
        if let Some(fd) = self.release.take() {
            child::release(&fd);
        }
    }

    /// Waits for the command to exit (cancel-safe: can be raced and called again).
    pub async fn wait(&mut self) -> ExitStatus {
        match &mut self.exit {
            Some(exit) => {
                let status = exit.await.unwrap_or_else(|_| ExitStatus::from_raw(1 << 8));
                self.exit = None;
                status
            }
            None => std::future::pending().await,
        }
    }
}

/// Forks the command's process, held before `exec` (`sys::child`).
/// With `run_as`, the command runs as that user (groups, then group, then
/// user are switched in the child before `exec`; the environment names the
/// user's home); pytrace keeps its own privileges.
pub fn spawn_held(command: &[String], run_as: Option<&RunAs>) -> Result<Held, LaunchError> {
    let program = command.first().cloned().unwrap_or_default();
    if resolve(&program).is_none() {
        return Err(LaunchError::NotFound(program));
    }
    let spawn_error = |source| LaunchError::Spawn { command: program.clone(), source };
    let arguments: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|e| spawn_error(std::io::Error::other(e)))?;
    let identity = run_as.map(|user| child::Identity {
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
        environment: user.environment(),
    });
    let held = child::fork_held(&arguments, identity.as_ref()).map_err(spawn_error)?;
    let pid = held.pid;
    let (exited, exit) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child::wait_exit(pid));
    });
    Ok(Held { pid, release: Some(held.release), exit: Some(exit) })
}

/// The CPython that `command` will run, found before it starts: the program
/// itself, or the interpreter named by a script's `#!` line.
pub fn predicted_python(command: &[String]) -> Option<PythonRuntime> {
    predicted_python_on(command, &std::env::var("PATH").unwrap_or_default())
}

fn predicted_python_on(command: &[String], search_path: &str) -> Option<PythonRuntime> {
    let program = resolve_on(command.first()?, search_path)?;
    let interpreter = match shebang(&program) {
        Some(line) => {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            if first.ends_with("/env") { resolve_on(words.next()?, search_path)? } else { PathBuf::from(first) }
        }
        None => program,
    };
    python_runtime(&interpreter)
}

/// A CPython interpreter executable's runtime facts, by its (resolved) path.
pub fn python_runtime(executable: &Path) -> Option<PythonRuntime> {
    let real = std::fs::canonicalize(executable).ok()?;
    let name = real.file_name()?.to_string_lossy().into_owned();
    // A wrapper script (pyenv's shims) is not the interpreter: its exec is followed later.
    if !(name.starts_with("python3") || name == "python") || !is_elf(&real) {
        return None;
    }
    let path = real.to_string_lossy().into_owned();
    Some(PythonRuntime { version: version_from_path(&path)?, object_path: path })
}

/// What pytrace should treat as `pid` (pytrace itself, whose root is the
/// command's) when predicting the libraries the command will load.
pub fn prediction_target(python: PythonRuntime) -> TargetProcess {
    TargetProcess {
        pid: std::process::id(),
        executable: python.object_path.clone(),
        command_args: Vec::new(),
        service_name_env: None,
        pid_namespace: None,
        container_id: None,
        pod_uid: None,
        python: Some(python),
        mapped: Vec::new(),
    }
}

fn resolve(program: &str) -> Option<PathBuf> {
    resolve_on(program, &std::env::var("PATH").unwrap_or_default())
}

fn resolve_on(program: &str, search_path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| p.is_file());
    }
    search_path.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"\x7fELF"
}

fn shebang(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = [0; 256];
    let read = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let text = std::str::from_utf8(head.get(..read)?.strip_prefix(b"#!")?).ok()?;
    Some(text.lines().next()?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_interpreter_behind_a_script() {
        let dir = std::env::temp_dir().join(format!("pytrace-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let python = "/usr/bin/python3.11";
        let script = dir.join("tool");
        std::fs::write(&script, format!("#!{python}\nprint('hi')\n")).unwrap();
        let predicted = predicted_python_on(&[script.to_string_lossy().into_owned()], "").unwrap();
        assert_eq!(predicted.object_path, python);
        assert_eq!(predicted.version, "3.11");
        let via_env = dir.join("tool-env");
        std::fs::write(&via_env, "#!/usr/bin/env python3.11\n").unwrap();
        let found = predicted_python_on(&[via_env.to_string_lossy().into_owned()], "/nowhere:/usr/bin").unwrap();
        assert_eq!(found.object_path, python);
        assert!(predicted_python_on(&["sh".to_owned()], "/bin").is_none());
        let shim = dir.join("python3.11");
        std::fs::write(&shim, "#!/usr/bin/env bash\nexec /usr/bin/python3.11 \"$@\"\n").unwrap();
        assert!(python_runtime(&shim).is_none(), "a wrapper script is not the interpreter");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn alive(pid: u32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    fn gone_within(pid: u32, seconds: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while alive(pid) {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn a_command_is_stopped_if_the_session_ends_before_it_does() {
        let sleep = || ["sleep".to_owned(), "60".to_owned()];
        let never_released = spawn_held(&sleep(), None).unwrap();
        let pid = never_released.pid;
        drop(never_released);
        assert!(gone_within(pid, 5), "a command never released never runs");

        let mut running = spawn_held(&sleep(), None).unwrap();
        running.release();
        let pid = running.pid;
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(alive(pid), "released, the command runs");
        drop(running);
        assert!(gone_within(pid, 5), "the session failed: the command is stopped");
    }
}
