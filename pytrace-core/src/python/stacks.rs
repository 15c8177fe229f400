//! Shared copies of resolved stacks. Requests made from the same call site
//! resolve to the same frames; keeping one copy of them for every request
//! in flight, rather than one each, is what lets thousands of open
//! connections cost little memory.

use std::collections::HashMap;
use std::sync::Arc;

use super::frame::Frame;

/// Most distinct stacks kept before the table starts over.
const MAX_STACKS: usize = 4096;

/// A stack's identity: its process and each frame's code object and line.
type StackKey = (u32, Vec<(u64, Option<u32>)>);

#[derive(Default)]
pub struct StackTable {
    stacks: HashMap<StackKey, Arc<[Frame]>>,
}

impl StackTable {
    /// The shared copy of `frames` (of process `pid`). Frame addresses —
    /// which call each frame is — are dropped: they differ from call to
    /// call and matter only while the stack is matched to running calls.
    pub fn share(&mut self, pid: u32, frames: &[Frame]) -> Arc<[Frame]> {
        let key = (pid, frames.iter().map(|f| (f.code, f.line)).collect());
        if let Some(shared) = self.stacks.get(&key) {
            return shared.clone();
        }
        if self.stacks.len() >= MAX_STACKS {
            self.stacks.clear();
        }
        let shared: Arc<[Frame]> = frames.iter().map(|f| Frame { frame: 0, ..f.clone() }).collect();
        self.stacks.insert(key, shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(code: u64, line: u32, at: u64) -> Frame {
        Frame { qualname: "f".into(), file: "/app.py".into(), line: Some(line), code, frame: at }
    }

    #[test]
    fn the_same_call_site_shares_one_copy() {
        let mut table = StackTable::default();
        let first = table.share(1, &[frame(10, 3, 0x100), frame(20, 7, 0x200)]);
        let again = table.share(1, &[frame(10, 3, 0x900), frame(20, 7, 0xa00)]);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first[0].line, Some(3));
        assert!(!Arc::ptr_eq(&first, &table.share(1, &[frame(10, 4, 0x100), frame(20, 7, 0x200)])), "another line");
        assert!(!Arc::ptr_eq(&first, &table.share(2, &[frame(10, 3, 0x100), frame(20, 7, 0x200)])), "another process");
    }
}
