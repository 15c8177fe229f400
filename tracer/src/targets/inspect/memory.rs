//! A live process's memory, read through `/proc/PID/mem`: what the engine's
//! Python readers (`pytrace_core::python`) are given to read it with.

use std::fs::File;
use std::os::unix::fs::FileExt;

use pytrace_core::python::memory::{MAX_READ, ReadMemory};

/// A live process's memory.
pub struct ProcMemory {
    file: File,
}

impl ProcMemory {
    pub fn open(pid: u32) -> std::io::Result<Self> {
        Ok(Self { file: File::open(format!("/proc/{pid}/mem"))? })
    }
}

impl ReadMemory for ProcMemory {
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        if address < 4096 || len > MAX_READ {
            return None;
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, address).ok()?;
        Some(buf)
    }
}
