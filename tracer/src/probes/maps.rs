//! User space's reads and writes of the kernel maps: which processes are
//! traced, their CPython layouts and sockets, verdicts on code objects,
//! resolved stacks — each change counted in the [`MapLedger`] — the
//! kernel's counters, and the sweep that clears exited processes' and
//! threads' entries out of the per-process maps.

use std::collections::HashSet;
use std::path::Path;

use aya::Pod;
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use pytrace_core::correlate::function::CodeVerdict;
use tracer_common::{
    ALL_KERNEL_MAPS, ActiveFunction, ActiveFunctionKey, CODE_IGNORED, CODE_TRACED, FunctionCodeKey, KERNEL_MAP_COUNT,
    KernelMap, KnownStackKey, MAP_CHANGE_KINDS, PendingSocketCall, PyLayout, STAT_COUNT, SocketCall, SocketState,
    SslCall, map_change_slot, socket_key,
};

use super::ledger::{Changes, MapUsage};
use super::{ProbeError, Probes};

/// `BPF_NOEXIST`: add the key only if it is absent.
const NO_EXIST: u64 = 1;

impl Probes {
    /// Lets the programs act for `pid`. Fails when the map of traced
    /// processes is full (counted).
    pub fn trace_pid(&mut self, pid: u32) -> Result<(), ProbeError> {
        self.store(KernelMap::TracedProcesses, pid, 1u8)
    }

    /// Stops acting for `pid` (it exited): its entry and its layout go.
    pub fn forget_pid(&mut self, pid: u32) {
        self.remove(KernelMap::TracedProcesses, &pid);
        self.remove(KernelMap::PythonLayouts, &pid);
        self.attached.retain(|(p, _)| *p != pid);
    }

    /// Tells the kernel programs about a socket that was open before attach.
    pub fn seed_socket(&mut self, pid: u32, fd: u32, state: SocketState) -> Result<(), ProbeError> {
        self.store(KernelMap::Sockets, socket_key(pid, fd), state)
    }

    /// Tells the kernel which newly seen code objects are traced functions.
    pub fn trace_codes(&mut self, verdicts: &[CodeVerdict]) -> Result<(), ProbeError> {
        for verdict in verdicts {
            let key = FunctionCodeKey { pid: u64::from(verdict.pid), code: verdict.code };
            self.store(KernelMap::FunctionCodes, key, if verdict.traced { CODE_TRACED } else { CODE_IGNORED })?;
        }
        Ok(())
    }

    /// Tells the kernel these stacks' code objects are known to user space.
    pub fn mark_stacks_known(&mut self, stacks: &[KnownStackKey]) -> Result<(), ProbeError> {
        for key in stacks {
            self.store(KernelMap::KnownStacks, *key, 1u8)?;
        }
        Ok(())
    }

    /// Sets `key` to `value` in `map`, counting an addition (or a refusal).
    pub(super) fn store<K: Pod, V: Pod>(&mut self, map: KernelMap, key: K, value: V) -> Result<(), ProbeError> {
        let mut entries = hash_map::<K, V>(&mut self.ebpf, map)?;
        if entries.insert(key, value, NO_EXIST).is_ok() {
            self.ledger.added(map);
            return Ok(());
        }
        // Present already (overwritten), or no room.
        entries.insert(key, value, 0).map_err(|source| {
            self.ledger.refused(map);
            ProbeError::MapFull { name: map.info().name, source }
        })
    }

    fn remove<K: Pod>(&mut self, map: KernelMap, key: &K) {
        let removed = match map {
            KernelMap::TracedProcesses => hash_map::<K, u8>(&mut self.ebpf, map).map(|mut m| m.remove(key).is_ok()),
            KernelMap::PythonLayouts => hash_map::<K, PyLayout>(&mut self.ebpf, map).map(|mut m| m.remove(key).is_ok()),
            _ => Ok(false),
        };
        if removed.unwrap_or(false) {
            self.ledger.removed(map, 1);
        }
    }

    /// Kernel counters summed over CPUs, indexed by [`tracer_common::Stat`].
    pub fn stats(&self) -> [u64; STAT_COUNT as usize] {
        let mut totals = [0; STAT_COUNT as usize];
        sum_per_cpu(&self.ebpf, "STATS", &mut totals);
        totals
    }

    /// The kernel's additions, removals and refusals per map.
    fn map_changes(&self) -> Changes {
        let mut flat = [0; KERNEL_MAP_COUNT * MAP_CHANGE_KINDS as usize];
        sum_per_cpu(&self.ebpf, "MAP_CHANGES", &mut flat);
        let mut changes = Changes::default();
        for map in ALL_KERNEL_MAPS {
            for kind in 0..MAP_CHANGE_KINDS {
                changes[map as usize][kind as usize] = flat[map_change_slot(map, kind) as usize];
            }
        }
        changes
    }

    /// Each per-process map's use: capacity, entries at the last sweep,
    /// evictions and refusals so far.
    pub fn map_usage(&self) -> Vec<MapUsage> {
        self.ledger.usage(&self.map_changes())
    }

