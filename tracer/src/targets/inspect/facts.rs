//! What the engine may ask the system about a process, answered from
//! `/proc`: whether it is a process (not a thread), its main thread's name,
//! and its memory.

use pytrace_core::engine::ProcessFacts;
use pytrace_core::python::memory::ProcessMemory;

use super::memory::ProcMemory;
use super::{process, threads};

/// What only the system knows of a process, read from `/proc`.
pub struct ProcFacts;

impl ProcessFacts for ProcFacts {
    fn is_process(&self, pid: u32) -> bool {
        process::is_process(pid)
    }

    fn main_thread_name(&self, pid: u32) -> Option<String> {
        threads::main_thread_name(pid)
    }

    fn memory(&self, pid: u32) -> Option<ProcessMemory> {
        ProcMemory::open(pid).ok().map(|memory| Box::new(memory) as ProcessMemory)
    }
}
