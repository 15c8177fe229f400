//! Resolves captured frames — (code object, position) pairs — into
//! qualified names, files and lines, reading code objects from the process
//! lazily and caching them by address. The caches of all processes share
//! a byte budget ([`CODE_CACHE_BYTES`]): a process whose cache would pass
//! it starts over (counted, `code_cache_resets`), and so do the others if
//! that is not enough.

use std::collections::HashMap;
use std::sync::Arc;

use crate::events::RawFrame;
use crate::model::SpanContext;

use super::asyncio::Concurrency;
use super::code::{self, CodeInfo};
use super::frame::Frame;
use super::layout::Layout;
use super::memory::ProcessMemory;

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
    pub concurrency: Concurrency,
}

struct Process {
    memory: ProcessMemory,
    /// A forked child's parent: code objects made before the fork are
    /// there too, still readable once a short-lived child has exited.
    parent_memory: Option<ProcessMemory>,
    layout: Layout,
    codes: HashMap<u64, Option<CodeInfo>>,
    /// Lines already found: (code object, position) → line.
    lines: HashMap<(u64, u64), Option<u32>>,
    /// What `codes` and `lines` take, roughly (see [`cached_size`]).
    cached_bytes: usize,
}

impl Process {
    fn new(
        memory: ProcessMemory,
        parent_memory: Option<ProcessMemory>,
        layout: Layout,
        codes: HashMap<u64, Option<CodeInfo>>,
    ) -> Self {
        let cached_bytes = codes.values().map(cached_size).sum();
        Self { memory, parent_memory, layout, codes, lines: HashMap::new(), cached_bytes }
    }

    fn clear_cache(&mut self) -> usize {
        self.codes = HashMap::new();
        self.lines = HashMap::new();
        std::mem::take(&mut self.cached_bytes)
    }
}

/// Bytes the code-object caches of all processes may take together.
pub const CODE_CACHE_BYTES: usize = 32 << 20;
/// A cached line's share: its key, value and the map's overhead.
const LINE_ENTRY_BYTES: usize = 40;

/// Roughly what caching one code object takes: its strings (shared with
/// the frames that name them), line table and the map entry.
fn cached_size(info: &Option<CodeInfo>) -> usize {
    64 + info.as_ref().map_or(0, |info| info.qualname.len() + info.filename.len() + info.line_table.len())
}

#[derive(Default)]
pub struct Symbolizer {
    processes: HashMap<u32, Process>,
    /// What every process's cache takes.
    cached_bytes: usize,
    cache_resets: u64,
}

impl Symbolizer {
    /// Registers `pid`; a process already known with this layout (a forked
    /// child, set up by [`Symbolizer::fork`]) is kept as it is.
    pub fn add_process(&mut self, pid: u32, memory: ProcessMemory, layout: Layout) {
        if self.processes.get(&pid).is_some_and(|known| known.layout == layout) {
            return;
        }
        let process = Process::new(memory, None, layout, HashMap::new());
        if let Some(old) = self.processes.insert(pid, process) {
            self.cached_bytes -= old.cached_bytes;
        }
    }

    /// Whether `pid`'s stacks are resolved (its Python context is on).
    pub fn knows(&self, pid: u32) -> bool {
        self.processes.contains_key(&pid)
    }

    /// `child` was forked from `parent`: same interpreter, same layout, the
    /// code objects known so far, its own `memory` and — for code objects
    /// made before the fork, should the child be gone when its stacks are
    /// read — its parent's (`parent_memory`).
    pub fn fork(&mut self, parent: u32, child: u32, memory: ProcessMemory, parent_memory: Option<ProcessMemory>) {
        let Some(source) = self.processes.get(&parent) else { return };
        let (layout, codes) = (source.layout, source.codes.clone());
        let process = Process::new(memory, parent_memory, layout, codes);
        self.cached_bytes += process.cached_bytes;
        if let Some(old) = self.processes.insert(child, process) {
            self.cached_bytes -= old.cached_bytes;
        }
    }

    pub fn remove_process(&mut self, pid: u32) {
        if let Some(old) = self.processes.remove(&pid) {
            self.cached_bytes -= old.cached_bytes;
        }
    }

    /// Times a cache was emptied to keep within [`CODE_CACHE_BYTES`].
    pub fn cache_resets(&self) -> u64 {
        self.cache_resets
    }

    /// Bytes the caches take now.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }

