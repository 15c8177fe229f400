//! The processes a session traces, and what it does for each: inspect it,
//! put its TLS libraries under probes (those it maps, or the `libssl` its
//! interpreter will load), set up Python context and function probes, seed
//! its open sockets, follow its forks and execs, notice libraries it loads
//! later, and forget it when it exits.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use pytrace_core::engine::Lifecycle;
use pytrace_core::events::{ConnKey, Endpoints, Event};
use tracer_common::{SEEDED_SOCKET_ID_BIT, SOCKET_ID_BIT, SocketState, TLS_UNKNOWN};

use super::SessionError;
use super::launch;
use crate::discovery::process::{ResourceDefaults, has_exited, is_process, runs_python_executable};
use crate::discovery::selection::{PodFacts, ProcessFacts, Selection};
use crate::discovery::tls::{self, FileId, TlsLibrary};
use crate::discovery::{TargetError, TargetProcess, call_probes, python_context, sockets, threads};
use crate::kubernetes::directory::PodView;
use crate::kubernetes::{PodMetadata, PodResource};
use crate::pipeline::Pipeline;
use crate::probes::Probes;

/// Tries to set up Python context this many times (every rescan, 100 ms)
/// for a process whose interpreter is starting, before saying why not.
const CONTEXT_ATTEMPTS: u32 = 50;

struct Traced {
    process: TargetProcess,
    known_files: HashSet<FileId>,
    /// `pytrace run`: Python context not set up yet — the interpreter may
    /// still be starting — and how many times it was tried.
    context_pending: Option<u32>,
    /// It mapped a file executable since its memory map was last read.
    maps_stale: bool,
    /// What its pod added to its resource, once known.
    pod: Option<PodResource>,
    /// When its memory map was last read.
    maps_read: Instant,
    /// When pytrace began tracing it.
    traced_since: Instant,
    /// What a selection looks at (without its pod), read once: it holds
    /// until the process execs, which makes it a new `Traced`.
    facts: Option<ProcessFacts>,
}

impl Traced {
    fn new(process: TargetProcess) -> Self {
        Self {
            process,
            known_files: HashSet::new(),
            context_pending: None,
            maps_stale: false,
            maps_read: Instant::now(),
            traced_since: Instant::now(),
            pod: None,
            facts: None,
        }
    }
}

/// A traced process's memory map is read again when the kernel reports it
/// mapped a file executable (`sys_enter_mmap`), and at the latest after
/// this long, in case a library came by a way the kernel does not report.
const MAPS_REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// During its first second — loading its libraries, as an interpreter does
/// on its first imports — a process's map is read at every look (100 ms), as the
/// kernel's reports alone proved to arrive too late now and then (a
/// container's first HTTPS call was missed).
const YOUNG: Duration = Duration::from_secs(1);

pub struct Targets {
    traced: HashMap<u32, Traced>,
    host: String,
    resource_defaults: ResourceDefaults,
    /// Off for the benchmark's bare-probe floor.
    python_context: bool,
    /// `node`: a process that starts (or a traced one that execs) is traced
    /// only when it runs Python and the selection keeps it.
    admission: Option<Selection>,
    /// Ids given to the sockets found open at attach.
    seeded_sockets: u64,
    /// `node` on Kubernetes: the node's pods, and the watch's generation
    /// the traced processes were last matched against.
    kubernetes: Option<PodMetadata>,
    pods_seen: u64,
}

