//! Resolves captured frames — (code object, position) pairs — into
//! qualified names, files and lines, reading code objects from the process
//! lazily and caching them by address.

use std::collections::HashMap;
use std::sync::Arc;

use super::code::{self, CodeInfo};
use super::layout::Layout;
use super::memory::Memory;
use crate::events::RawFrame;
use crate::span::SpanContext;
use crate::span::serving::Concurrency;

/// A resolved Python stack, innermost frame first, and its thread; `within`
/// is the innermost traced function call (`--trace-function`) it runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStack {
    pub tid: u32,
    pub thread_name: Option<Arc<str>>,
    /// Shared with every stack from the same call site (`stacks::StackTable`).
    pub frames: Arc<[Frame]>,
    pub within: Option<SpanContext>,
    /// The thread, or asyncio task, it ran in (from the frames' addresses,
    /// which shared `frames` no longer hold).
    pub model: Concurrency,
}

/// One resolved Python frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub qualname: Arc<str>,
    pub file: Arc<str>,
    pub line: Option<u32>,
    /// The code object's address in the process.
    pub code: u64,
    /// The frame's address: which call this is.
    pub frame: u64,
}

struct Process {
    memory: Memory,
    /// A forked child's parent: code objects made before the fork are
    /// there too, still readable once a short-lived child has exited.
    parent_memory: Option<Memory>,
    layout: Layout,
    codes: HashMap<u64, Option<CodeInfo>>,
    /// Lines already found: (code object, position) → line.
    lines: HashMap<(u64, u64), Option<u32>>,
}

/// Most code objects cached per process before the cache starts over.
const MAX_CACHED_CODES: usize = 65_536;

#[derive(Default)]
pub struct Symbolizer {
    processes: HashMap<u32, Process>,
}

impl Symbolizer {
    /// Registers `pid`; a process already known with this layout (a forked
    /// child, set up by [`Symbolizer::fork`]) is kept as it is.
    pub fn add_process(&mut self, pid: u32, memory: Memory, layout: Layout) {
        if self.processes.get(&pid).is_some_and(|known| known.layout == layout) {
            return;
        }
        let process = Process { memory, parent_memory: None, layout, codes: HashMap::new(), lines: HashMap::new() };
        self.processes.insert(pid, process);
    }

    /// `child` was forked from `parent`: same interpreter, same layout, the
    /// code objects known so far, its own memory and — for code objects
    /// made before the fork, should the child be gone when its stacks are
    /// read — its parent's.
    pub fn fork(&mut self, parent: u32, child: u32) {
        let Some(source) = self.processes.get(&parent) else { return };
        let (layout, codes) = (source.layout, source.codes.clone());
        if let Ok(memory) = Memory::open(child) {
            let parent_memory = Memory::open(parent).ok();
            self.processes.insert(child, Process { memory, parent_memory, layout, codes, lines: HashMap::new() });
        }
    }

    pub fn remove_process(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// Whether `pid`'s code objects carry qualified names (3.11+).
    pub fn has_qualified_names(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|p| p.layout.code.qualname.is_some())
    }

    /// Innermost first, like the input; frames that cannot be read are skipped.
    pub fn resolve(&mut self, pid: u32, frames: &[RawFrame]) -> Vec<Frame> {
        let Some(process) = self.processes.get_mut(&pid) else { return Vec::new() };
        if process.codes.len() > MAX_CACHED_CODES || process.lines.len() > MAX_CACHED_CODES {
            process.codes.clear();
            process.lines.clear();
        }
        let mut resolved = Vec::with_capacity(frames.len());
        for &RawFrame { code, position, frame } in frames {
            let info = process.codes.entry(code).or_insert_with(|| {
                code::read_code(&process.memory, &process.layout, code)
                    .or_else(|| process.parent_memory.as_ref().and_then(|m| code::read_code(m, &process.layout, code)))
            });
            if let Some(info) = info {
                let line = *process
                    .lines
                    .entry((code, position))
                    .or_insert_with(|| code::line_of(&process.layout, info, code, position));
                let (qualname, file) = (info.qualname.clone(), info.filename.clone());
                resolved.push(Frame { qualname, file, line, code, frame });
            }
        }
        resolved
    }
}
