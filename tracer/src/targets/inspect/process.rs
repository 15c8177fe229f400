//! Facts about a target process read from `/proc/PID`: is it alive, what
//! executable and command line, which CPython (from the libpython or
//! executable it maps), and the OpenTelemetry resource describing it.
//!
//! A target may live in another mount namespace or chroot (a container, an
//! `unshare`d or chroot'ed process): paths are kept as the target sees them,
//! and its files are opened through `/proc/PID/map_files/…` (the very file
//! mapped) or `/proc/PID/root/…`, never through a host path that only
//! happens to exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pytrace_core::model::{AttrValue, Resource, semconv as sc};
use pytrace_core::redact;

use super::elf::Elf;
use super::mapped_files::{MappedFile, as_target_sees, parse_maps};
use crate::kubernetes::PodResource;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with PID {0} (it may have exited); check the PID with `ps -p {0}`")]
    NoSuchProcess(u32),
    #[error("cannot read /proc/{pid}/{what}: {source}; run pytrace as root")]
    Unreadable { pid: u32, what: &'static str, source: std::io::Error },
}

/// The CPython interpreter a process runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonRuntime {
    /// `3.11.7`, or `3.11` when the patch level cannot be read.
    pub version: String,
    /// The object holding the interpreter: libpython or the executable.
    pub object_path: String,
}

/// What pytrace's own environment says about every resource:
/// `OTEL_SERVICE_NAME` (for targets that set none) and
/// `OTEL_RESOURCE_ATTRIBUTES` (added; pytrace's own attributes win).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceDefaults {
    pub service_name: Option<String>,
    pub attributes: Vec<(&'static str, String)>,
}

impl ResourceDefaults {
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let attributes = env("OTEL_RESOURCE_ATTRIBUTES")
            .map(|text| pytrace_core::otel_env::key_values(&text))
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| !key.is_empty())
            // Attribute names are static in pytrace's model; these few, read
            // once at start, live as long as the process.
            .map(|(key, value)| (&*Box::leak(key.into_boxed_str()), value))
            .collect();
        Self { service_name: env("OTEL_SERVICE_NAME").filter(|name| !name.trim().is_empty()), attributes }
    }
}

/// A process to trace, as inspected at attach time.
#[derive(Clone, Debug)]
pub struct TargetProcess {
    pub pid: u32,
    /// The executable's path as the target sees it.
    pub executable: String,
    pub command_args: Vec<String>,
    pub service_name_env: Option<String>,
    /// Its PID namespace (device, inode) when not pytrace's: thread ids
    /// inside it differ from the host's.
    pub pid_namespace: Option<(u64, u64)>,
    /// The container it runs in (`container.id`), from its cgroup path.
    pub container_id: Option<String>,
    /// The Kubernetes pod the kubelet placed it in, from its cgroup path.
    pub pod_uid: Option<String>,
    pub python: Option<PythonRuntime>,
    pub mapped: Vec<MappedFile>,
}

