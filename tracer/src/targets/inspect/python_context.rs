//! Setting up Python context for a target at attach: where `_PyRuntime` is
//! in the live process, which layout applies, and whether it verifies — by
//! walking the interpreter's thread list through `/proc/PID/mem`, every
//! thread state pointing back at its interpreter. Anything unexpected (a
//! debug build, free-threaded CPython — told by the flag 3.13+ publishes,
//! not by a file name —, an unknown version) is refused with a reason, and
//! tracing goes on without Python context.

use std::path::PathBuf;

use pytrace_core::python::debug_offsets::NEWEST_KNOWN_MINOR;
use pytrace_core::python::layout::{self, Layout, LayoutError};
use pytrace_core::python::memory::ReadMemory;

use super::memory::ProcMemory;
use crate::targets::inspect::TargetProcess;
use crate::targets::inspect::elf::Elf;

/// Everything needed to capture and resolve a process's Python stacks.
pub struct PythonContext {
    pub layout: Layout,
    pub memory: ProcMemory,
    /// The threads alive at attach.
    pub threads: ThreadStates,
    /// The layout as the kernel programs get it.
    pub kernel_layout: tracer_common::PyLayout,
    /// The object holding the interpreter, and `PyEval_RestoreThread`'s file offset in it.
    pub object_path: String,
    pub object_host_path: PathBuf,
    pub restore_thread_offset: u64,
    /// Process address minus the object's virtual address.
    pub load_bias: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read the interpreter object {0}")]
    Unreadable(String),
    #[error("{0} does not export {1} (a build stripped of its dynamic symbols?)")]
    MissingSymbol(String, &'static str),
    #[error("the interpreter is not mapped where expected")]
    NotMapped,
    #[error("cannot open /proc/PID/mem: {0}")]
    Memory(std::io::Error),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("its thread list does not match the CPython 3.{0} layout (a debug build, or a patched interpreter?)")]
    Unverified(u32),
}

pub fn discover(process: &TargetProcess) -> Result<Option<PythonContext>, ContextError> {
    let Some(python) = &process.python else { return Ok(None) };
    let minor: u32 = python.version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    let file = process.mapped.iter().find(|f| f.path == python.object_path).ok_or(ContextError::NotMapped)?;
    let host_path = process.host_path(file);
    let elf = Elf::open(&host_path).map_err(|_| ContextError::Unreadable(python.object_path.clone()))?;
    let runtime_symbol = elf
        .symbol("_PyRuntime")
        .ok_or_else(|| ContextError::MissingSymbol(python.object_path.clone(), "_PyRuntime"))?;
    let restore_thread_offset = elf
        .symbol("PyEval_RestoreThread")
        .and_then(|location| location.file_offset)
        .ok_or_else(|| ContextError::MissingSymbol(python.object_path.clone(), "PyEval_RestoreThread"))?;
    let load_bias = file.first_range.0.wrapping_sub(elf.lowest_load_address() & !0xfff);
    let runtime = load_bias.wrapping_add(runtime_symbol.address);
    let memory = ProcMemory::open(process.pid).map_err(ContextError::Memory)?;
    let (layout, threads) = verified_layout(minor, &memory, runtime)?;
    Ok(Some(PythonContext {
        kernel_layout: layout.for_kernel(runtime, process.pid_namespace),
        layout,
        memory,
        threads,
        object_path: python.object_path.clone(),
        object_host_path: host_path,
        restore_thread_offset,
        load_bias,
    }))
}

/// (thread state, native thread id where the version records it).
pub type ThreadStates = Vec<(u64, Option<u64>)>;

/// The layout for 3.`minor` at `runtime`, and the threads whose walk
/// verified it.
pub fn verified_layout(
    minor: u32,
    memory: &(impl ReadMemory + ?Sized),
    runtime: u64,
) -> Result<(Layout, ThreadStates), ContextError> {
    let layout = layout::for_process(minor, memory, runtime)?;
    let threads = layout::threads(&layout, memory, runtime).ok_or(ContextError::Unverified(layout.minor))?;
    Ok((layout, threads))
}

