//! Loading the embedded kernel programs and attaching them to TLS libraries.
//!
//! Which function gets which program is one declarative table,
//! [`TLS_PROBES`]; attaching is the same loop for every row. Probes are
//! attached per (process, library file) with the process as the uprobe's
//! scope, so no other process on the host hits them, and the programs
//! additionally check the `TARGET_PIDS` map. Dropping [`Probes`] detaches
//! everything.

use std::collections::HashSet;
use std::num::NonZeroU32;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{UProbe, uprobe::UProbeAttachLocation, uprobe::UProbeScope};
use aya::{Ebpf, EbpfLoader};
use tracer_common::{STAT_COUNT, Stat};

use crate::target::tls::{FileId, TlsLibrary};

/// The kernel object built from `tracer-ebpf`.
static KERNEL_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Entry,
    Return,
}

/// One uprobe: which program runs where.
#[derive(Clone, Copy, Debug)]
pub struct ProbeSpec {
    pub symbol: &'static str,
    pub program: &'static str,
    pub hook: Hook,
}

const fn probe(symbol: &'static str, program: &'static str, hook: Hook) -> ProbeSpec {
    ProbeSpec {
        symbol,
        program,
        hook,
    }
}

/// OpenSSL: CPython ≥ 3.10 calls only the `_ex` variants, 3.8/3.9 only the
/// plain ones; one return program serves all four.
pub const TLS_PROBES: &[ProbeSpec] = &[
    probe("SSL_write", "ssl_write", Hook::Entry),
    probe("SSL_write", "ssl_call_return", Hook::Return),
    probe("SSL_write_ex", "ssl_write_ex", Hook::Entry),
    probe("SSL_write_ex", "ssl_call_return", Hook::Return),
    probe("SSL_read", "ssl_read", Hook::Entry),
    probe("SSL_read", "ssl_call_return", Hook::Return),
    probe("SSL_read_ex", "ssl_read_ex", Hook::Entry),
    probe("SSL_read_ex", "ssl_call_return", Hook::Return),
    probe("SSL_free", "ssl_free", Hook::Entry),
];

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("loading the kernel programs failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("kernel program {program}: {source}")]
    Program {
        program: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error("map {0} is missing from the kernel object")]
    MissingMap(&'static str),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
    #[error("attaching to {symbol} in {library} failed: {source}")]
    Attach {
        symbol: &'static str,
        library: String,
        source: aya::programs::ProgramError,
    },
}

pub struct Probes {
    ebpf: Ebpf,
    attached: HashSet<(u32, FileId)>,
}

impl Probes {
    /// Loads and verifies every program; attaches nothing yet.
    pub fn load(capture_limit: u32) -> Result<Self, ProbeError> {
        let mut ebpf = EbpfLoader::new()
            .override_global("CAPTURE_LIMIT", &capture_limit, true)
            .load(KERNEL_OBJECT)?;
        let mut programs: Vec<&'static str> = TLS_PROBES.iter().map(|p| p.program).collect();
        programs.sort_unstable();
        programs.dedup();
        for program in programs {
            uprobe(&mut ebpf, program)?
                .load()
                .map_err(|source| ProbeError::Program { program, source })?;
        }
        Ok(Self {
            ebpf,
            attached: HashSet::new(),
        })
    }

    /// Lets the programs act for `pid`.
    pub fn trace_pid(&mut self, pid: u32) -> Result<(), ProbeError> {
        let map = self
            .ebpf
            .map_mut("TARGET_PIDS")
            .ok_or(ProbeError::MissingMap("TARGET_PIDS"))?;
        let mut pids: BpfHashMap<_, u32, u8> =
            BpfHashMap::try_from(map).map_err(|source| ProbeError::Map {
                map: "TARGET_PIDS",
                source,
            })?;
        pids.insert(pid, 1, 0).map_err(|source| ProbeError::Map {
            map: "TARGET_PIDS",
            source,
        })
    }

    /// Stops acting for `pid` (it exited).
    pub fn forget_pid(&mut self, pid: u32) {
        if let Some(map) = self.ebpf.map_mut("TARGET_PIDS")
            && let Ok(mut pids) = BpfHashMap::<_, u32, u8>::try_from(map)
        {
            let _ = pids.remove(&pid);
        }
        self.attached.retain(|(p, _)| *p != pid);
    }

    /// Attaches every probe whose symbol `library` defines, scoped to `pid`.
    /// Returns false when this library was already attached for this pid.
    pub fn attach_library(&mut self, pid: u32, library: &TlsLibrary) -> Result<bool, ProbeError> {
        if !self.attached.insert((pid, library.id)) {
            return Ok(false);
        }
        let scope = NonZeroU32::new(pid).map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        for spec in TLS_PROBES {
            let Some((_, offset)) = library.symbols.iter().find(|(s, _)| *s == spec.symbol) else {
                continue;
            };
            let program = uprobe(&mut self.ebpf, spec.program)?;
            program
                .attach(
                    UProbeAttachLocation::AbsoluteOffset(*offset),
                    &library.host_path,
                    scope,
                )
                .map_err(|source| ProbeError::Attach {
                    symbol: spec.symbol,
                    library: library.path.clone(),
                    source,
                })?;
        }
        Ok(true)
    }

    pub fn take_ring_buffer(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or(ProbeError::MissingMap("EVENTS"))?;
        RingBuf::try_from(map).map_err(|source| ProbeError::Map {
            map: "EVENTS",
            source,
        })
    }

    /// Kernel counters summed over CPUs, indexed by [`Stat`].
    pub fn stats(&self) -> [u64; STAT_COUNT as usize] {
        let mut totals = [0; STAT_COUNT as usize];
        let Some(map) = self.ebpf.map("STATS") else {
            return totals;
        };
        let Ok(stats) = PerCpuArray::<_, u64>::try_from(map) else {
            return totals;
        };
        for (index, total) in totals.iter_mut().enumerate() {
            if let Ok(values) = stats.get(&(index as u32), 0) {
                *total = values.iter().sum();
            }
        }
        totals
    }
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut UProbe, ProbeError> {
    let missing = || ProbeError::Program {
        program,
        source: aya::programs::ProgramError::NotLoaded,
    };
    ebpf.program_mut(program)
        .ok_or_else(missing)?
        .try_into()
        .map_err(|source| ProbeError::Program { program, source })
}

/// Stat index helper for readers of [`Probes::stats`].
pub fn stat(totals: &[u64; STAT_COUNT as usize], which: Stat) -> u64 {
    totals[which as usize]
}
