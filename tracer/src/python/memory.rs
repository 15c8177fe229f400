//! Reading a traced process's memory: through `/proc/PID/mem` for real
//! processes ([`Memory`]), behind the [`ReadMemory`] trait so the readers of
//! CPython's structures can be tested on synthetic memory.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Largest single read: bounds what a corrupt length field can make pytrace allocate.
const MAX_READ: usize = 1 << 20;

/// Little-endian reads from some address space.
pub trait ReadMemory {
    /// `len` bytes at `address`, or `None` when any of them is unreadable.
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>>;

    fn u64(&self, address: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.read(address, 8)?.try_into().ok()?))
    }

    fn u32(&self, address: u64) -> Option<u32> {
        Some(u32::from_le_bytes(self.read(address, 4)?.try_into().ok()?))
    }
}

/// A live process's memory.
pub struct Memory {
    file: File,
}

impl Memory {
    pub fn open(pid: u32) -> std::io::Result<Self> {
        Ok(Self { file: File::open(format!("/proc/{pid}/mem"))? })
    }
}

impl ReadMemory for Memory {
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        if address < 4096 || len > MAX_READ {
            return None;
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, address).ok()?;
        Some(buf)
    }
}

/// Memory made up by a test: regions of bytes at chosen addresses.
#[cfg(test)]
pub mod synthetic {
    use std::collections::BTreeMap;

    use super::ReadMemory;

    #[derive(Default)]
    pub struct SyntheticMemory {
        regions: BTreeMap<u64, Vec<u8>>,
    }

    impl SyntheticMemory {
        /// Places `bytes` at `address`.
        pub fn put(&mut self, address: u64, bytes: &[u8]) {
            self.regions.insert(address, bytes.to_vec());
        }

        pub fn put_u64(&mut self, address: u64, value: u64) {
            self.put(address, &value.to_le_bytes());
        }
    }

    impl ReadMemory for SyntheticMemory {
        fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
            let (start, bytes) = self.regions.range(..=address).next_back()?;
            let offset = usize::try_from(address - start).ok()?;
            bytes.get(offset..offset.checked_add(len)?).map(<[u8]>::to_vec)
        }
    }
}