    /// Removes the entries of processes no longer traced and of threads
    /// that exited, counts what is left and settles the eviction accounts.
    /// Cost: one map lookup per entry, one `stat` per thread entry.
    pub fn sweep_maps(&mut self) {
        let before = self.map_changes();
        let mut entries = [None; KERNEL_MAP_COUNT];
        let ebpf = &mut self.ebpf;
        let by_process = |pid: u64, traced: &HashSet<u32>| !traced.contains(&(pid as u32));
        let swept = [
            (
                KernelMap::TracedProcesses,
                keys_of::<u32, u8>(ebpf, KernelMap::TracedProcesses).map(|k| (k.len() as u64, 0)),
            ),
            (
                KernelMap::PythonLayouts,
                sweep_map::<u32, PyLayout>(ebpf, KernelMap::PythonLayouts, |pid, t| by_process(u64::from(*pid), t)),
            ),
            (
                KernelMap::Sockets,
                sweep_map::<u64, SocketState>(ebpf, KernelMap::Sockets, |key, t| by_process(key >> 32, t)),
            ),
            (KernelMap::ThreadStates, sweep_map::<u64, u64>(ebpf, KernelMap::ThreadStates, thread_gone)),
            (KernelMap::SslCalls, sweep_map::<u64, SslCall>(ebpf, KernelMap::SslCalls, thread_gone)),
            (KernelMap::SocketCalls, sweep_map::<u64, SocketCall>(ebpf, KernelMap::SocketCalls, thread_gone)),
            (
                KernelMap::PendingSocketCalls,
                sweep_map::<u64, PendingSocketCall>(ebpf, KernelMap::PendingSocketCalls, thread_gone),
            ),
            (
                KernelMap::KnownStacks,
                sweep_map::<KnownStackKey, u8>(ebpf, KernelMap::KnownStacks, |key, t| by_process(key.pid, t)),
            ),
            (
                KernelMap::FunctionCodes,
                sweep_map::<FunctionCodeKey, u8>(ebpf, KernelMap::FunctionCodes, |key, t| by_process(key.pid, t)),
            ),
            (
                KernelMap::ActiveFunctions,
                sweep_map::<ActiveFunctionKey, ActiveFunction>(ebpf, KernelMap::ActiveFunctions, |key, t| {
                    by_process(key.owner >> 32, t)
                }),
            ),
        ];
        for (map, result) in swept {
            match result {
                Ok((left, removed)) => {
                    entries[map as usize] = Some(left);
                    self.ledger.removed(map, removed);
                }
                Err(error) => tracing::debug!(%error, "sweeping a kernel map failed"),
            }
        }
        let after = self.map_changes();
        self.ledger.settle(&before, &after, &entries);
    }
}

/// A thread's entry (keyed by pid_tgid) is stale once its process is no
/// longer traced or the thread has exited.
fn thread_gone(pid_tgid: &u64, traced: &HashSet<u32>) -> bool {
    let (pid, tid) = ((pid_tgid >> 32) as u32, *pid_tgid as u32);
    !traced.contains(&pid) || !Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
}

fn keys_of<K: Pod, V: Pod>(ebpf: &mut aya::Ebpf, map: KernelMap) -> Result<Vec<K>, ProbeError> {
    Ok(hash_map::<K, V>(ebpf, map)?.keys().filter_map(Result::ok).collect())
}

/// Removes the entries of `map` that `gone` picks out, given the traced
/// processes; returns (entries left, entries removed). The keys are read
/// before the traced set, so a process forked meanwhile is in the set by
/// the time any entry of its can be among the keys.
fn sweep_map<K: Pod, V: Pod>(
    ebpf: &mut aya::Ebpf,
    map: KernelMap,
    gone: impl Fn(&K, &HashSet<u32>) -> bool,
) -> Result<(u64, u64), ProbeError> {
    let keys = keys_of::<K, V>(ebpf, map)?;
    let traced: HashSet<u32> = keys_of::<u32, u8>(ebpf, KernelMap::TracedProcesses)?.into_iter().collect();
    let mut entries = hash_map::<K, V>(ebpf, map)?;
    let removed = keys.iter().filter(|key| gone(key, &traced) && entries.remove(key).is_ok()).count() as u64;
    Ok((keys.len() as u64 - removed, removed))
}

fn hash_map<K: Pod, V: Pod>(
    ebpf: &mut aya::Ebpf,
    map: KernelMap,
) -> Result<BpfHashMap<&mut MapData, K, V>, ProbeError> {
    let symbol = map.info().symbol;
    let data = ebpf.map_mut(symbol).ok_or(ProbeError::MissingMap(symbol))?;
    BpfHashMap::try_from(data).map_err(|source| ProbeError::Map { map: symbol, source })
}

/// Sums a per-CPU array of counters into `totals`, slot by slot.
fn sum_per_cpu(ebpf: &aya::Ebpf, name: &str, totals: &mut [u64]) {
    let Some(Ok(counters)) = ebpf.map(name).map(PerCpuArray::<_, u64>::try_from) else { return };
    for (index, total) in totals.iter_mut().enumerate() {
        if let Ok(values) = counters.get(&(index as u32), 0) {
            *total = values.iter().sum();
        }
    }
}
