//! Resolves captured frames — (code object, position) pairs — into
//! qualified names, files and lines, reading code objects from the process
//! lazily and caching them by address.

use std::collections::HashMap;

use super::code::{self, CodeInfo};
use super::layout::Layout;
use super::memory::Memory;

/// A resolved Python stack, innermost frame first, and its thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStack {
    pub tid: u32,
    pub frames: Vec<Frame>,
}

/// One resolved Python frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub qualname: String,
    pub file: String,
    pub line: Option<u32>,
}

struct Process {
    memory: Memory,
    layout: Layout,
    codes: HashMap<u64, Option<CodeInfo>>,
}

/// Most code objects cached per process before the cache starts over.
const MAX_CACHED_CODES: usize = 65_536;

#[derive(Default)]
pub struct Symbolizer {
    processes: HashMap<u32, Process>,
}

impl Symbolizer {
    pub fn add_process(&mut self, pid: u32, memory: Memory, layout: Layout) {
        self.processes.insert(pid, Process { memory, layout, codes: HashMap::new() });
    }

    pub fn remove_process(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// Innermost first, like the input; frames that cannot be read are skipped.
    pub fn resolve(&mut self, pid: u32, frames: &[(u64, u64)]) -> Vec<Frame> {
        let Some(process) = self.processes.get_mut(&pid) else { return Vec::new() };
        if process.codes.len() > MAX_CACHED_CODES {
            process.codes.clear();
        }
        let mut resolved = Vec::with_capacity(frames.len());
        for &(code, position) in frames {
            let info = process
                .codes
                .entry(code)
                .or_insert_with(|| code::read_code(&process.memory, &process.layout, code))
                .clone();
            if let Some(info) = info {
                let line = code::line_of(&process.layout, &info, code, position);
                resolved.push(Frame { qualname: info.qualname, file: info.filename, line });
            }
        }
        resolved
    }
}