impl TargetProcess {
    pub fn inspect(pid: u32) -> Result<Self, TargetError> {
        if has_exited(pid) {
            return Err(TargetError::NoSuchProcess(pid));
        }
        let read = |what: &'static str| {
            std::fs::read(proc_path(pid, what)).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => TargetError::NoSuchProcess(pid),
                _ => TargetError::Unreadable { pid, what, source },
            })
        };
        let maps = String::from_utf8_lossy(&read("maps")?).into_owned();
        let cmdline = read("cmdline")?;
        let environ = read("environ").unwrap_or_default();
        let root = target_root(pid);
        let link = |what| std::fs::read_link(proc_path(pid, what)).map(|p| p.to_string_lossy().into_owned());
        let executable = link("exe").map(|path| as_target_sees(&path, root.as_deref())).unwrap_or_default();
        let mapped = parse_maps(&maps, root.as_deref());
        let python = detect_python(pid, &mapped);
        Ok(Self {
            pid,
            executable,
            command_args: split_nul(&cmdline),
            service_name_env: service_name_from_environ(&environ),
            pid_namespace: pid_namespace(pid),
            container_id: super::container::of_process(pid),
            pod_uid: super::container::pod_of_process(pid),
            python,
            mapped,
        })
    }

    /// Re-reads the mapped files (libraries loaded since attach).
    pub fn refresh_maps(&mut self) -> Result<(), TargetError> {
        let maps = std::fs::read(proc_path(self.pid, "maps")).map_err(|_| TargetError::NoSuchProcess(self.pid))?;
        self.mapped = parse_maps(&String::from_utf8_lossy(&maps), target_root(self.pid).as_deref());
        Ok(())
    }

    /// Path through which a file this process maps can be opened from
    /// pytrace's mount namespace: see [`mapped_file_path`].
    pub fn host_path(&self, file: &MappedFile) -> PathBuf {
        mapped_file_path(self.pid, file)
    }

    /// Whether a path this process names reaches the same file from
    /// pytrace: same mount namespace, same root directory.
    pub fn sees_files_as_pytrace(&self) -> bool {
        let same = |what: &str| {
            let theirs = std::fs::read_link(proc_path(self.pid, what)).ok();
            theirs.is_some() && theirs == std::fs::read_link(Path::new("/proc/self").join(what)).ok()
        };
        same("ns/mnt") && same("root")
    }

    /// Path through which `path`, as this process sees it, can be opened
    /// from pytrace's mount namespace (for files it does not map).
    pub fn root_path(&self, path: &str) -> PathBuf {
        proc_path(self.pid, "root").join(path.trim_start_matches('/'))
    }

    /// The name the spans' `service.name` gets.
    /// The target's own `OTEL_SERVICE_NAME`, else its pod's (`pod`), else
    /// pytrace's (`fallback`), else the script or executable name.
    pub fn service_name(&self, pod: Option<&str>, fallback: Option<&str>) -> String {
        if let Some(name) = self.service_name_env.as_deref().or(pod).or(fallback) {
            return name.to_owned();
        }
        script_name(&self.command_args).unwrap_or_else(|| {
            Path::new(&self.executable)
                .file_name()
                .map_or_else(|| format!("pid-{}", self.pid), |n| n.to_string_lossy().into_owned())
        })
    }

    /// Its resource; `pod` adds the `k8s.*` attributes of its pod and the
    /// service name the pod gives.
    pub fn resource(&self, host_name: &str, defaults: &ResourceDefaults, pod: Option<&PodResource>) -> Arc<Resource> {
        let mut resource = Resource::default();
        let a = &mut resource.attributes;
        for (key, value) in &defaults.attributes {
            a.set(key, value.as_str());
        }
        let pod_service = pod.and_then(|p| p.service_name.as_deref());
        a.set(sc::SERVICE_NAME, self.service_name(pod_service, defaults.service_name.as_deref()));
        for (key, value) in pod.iter().flat_map(|p| &p.attributes) {
            a.set(key, value.as_str());
        }
        a.set(sc::HOST_NAME, host_name);
        if let Some(id) = &self.container_id {
            a.set(sc::CONTAINER_ID, id.as_str());
        }
        a.set(sc::PROCESS_PID, i64::from(self.pid));
        a.set(sc::PROCESS_EXECUTABLE_PATH, self.executable.as_str());
        a.set(sc::PROCESS_COMMAND_ARGS, AttrValue::StrArray(redact::redact_command_args(&self.command_args)));
        if let Some(python) = &self.python {
            a.set(sc::PROCESS_RUNTIME_NAME, "cpython");
            a.set(sc::PROCESS_RUNTIME_VERSION, python.version.as_str());
        }
        Arc::new(resource)
    }
}

/// Whether process `pid` runs CPython, or is about to: its executable is a
/// `python*` program (a shared-library build maps libpython only once the
/// dynamic loader has run).
pub fn runs_python_executable(pid: u32) -> bool {
    let executable = std::fs::read_link(proc_path(pid, "exe")).unwrap_or_default();
    executable.file_name().is_some_and(|name| name.to_string_lossy().starts_with("python"))
}

