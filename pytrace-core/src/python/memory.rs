//! Reading a traced process's memory, behind the [`ReadMemory`] trait: the
//! agent reads a live process's (`/proc/PID/mem`), tests read synthetic
//! memory ([`synthetic`]).

/// Largest single read: bounds what a corrupt length field can make pytrace allocate.
pub const MAX_READ: usize = 1 << 20;

/// A process's memory as the engine holds it.
pub type ProcessMemory = Box<dyn ReadMemory>;

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

/// Memory made up by a test: regions of bytes at chosen addresses (feature `testing`).
#[cfg(any(test, feature = "testing"))]
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