    /// Empties `pid`'s cache when the budget is spent, then every cache
    /// should that not be enough (one busy process among many small ones).
    fn keep_within_budget(&mut self, pid: u32) {
        if self.cached_bytes < CODE_CACHE_BYTES {
            return;
        }
        if let Some(process) = self.processes.get_mut(&pid) {
            self.cached_bytes -= process.clear_cache();
            self.cache_resets += 1;
        }
        if self.cached_bytes >= CODE_CACHE_BYTES / 2 {
            for process in self.processes.values_mut() {
                process.clear_cache();
            }
            self.cached_bytes = 0;
            self.cache_resets += 1;
        }
    }

    /// Whether `pid`'s code objects carry qualified names (3.11+).
    pub fn has_qualified_names(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|p| p.layout.code.qualname.is_some())
    }

    /// Innermost first, like the input; frames that cannot be read are skipped.
    pub fn resolve(&mut self, pid: u32, frames: &[RawFrame]) -> Vec<Frame> {
        self.keep_within_budget(pid);
        let Some(process) = self.processes.get_mut(&pid) else { return Vec::new() };
        let mut added = 0;
        let mut resolved = Vec::with_capacity(frames.len());
        for &RawFrame { code, position, frame } in frames {
            let info = process.codes.entry(code).or_insert_with(|| {
                let info = code::read_code(process.memory.as_ref(), &process.layout, code).or_else(|| {
                    process.parent_memory.as_ref().and_then(|m| code::read_code(m.as_ref(), &process.layout, code))
                });
                added += cached_size(&info);
                info
            });
            if let Some(info) = info {
                let line = *process.lines.entry((code, position)).or_insert_with(|| {
                    added += LINE_ENTRY_BYTES;
                    code::line_of(&process.layout, info, code, position)
                });
                let (qualname, file) = (info.qualname.clone(), info.filename.clone());
                resolved.push(Frame { qualname, file, line, code, frame });
            }
        }
        process.cached_bytes += added;
        self.cached_bytes += added;
        resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose cache holds one code object with a line table of `bytes`.
    fn process_caching(bytes: usize) -> Process {
        let info =
            CodeInfo { qualname: "f".into(), filename: "app.py".into(), firstlineno: 1, line_table: vec![0; bytes] };
        let memory = Box::new(super::super::memory::synthetic::SyntheticMemory::default());
        let layout = super::super::layout::table(12).expect("3.12 layout");
        Process::new(memory, None, layout, HashMap::from([(0x1000, Some(info))]))
    }

    fn symbolizer_with(sizes: &[(u32, usize)]) -> Symbolizer {
        let mut symbolizer = Symbolizer::default();
        for &(pid, bytes) in sizes {
            let process = process_caching(bytes);
            symbolizer.cached_bytes += process.cached_bytes;
            symbolizer.processes.insert(pid, process);
        }
        symbolizer
    }

    #[test]
    fn the_busy_process_starts_over_when_the_budget_is_spent() {
        let mut symbolizer = symbolizer_with(&[(1, CODE_CACHE_BYTES), (2, 1024)]);
        symbolizer.keep_within_budget(1);
        assert_eq!(symbolizer.cache_resets(), 1);
        assert!(symbolizer.processes[&1].codes.is_empty());
        assert_eq!(symbolizer.processes[&2].codes.len(), 1, "the small cache is kept");
        assert_eq!(symbolizer.cached_bytes(), symbolizer.processes[&2].cached_bytes);
    }

    #[test]
    fn every_cache_starts_over_when_others_hold_the_budget() {
        let mut symbolizer = symbolizer_with(&[(1, 1024), (2, CODE_CACHE_BYTES / 2), (3, CODE_CACHE_BYTES / 2)]);
        symbolizer.keep_within_budget(1);
        assert_eq!(symbolizer.cache_resets(), 2);
        assert_eq!(symbolizer.cached_bytes(), 0);
        assert!(symbolizer.processes.values().all(|p| p.codes.is_empty()));
    }

    #[test]
    fn a_cache_under_budget_is_kept_and_removal_gives_its_bytes_back() {
        let mut symbolizer = symbolizer_with(&[(1, 4096), (2, 4096)]);
        symbolizer.keep_within_budget(1);
        assert_eq!(symbolizer.cache_resets(), 0);
        symbolizer.remove_process(1);
        assert_eq!(symbolizer.cached_bytes(), symbolizer.processes[&2].cached_bytes);
    }
}