/// Whether running process `pid` runs CPython: a `python*` executable, or
/// one that maps `libpython3*` (an embedding program such as uWSGI). The
/// second look reads its maps: for processes found by a scan, not for every
/// exec on the host (an exec'ed program has not mapped its libraries yet).
pub fn looks_like_python(pid: u32) -> bool {
    if runs_python_executable(pid) {
        return true;
    }
    let maps = std::fs::read_to_string(proc_path(pid, "maps")).unwrap_or_default();
    maps.lines().any(|line| line.rsplit('/').next().is_some_and(|file| file.starts_with("libpython3")))
}

/// Whether `id` is a process (thread group leader), not a thread.
pub fn is_process(id: u32) -> bool {
    std::fs::read_to_string(proc_path(id, "status"))
        .ok()
        .and_then(|status| status.lines().find_map(|l| l.strip_prefix("Tgid:").map(|t| t.trim().to_owned())))
        .is_some_and(|tgid| tgid == id.to_string())
}

/// Gone, or a zombie waiting to be reaped.
pub fn has_exited(pid: u32) -> bool {
    match std::fs::read_to_string(proc_path(pid, "stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
        }
        Err(_) => true,
    }
}

pub fn proc_path(pid: u32, what: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}")).join(what)
}

/// `/proc/PID/map_files/START-END`: the file behind that very mapping,
/// whatever namespace, chroot or deletion hides its path. Needs
/// `CAP_SYS_ADMIN` (or `CAP_CHECKPOINT_RESTORE`); without it, the file is
/// reached by its path under `/proc/PID/root`.
pub fn mapped_file_path(pid: u32, file: &MappedFile) -> PathBuf {
    let (start, end) = file.first_range;
    let via_mapping = proc_path(pid, "map_files").join(format!("{start:x}-{end:x}"));
    if std::fs::metadata(&via_mapping).is_ok() {
        return via_mapping;
    }
    proc_path(pid, "root").join(file.path.trim_start_matches('/'))
}

/// `pid`'s PID namespace (device, inode), when it is not pytrace's own.
fn pid_namespace(pid: u32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let identity = |path: PathBuf| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let theirs = identity(proc_path(pid, "ns/pid"))?;
    (Some(theirs) != identity(PathBuf::from("/proc/self/ns/pid"))).then_some(theirs)
}

/// The target's root directory as pytrace sees it, when it is not
/// pytrace's own (a chroot): `/proc/PID/maps` and `/proc/PID/exe` show
/// paths under it.
fn target_root(pid: u32) -> Option<String> {
    let root = std::fs::read_link(proc_path(pid, "root")).ok()?;
    let root = root.to_string_lossy().trim_end_matches('/').to_owned();
    (!root.is_empty()).then_some(root)
}

/// This host's name, for `host.name`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default()
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