impl Targets {
    /// Inspects `pids`; any that cannot be inspected is an error.
    pub fn inspect(
        pids: &[u32],
        host: &str,
        resource_defaults: &ResourceDefaults,
        python_context: bool,
        admission: Option<Selection>,
    ) -> Result<Self, TargetError> {
        let mut traced = HashMap::new();
        for &pid in pids {
            match TargetProcess::inspect(pid) {
                Ok(process) => {
                    traced.insert(pid, Traced::new(process));
                }
                // Found by a scan of the host: it may have exited since.
                Err(TargetError::NoSuchProcess(_)) if admission.is_some() => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Self {
            traced,
            host: host.to_owned(),
            resource_defaults: resource_defaults.clone(),
            python_context,
            admission,
            seeded_sockets: 0,
            kubernetes: None,
            pods_seen: 0,
        })
    }

    /// Adds each process's pod to its resource and its selection.
    pub fn with_kubernetes(mut self, metadata: Option<PodMetadata>) -> Self {
        self.kubernetes = metadata;
        self
    }

    /// `node` on Kubernetes: when the watch learnt something, matches the
    /// traced processes with their pods again — their resources gain the
    /// pods' attributes, and a process the selection (or its pod's opt-out)
    /// now leaves out is no longer traced.
    pub fn match_pods(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) {
        let Some(metadata) = &self.kubernetes else { return };
        let generation = metadata.generation();
        if generation == self.pods_seen {
            return;
        }
        self.pods_seen = generation;
        let mut left_out = Vec::new();
        for (pid, traced) in &mut self.traced {
            let process = &traced.process;
            let Some(view) = metadata.lookup(process.container_id.as_deref(), process.pod_uid.as_deref()) else {
                continue;
            };
            if let Some(selection) = &self.admission {
                let mut facts = traced.facts.get_or_insert_with(|| ProcessFacts::of(*pid)).clone();
                facts.pod = Some(pod_facts(&view));
                if !selection.selects(&facts) {
                    eprintln!(
                        "pytrace: PID {pid} left out: its pod {}/{} is not selected (or opts out)",
                        view.pod.info.namespace, view.pod.info.name
                    );
                    left_out.push(*pid);
                    continue;
                }
            }
            let pod = metadata.resource_of(&view);
            if traced.pod.as_ref() != Some(&pod) {
                pipeline.add_process(*pid, process.resource(&self.host, &self.resource_defaults, Some(&pod)));
                traced.pod = Some(pod);
            }
        }
        for pid in left_out {
            self.traced.remove(&pid);
            pipeline.process_exited(pid);
            probes.forget_pid(pid);
        }
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
    pub fn start(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) -> Result<(), SessionError> {
        let mut left_out = Vec::new();
        for (pid, traced) in &mut self.traced {
            probes.trace_pid(*pid)?;
            // Inspected before the kernel traced it: read its map again at the next look.
            traced.maps_stale = true;
            traced.pod = pod_resource(self.kubernetes.as_ref(), &traced.process);
            let resource = traced.process.resource(&self.host, &self.resource_defaults, traced.pod.as_ref());
            pipeline.add_process(*pid, resource);
            match attach_initial(probes, traced) {
                Ok(()) => {}
                Err(error) if self.admission.is_some() => {
                    eprintln!("pytrace: warning: {error}; leaving it out");
                    left_out.push(*pid);
                    continue;
                }
                Err(error) => return Err(error),
            }
            if self.python_context {
                enable_python_context(probes, pipeline, &traced.process);
            }
            seed_sockets(probes, pipeline, *pid, &mut self.seeded_sockets)?;
        }
        for pid in left_out {
            self.traced.remove(&pid);
            probes.forget_pid(pid);
        }
        Ok(())
    }

    /// `pytrace run`: new processes (forks) and new programs (execs) among
    /// the traced ones: their resource, TLS libraries and Python context.
    pub fn follow(&mut self, lifecycle: Vec<Lifecycle>, probes: &mut Probes, pipeline: &mut Pipeline) {
        let targets = &mut self.traced;
        for event in lifecycle {
            let (pid, exec) = match event {
                Lifecycle::Forked(pid) => (pid, false),
                Lifecycle::Exec(pid) => (pid, true),
                Lifecycle::Mapped(pid) => {
                    if let Some(traced) = targets.get_mut(&pid) {
                        // Look at once — a library just loaded is about to be
                        // called — and again at the next look, in case the
                        // loader had not finished mapping it.
                        if traced.process.refresh_maps().is_ok() {
                            attach_new_libraries(probes, traced);
                        }
                        traced.maps_stale = true;
                    }
                    continue;
                }
            };
            if !exec && (targets.contains_key(&pid) || !is_process(pid)) {
                // A new thread of a traced process: already covered by its process.
                if !targets.contains_key(&pid) {
                    probes.forget_pid(pid);
                }
                continue;
            }
            if exec {
                // Another program: what was known of the old one's code no longer holds.
                pipeline.forget_program(pid);
            }
            // A fork runs its traced parent's program; a new program is
            // looked at (`node`: Python, and selected).
            if exec
                && let Some(selection) = &self.admission
                && !(runs_python_executable(pid) && selection.selects(&facts_with_pod(pid, self.kubernetes.as_ref())))
            {
                // Not Python (or no longer), or not selected: left alone.
                if targets.remove(&pid).is_some() {
                    pipeline.process_exited(pid);
                }
                probes.forget_pid(pid);
                continue;
            }
            let Ok(process) = TargetProcess::inspect(pid) else { continue };
            if let Err(error) = probes.trace_pid(pid) {
                eprintln!("pytrace: warning: PID {pid} cannot be traced: {error}");
                continue;
            }
            let pod = pod_resource(self.kubernetes.as_ref(), &process);
            pipeline.add_process(pid, process.resource(&self.host, &self.resource_defaults, pod.as_ref()));
            let mut traced = Traced::new(process);
            traced.pod = pod;
            // Its map was read before the kernel traced it: a library mapped
            // in between raised no event. Read it again at the next look.
            traced.maps_stale = true;
            attach_libraries(probes, &mut traced);
            traced.context_pending = Some(0);
            targets.insert(pid, traced);
        }
        for (pid, traced) in targets.iter_mut() {
            let Some(attempts) = traced.context_pending else { continue };
            // Still starting: probes that could not be attached are tried again.
            attach_libraries(probes, traced);
            let exhausted = attempts >= CONTEXT_ATTEMPTS;
            if traced.process.python.is_none() {
                // The interpreter's library may not be mapped yet: look again, quietly.
                if let Ok(process) = TargetProcess::inspect(*pid) {
                    traced.process = process;
                }
                if traced.process.python.is_none() {
                    traced.context_pending = (!exhausted).then_some(attempts + 1);
                    continue;
                }
            }
            traced.context_pending = match try_python_context(probes, pipeline, &traced.process) {
                Ok(()) => None,
                Err(reason) if exhausted => {
                    report_no_context(pipeline, *pid, &reason);
                    None
                }
                Err(_) => Some(attempts + 1),
            };
        }
    }

    /// Forgets the targets that exited; probes the TLS objects the others
    /// loaded since their memory map was last read (dlopen) — read again
    /// only when the kernel reported a new executable mapping, or after
    /// [`MAPS_REREAD_INTERVAL`]: reading every process's map on every look
    /// was most of `pytrace node`'s CPU time.
    pub fn rescan(&mut self, probes: &mut Probes, pipeline: &mut Pipeline) {
        self.traced.retain(|&pid, traced| {
            let look_again = traced.maps_stale
                || traced.traced_since.elapsed() < YOUNG
                || traced.maps_read.elapsed() >= MAPS_REREAD_INTERVAL;
            if look_again {
                (traced.maps_stale, traced.maps_read) = (false, Instant::now());
            }
            if has_exited(pid) {
                eprintln!("pytrace: PID {pid} exited");
                pipeline.process_exited(pid);
                probes.forget_pid(pid);
                return false;
            }
            // A map that cannot be read now (the process in the middle of an
            // exec) is read again at the next look.
            if look_again && traced.process.refresh_maps().is_err() {
                traced.maps_stale = true;
                return true;
            }
            if !look_again {
                return true;
            }
            // Objects loaded since the last look (dlopen).
            let search = attach_new_libraries(probes, traced);
            for (path, why) in &search.unusable {
                eprintln!("pytrace: PID {pid} loaded {path}; HTTPS through it is not visible: {why}");
            }
            true
        });
    }
}

/// What `process`'s pod adds to its resource, when the pod is known.
fn pod_resource(metadata: Option<&PodMetadata>, process: &TargetProcess) -> Option<PodResource> {
    let metadata = metadata?;
    let view = metadata.lookup(process.container_id.as_deref(), process.pod_uid.as_deref())?;
    Some(metadata.resource_of(&view))
}

/// The selection facts of `pid`, with its pod's when known.
fn facts_with_pod(pid: u32, metadata: Option<&PodMetadata>) -> ProcessFacts {
    let mut facts = ProcessFacts::of(pid);
    if let Some(metadata) = metadata {
        let pod_uid = crate::discovery::container::pod_of_process(pid);
        let container = (!facts.container.is_empty()).then_some(facts.container.as_str());
        facts.pod = metadata.lookup(container, pod_uid.as_deref()).map(|view| pod_facts(&view));
    }
    facts
}

fn pod_facts(view: &PodView) -> PodFacts {
    let info = &view.pod.info;
    PodFacts {
        namespace: info.namespace.clone(),
        labels: info.labels.clone(),
        annotations: info.annotations.clone(),
        opted_out: info.opted_out(),
    }
}

/// Puts the TLS libraries `traced` maps that were not seen before under
/// probes; one that cannot be attached yet is forgotten, so the next look
/// tries it again. Returns the search, for what it found unusable.
fn attach_new_libraries(probes: &mut Probes, traced: &mut Traced) -> tls::TlsSearch {
    let search = tls::find_mapped(&traced.process, &mut traced.known_files);
    for library in &search.libraries {
        if !attach(probes, traced.process.pid, library) {
            traced.known_files.remove(&library.id);
        }
    }
    search
}

/// The TLS libraries a (new) process maps, or the one its interpreter will load.
fn attach_libraries(probes: &mut Probes, traced: &mut Traced) {
    let pid = traced.process.pid;
    attach_new_libraries(probes, traced);
    let predicted = if traced.process.python.is_some() {
        // Resolved inside the process's own root directory.
        tls::predict_libssl(&traced.process)
    } else if traced.process.sees_files_as_pytrace() {
        // Its interpreter is not mapped yet: judged by its executable, which
        // only names the same file here when the process shares pytrace's view.
        launch::python_runtime(Path::new(&traced.process.executable))
            .and_then(|python| tls::predict_libssl(&launch::prediction_target(python)))
    } else {
        None
    };
    if let Some(library) = predicted
        && traced.known_files.insert(library.id)
        && !attach(probes, pid, &library)
    {
        // A process caught mid-exec may refuse the first try: tried again at the next look.
        traced.known_files.remove(&library.id);
    }
}

/// Attaches to the TLS libraries a target maps, or, for a Python process that
/// has not imported `ssl` yet, to the libssl it will load. Without either,
/// only plaintext HTTP is visible, which the user is told.
fn attach_initial(probes: &mut Probes, traced: &mut Traced) -> Result<(), SessionError> {
    let process = &traced.process;
    let pid = process.pid;
    match &process.python {
        Some(python) => eprintln!("pytrace: PID {pid} runs CPython {} ({})", python.version, python.object_path),
        None => eprintln!(
            "pytrace: warning: PID {pid} ({}) does not look like CPython; tracing its HTTP traffic anyway",
            process.executable
        ),
    }
    let search = tls::find_mapped(process, &mut traced.known_files);
    let mut attached = false;
    let mut refused = None;
    for library in &search.libraries {
        match probes.attach_library(pid, library) {
            Ok(fresh) => {
                if fresh {
                    report_attached(pid, library);
                }
                attached = true;
            }
            Err(error) => refused = Some((library.path.clone(), error)),
        }
    }
    if attached {
        report_unusable(pid, &search);
        return Ok(());
    }
    // Its TLS library maps, yet no probe goes on it: tracing would see nothing.
    if let Some((library, error)) = refused {
        return Err(SessionError::NoTlsProbes { pid, library, error: Box::new(error) });
    }
    if let Some(library) = tls::predict_libssl(process) {
        traced.known_files.insert(library.id);
        if attach(probes, pid, &library) {
            eprintln!(
                "pytrace: PID {pid} has not loaded ssl yet; probes are in place on {} for when it does",
                library.path
            );
            for (path, why) in &search.unusable {
                eprintln!("pytrace: warning: PID {pid}: HTTPS through {path} is not visible: {why}");
            }
            return Ok(());
        }
    }
    eprintln!(
        "pytrace: warning: PID {pid} maps no OpenSSL pytrace can probe ({}); tracing plaintext HTTP, and watching \
         for one to load",
        search.explain()
    );
    Ok(())
}

fn report_attached(pid: u32, library: &TlsLibrary) {
    let symbols: Vec<&str> = library.symbols.iter().map(|(s, _)| *s).collect();
    let covered = match library.covered_by_callee.as_slice() {
        [] => String::new(),
        names => format!("; {} through the internal functions they share", names.join(" ")),
    };
    eprintln!("pytrace: PID {pid}: probes on {} [{}{covered}]", library.path, symbols.join(" "));
}

/// Names the objects whose HTTPS cannot be seen, beside the usable ones.
fn report_unusable(pid: u32, search: &tls::TlsSearch) {
    for (path, why) in &search.unusable {
        tracing::info!("PID {pid}: HTTPS through {path} is not visible: {why}");
    }
}

/// Python context (which function made each call) when the target's CPython
/// layout is known and verifies; otherwise a one-line reason, and HTTP spans
/// without it.
fn enable_python_context(probes: &mut Probes, pipeline: &mut Pipeline, process: &TargetProcess) {
    if let Err(reason) = try_python_context(probes, pipeline, process) {
        report_no_context(pipeline, process.pid, &reason);
    }
}

fn report_no_context(pipeline: &Pipeline, pid: u32, reason: &str) {
    let functions = if pipeline.traces_functions() { " or function spans" } else { "" };
    eprintln!("pytrace: PID {pid}: no Python context{functions}: {reason}; HTTP spans are still produced");
}

/// Sets up Python context (and function probes) for `process`; the reason
/// when it cannot be (yet: an interpreter still starting up has no threads).
fn try_python_context(probes: &mut Probes, pipeline: &mut Pipeline, process: &TargetProcess) -> Result<(), String> {
    let pid = process.pid;
    let context = match python_context::discover(process) {
        Ok(Some(context)) => context,
        Ok(None) => {
            if pipeline.traces_functions() {
                eprintln!("pytrace: PID {pid}: not CPython, so --trace-function has nothing to trace there");
            }
            return Ok(());
        }
        Err(error) => return Err(error.to_string()),
    };
    // Thread states by host thread id (CPython records ids in its own PID namespace).
    let host_ids = process.pid_namespace.map(|_| threads::host_thread_ids(pid));
    let threads: Vec<(u32, u64)> = context
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
        .collect();
    let enabled = probes.enable_python(
        pid,
        context.kernel_layout,
        &threads,
        &context.object_host_path,
        context.restore_thread_offset,
    );
    match enabled {
        Ok(()) => {
            if let Some(warning) = python_context::newer_version_warning(&context.layout) {
                eprintln!("pytrace: warning: PID {pid}: {warning}");
            }
            eprintln!(
                "pytrace: PID {pid}: Python context on (CPython 3.{} layout verified, {} threads)",
                context.layout.minor,
                context.threads.len()
            );
            if pipeline.traces_functions() {
                enable_function_calls(probes, pid, &context);
            }
            pipeline.add_python_process(pid, context.memory, context.layout);
            Ok(())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// `--trace-function`: the per-call probes for this interpreter, or why not.
fn enable_function_calls(probes: &mut Probes, pid: u32, context: &python_context::PythonContext) {
    let enabled = call_probes::locate(context).map_err(|error| error.to_string()).and_then(|sites| {
        probes.enable_function_calls(pid, &context.object_host_path, &sites).map_err(|e| e.to_string())
    });
    match enabled {
        Ok(()) => eprintln!("pytrace: PID {pid}: function spans on (every Python call is probed while tracing)"),
        Err(error) => eprintln!("pytrace: PID {pid}: no function spans: {error}; other spans are still produced"),
    }
}

/// Tells the kernel about the TCP sockets the target had open before attach,
/// and the pipeline about their endpoints.
fn seed_sockets(probes: &mut Probes, pipeline: &mut Pipeline, pid: u32, next_id: &mut u64) -> Result<(), SessionError> {
    for socket in sockets::open_sockets(pid) {
        *next_id += 1;
        let conn_id = SOCKET_ID_BIT | SEEDED_SOCKET_ID_BIT | *next_id;
        let addrs = socket.to_raw();
        probes.seed_socket(pid, socket.fd, SocketState { conn_id, addrs, tls: TLS_UNKNOWN, _pad: 0 })?;
        if socket.peer.is_some() {
            let endpoints = Endpoints::from_raw(&addrs);
            pipeline.event(&Event::SocketInfo { conn: ConnKey { pid, conn_id }, endpoints });
        }
    }
    Ok(())
}

/// Attaches to one library; failures are warnings (other paths may still work).
pub fn attach(probes: &mut Probes, pid: u32, library: &TlsLibrary) -> bool {
    match probes.attach_library(pid, library) {
        Ok(true) => {
            report_attached(pid, library);
            true
        }
        Ok(false) => true,
        Err(error) => {
            let exe =
                std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string()).unwrap_or_default();
            eprintln!("pytrace: warning: PID {pid} ({exe}): {error}");
            false
        }
    }
}
