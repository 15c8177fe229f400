//! Reading a traced process's memory through `/proc/PID/mem`.

use std::fs::File;
use std::os::unix::fs::FileExt;

pub struct Memory {
    file: File,
}

impl Memory {
    pub fn open(pid: u32) -> std::io::Result<Self> {
        Ok(Self { file: File::open(format!("/proc/{pid}/mem"))? })
    }

    pub fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        if address < 4096 || len > 1 << 20 {
            return None;
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, address).ok()?;
        Some(buf)
    }

    pub fn u64(&self, address: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.read(address, 8)?.try_into().ok()?))
    }

    pub fn u32(&self, address: u64) -> Option<u32> {
        Some(u32::from_le_bytes(self.read(address, 4)?.try_into().ok()?))
    }
}
