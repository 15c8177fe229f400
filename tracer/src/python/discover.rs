//! Setting up Python context for a target at attach: where `_PyRuntime` is
//! in the live process, which layout applies, and whether it verifies — by
//! walking the interpreter's thread list through `/proc/PID/mem`, every
//! thread state pointing back at its interpreter. Anything unexpected (a
//! debug build, free-threaded CPython, an unknown version) is refused with a
//! reason, and tracing goes on without Python context.

use std::path::PathBuf;

use super::layout::{self, Layout, LayoutError};
use super::memory::Memory;
use crate::target::TargetProcess;
use crate::target::elf::Elf;

/// Everything needed to capture and resolve a process's Python stacks.
pub struct PythonContext {
    pub layout: Layout,
    pub memory: Memory,
    /// (thread state, native thread id) of the threads alive at attach.
    pub threads: Vec<(u64, Option<u64>)>,
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
    #[error("free-threaded CPython ({0}) is not supported yet")]
    FreeThreaded(String),
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
    let name = python.object_path.rsplit('/').next().unwrap_or_default();
    if name.contains("t.so") || name.ends_with('t') {
        return Err(ContextError::FreeThreaded(name.to_owned()));
    }
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
    let memory = Memory::open(process.pid).map_err(ContextError::Memory)?;
    let layout = layout::for_process(minor, &memory, runtime)?;
    let threads = layout::threads(&layout, &memory, runtime).ok_or(ContextError::Unverified(minor))?;
    Ok(Some(PythonContext {
        kernel_layout: layout.for_kernel(runtime),
        layout,
        memory,
        threads,
        object_path: python.object_path.clone(),
        object_host_path: host_path,
        restore_thread_offset,
        load_bias,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::maps::MappedFile;
    use crate::target::process::PythonRuntime;

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
}