/// The one-line warning for an interpreter newer than pytrace knows, whose
/// published offsets were used because they parsed and verified.
pub fn newer_version_warning(layout: &Layout) -> Option<String> {
    (layout.minor > NEWEST_KNOWN_MINOR).then(|| {
        format!(
            "CPython 3.{} is newer than pytrace knows (3.{NEWEST_KNOWN_MINOR}); using the offsets it publishes, \
             which verified against its thread list",
            layout.minor
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::inspect::mapped_files::MappedFile;
    use crate::targets::inspect::process::PythonRuntime;

    /// An interpreter object without the symbols pytrace needs (a fully
    /// stripped build): refused with a reason naming the missing symbol.
    #[test]
    fn an_object_without_symbols_is_refused_with_the_reason() {
        let object = "/usr/bin/true".to_owned();
        let process = TargetProcess {
            pid: std::process::id(),
            executable: object.clone(),
            command_args: Vec::new(),
            service_name_env: None,
            pid_namespace: None,
            container_id: None,
            pod_uid: None,
            python: Some(PythonRuntime { version: "3.12.1".into(), object_path: object.clone() }),
            mapped: vec![MappedFile {
                path: object.clone(),
                first_range: (0x1000, 0x2000),
                dev: "00:00".into(),
                inode: 0,
                deleted: false,
            }],
        };
        let Err(error) = discover(&process) else { panic!("a stripped object was accepted") };
        assert_eq!(
            error.to_string(),
            "/usr/bin/true does not export _PyRuntime (a build stripped of its dynamic symbols?)"
        );
    }

    /// A 3.`minor` process as far as the layout check reads it: debug
    /// offsets at `RUNTIME`, one interpreter, two thread states.
    fn synthetic_process(minor: u32, free_threaded: bool) -> pytrace_core::python::memory::synthetic::SyntheticMemory {
        use pytrace_core::python::debug_offsets::build::Builder;
        const INTERP: u64 = 0x20_0000;
        const THREADS: [u64; 2] = [0x30_0000, 0x31_0000];
        let mut builder = Builder::new(minor, free_threaded);
        builder
            .set("runtime_state", "interpreters_head", 0x3a8)
            .set("interpreter_state", "threads_head", 0x48)
            .set("thread_state", "next", 0x10)
            .set("thread_state", "interp", 0x18)
            .set("thread_state", "native_thread_id", 0xb8);
        let mut memory = pytrace_core::python::memory::synthetic::SyntheticMemory::default();
        let mut runtime = vec![0u8; 0x1000];
        runtime[..builder.bytes.len()].copy_from_slice(&builder.bytes);
        runtime[0x3a8..0x3b0].copy_from_slice(&INTERP.to_le_bytes());
        memory.put(RUNTIME, &runtime);
        memory.put_u64(INTERP + 0x48, THREADS[0]);
        for (index, tstate) in THREADS.iter().enumerate() {
            let mut state = vec![0u8; 0x100];
            let next = THREADS.get(index + 1).copied().unwrap_or(0);
            state[0x10..0x18].copy_from_slice(&next.to_le_bytes());
            state[0x18..0x20].copy_from_slice(&INTERP.to_le_bytes());
            state[0xb8..0xc0].copy_from_slice(&(4000 + index as u64).to_le_bytes());
            memory.put(*tstate, &state);
        }
        memory
    }

    const RUNTIME: u64 = 0x10_0000;

    #[test]
    fn published_offsets_verify_against_the_thread_list() {
        for minor in [13, 14, 15] {
            let memory = synthetic_process(minor, false);
            let (layout, threads) = verified_layout(minor, &memory, RUNTIME).unwrap();
            assert_eq!(layout.minor, minor);
            assert_eq!(threads, [(0x30_0000, Some(4000)), (0x31_0000, Some(4001))]);
            assert_eq!(layout.kernel.tstate_native_thread_id, 0, "filled in for the kernel by for_kernel");
            assert_eq!(layout.for_kernel(RUNTIME, None).tstate_native_thread_id, 0xb8);
            assert_eq!(layout.for_kernel(RUNTIME, Some((4, 0xf000_0001))).pid_ns_ino, 0xf000_0001);
            assert!(newer_version_warning(&layout).is_none());
        }
    }

    #[test]
    fn free_threaded_builds_are_refused_by_their_published_flag() {
        for minor in [13, 14, 15] {
            let Err(error) = verified_layout(minor, &synthetic_process(minor, true), RUNTIME) else {
                panic!("3.{minor}t accepted")
            };
            assert_eq!(
                error.to_string(),
                format!(
                    "free-threaded CPython 3.{minor}t is not supported for Python context yet (told by the build \
                     flag it publishes)"
                )
            );
        }
    }

    #[test]
    fn a_newer_version_is_used_when_it_verifies_with_a_warning() {
        let mut memory = synthetic_process(15, false);
        let mut runtime = memory.read(RUNTIME, 0x1000).unwrap();
        runtime[8..16].copy_from_slice(&0x0310_00a2u64.to_le_bytes());
        memory.put(RUNTIME, &runtime);
        let (layout, _) = verified_layout(16, &memory, RUNTIME).unwrap();
        assert_eq!(layout.minor, 16);
        let warning = newer_version_warning(&layout).unwrap();
        assert!(warning.starts_with("CPython 3.16 is newer than pytrace knows (3.15)"), "{warning}");
    }

    #[test]
    fn a_thread_list_that_does_not_point_back_is_refused() {
        let mut memory = synthetic_process(14, false);
        let mut state = memory.read(0x31_0000, 0x100).unwrap();
        state[0x18..0x20].copy_from_slice(&0x99_0000u64.to_le_bytes());
        memory.put(0x31_0000, &state);
        let Err(error) = verified_layout(14, &memory, RUNTIME) else { panic!("accepted") };
        assert!(error.to_string().contains("does not match the CPython 3.14 layout"), "{error}");
    }
}