/// The service name a process gives itself: `OTEL_SERVICE_NAME`, else the
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`. No other variable of its
/// environment is looked at or kept.
fn service_name_from_environ(environ: &[u8]) -> Option<String> {
    let variable = |name: &str| {
        environ
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(name.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let named = variable("OTEL_SERVICE_NAME=").filter(|name| !name.trim().is_empty());
    named.or_else(|| {
        pytrace_core::otel_env::key_values(&variable("OTEL_RESOURCE_ATTRIBUTES=")?)
            .into_iter()
            .find(|(key, value)| key == "service.name" && !value.is_empty())
            .map(|(_, value)| value)
    })
}

/// `app` for `python app.py …`, `pkg.mod` for `python -m pkg.mod …`.
fn script_name(args: &[String]) -> Option<String> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-m" => return rest.next().cloned(),
            "-c" => return None,
            "-W" | "-X" | "--check-hash-based-pycs" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            script => {
                let name = Path::new(script).file_name()?.to_string_lossy();
                return Some(name.strip_suffix(".py").unwrap_or(&name).to_owned());
            }
        }
    }
    None
}

/// Finds the object that holds CPython (exports `_PyRuntime`) and its version.
fn detect_python(pid: u32, mapped: &[MappedFile]) -> Option<PythonRuntime> {
    let candidates = mapped.iter().filter(|f| {
        let name = Path::new(&f.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.starts_with("libpython3") || name.starts_with("python3") || name == "python"
    });
    for file in candidates {
        let Ok(elf) = Elf::open(&mapped_file_path(pid, file)) else { continue };
        if elf.symbol("_PyRuntime").is_none() && elf.symbol("Py_Initialize").is_none() {
            continue;
        }
        let version =
            elf.symbol_bytes("Py_Version").and_then(version_from_hex).or_else(|| version_from_path(&file.path))?;
        return Some(PythonRuntime { version, object_path: file.path.clone() });
    }
    None
}

/// Decodes `Py_Version` (`PY_VERSION_HEX`, 3.11+): 0xMMmmppLS.
fn version_from_hex(bytes: &[u8]) -> Option<String> {
    let hex = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let (major, minor, micro) = (hex >> 24, (hex >> 16) & 0xff, (hex >> 8) & 0xff);
    (major == 3).then(|| format!("{major}.{minor}.{micro}"))
}

/// `3.9.18` from a pyenv-style path, else `3.9` from `libpython3.9` / `python3.9`.
pub fn version_from_path(path: &str) -> Option<String> {
    let full = path.split('/').find(|c| {
        let parts: Vec<&str> = c.split('.').collect();
        parts.len() == 3
            && parts[0] == "3"
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if let Some(full) = full {
        return Some(full.to_owned());
    }
    let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
    let after = name.strip_prefix("libpython").or_else(|| name.strip_prefix("python"))?;
    let digits: String = after.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let trimmed = digits.trim_end_matches('.');
    trimmed.contains('.').then(|| trimmed.split('.').take(2).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_the_service_after_the_script_or_module() {
        assert_eq!(script_name(&args(&["python3", "-u", "/srv/app/agent.py", "--x"])), Some("agent".into()));
        assert_eq!(script_name(&args(&["python3", "-X", "dev", "-m", "myapp.worker"])), Some("myapp.worker".into()));
        assert_eq!(script_name(&args(&["python3", "-c", "print(1)"])), None);
    }

    #[test]
    fn takes_the_service_name_from_the_process_s_own_environment() {
        let environ =
            b"HOME=/root\0OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.name=billing\0PATH=/bin\0";
        assert_eq!(service_name_from_environ(environ).as_deref(), Some("billing"));
        let both = b"OTEL_SERVICE_NAME=checkout\0OTEL_RESOURCE_ATTRIBUTES=service.name=billing\0";
        assert_eq!(service_name_from_environ(both).as_deref(), Some("checkout"), "OTEL_SERVICE_NAME wins");
        assert_eq!(service_name_from_environ(b"OTEL_SERVICE_NAME=\0API_KEY=sk-secret\0"), None);
    }

    #[test]
    fn reads_versions() {
        assert_eq!(version_from_hex(&0x030b07f0u32.to_le_bytes()), Some("3.11.7".into()));
        assert_eq!(version_from_path("/root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0"), Some("3.9.18".into()));
        assert_eq!(version_from_path("/usr/lib/x86_64-linux-gnu/libpython3.12.so.1.0"), Some("3.12".into()));
        assert_eq!(version_from_path("/usr/bin/python3.11"), Some("3.11".into()));
    }

    #[test]
    fn inspects_this_process() {
        let me = TargetProcess::inspect(std::process::id()).unwrap();
        assert!(!me.executable.is_empty());
        assert!(me.mapped.iter().any(|f| f.path.contains("libc")));
        assert!(me.python.is_none());
        assert!(me.sees_files_as_pytrace());
        assert_eq!(me.pid_namespace, None);
        assert!(matches!(TargetProcess::inspect(u32::MAX - 1), Err(TargetError::NoSuchProcess(_))));
    }
}
