//! How full the kernel maps that hold per-process state are, and what their
//! limits cost: entries an LRU map evicted to make room, additions a
//! map that does not evict refused.
//!
//! The kernel counts the entries it adds and removes per map
//! (`MAP_CHANGES`); [`MapLedger`] adds user space's own changes, and a sweep
//! (`Probes::sweep_maps`) removes the entries of exited processes and
//! threads and counts what is left. Whatever left a map without being
//! removed was evicted: `added − removed − entries`. The counters are read
//! before the sweep and the removals after it, so a change racing with the
//! sweep can only make the figure low, never high; it is kept as the
//! largest figure seen.

use serde::Serialize;

use super::capacities::MapCapacities;
use tracer_common::{
    ALL_KERNEL_MAPS, KERNEL_MAP_COUNT, KernelMap, MAP_ADDED, MAP_CHANGE_KINDS, MAP_REFUSED, MAP_REMOVED,
};

/// Per map: entries added, removed, refused.
pub type Changes = [[u64; MAP_CHANGE_KINDS as usize]; KERNEL_MAP_COUNT];

/// One kernel map's use, as reported in the summary and on `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MapUsage {
    pub map: &'static str,
    pub capacity: u64,
    /// Entries at the last sweep.
    pub entries: u64,
    /// Entries pushed out to make room for newer ones (LRU maps).
    pub evicted: u64,
    /// Additions refused because the map was full (maps that do not evict).
    pub refused: u64,
}

/// User space's side of the accounts, and the evictions derived so far.
#[derive(Debug, Default)]
pub struct MapLedger {
    capacities: MapCapacities,
    user: Changes,
    evicted: [u64; KERNEL_MAP_COUNT],
    entries: [u64; KERNEL_MAP_COUNT],
}

impl MapLedger {
    pub fn new(capacities: MapCapacities) -> Self {
        Self { capacities, ..Self::default() }
    }

    /// User space added an entry to `map`.
    pub fn added(&mut self, map: KernelMap) {
        self.user[map as usize][MAP_ADDED as usize] += 1;
    }

    /// User space removed `count` entries from `map`.
    pub fn removed(&mut self, map: KernelMap, count: u64) {
        self.user[map as usize][MAP_REMOVED as usize] += count;
    }

    /// `map` was full when user space tried to add an entry.
    pub fn refused(&mut self, map: KernelMap) {
        self.user[map as usize][MAP_REFUSED as usize] += 1;
    }

    /// Settles the accounts after a sweep: `before` are the kernel's
    /// counters read before it, `after` those read after it, `entries` what
    /// each map held (`None`: not counted this time).
    pub fn settle(&mut self, before: &Changes, after: &Changes, entries: &[Option<u64>; KERNEL_MAP_COUNT]) {
        for map in ALL_KERNEL_MAPS {
            let index = map as usize;
            let Some(held) = entries[index] else { continue };
            self.entries[index] = held;
            let added = before[index][MAP_ADDED as usize] + self.user[index][MAP_ADDED as usize];
            let removed = after[index][MAP_REMOVED as usize] + self.user[index][MAP_REMOVED as usize];
            let evicted = added.saturating_sub(removed).saturating_sub(held);
            self.evicted[index] = self.evicted[index].max(evicted);
        }
    }

    /// Every map's use, with the kernel's latest counters.
    pub fn usage(&self, kernel: &Changes) -> Vec<MapUsage> {
        ALL_KERNEL_MAPS
            .iter()
            .map(|&map| {
                let index = map as usize;
                MapUsage {
                    map: map.info().name,
                    capacity: u64::from(self.capacities.of(map)),
                    entries: self.entries[index],
                    evicted: self.evicted[index],
                    refused: kernel[index][MAP_REFUSED as usize] + self.user[index][MAP_REFUSED as usize],
                }
            })
            .collect()
    }
}

/// One line per map that hit its limit, for the end of a session.
pub fn limit_warnings(usage: &[MapUsage]) -> Vec<String> {
    usage
        .iter()
        .filter(|u| u.evicted > 0 || u.refused > 0)
        .map(|u| {
            if u.refused > 0 {
                format!(
                    "the kernel map of {} was full ({} entries): {} additions were refused; raise it with \
                     --map-capacity {}=N",
                    u.map.replace('_', " "),
                    u.capacity,
                    u.refused,
                    u.map
                )
            } else {
                format!(
                    "the kernel map of {} was full ({} entries): {} older entries were evicted to make room; \
                     raise it with --map-capacity {}=N",
                    u.map.replace('_', " "),
                    u.capacity,
                    u.evicted,
                    u.map
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(map: KernelMap, added: u64, removed: u64) -> Changes {
        let mut changes = Changes::default();
        changes[map as usize] = [added, removed, 0];
        changes
    }

    fn held(map: KernelMap, entries: u64) -> [Option<u64>; KERNEL_MAP_COUNT] {
        let mut held = [None; KERNEL_MAP_COUNT];
        held[map as usize] = Some(entries);
        held
    }

    fn usage_of(ledger: &MapLedger, map: KernelMap) -> MapUsage {
        ledger.usage(&Changes::default())[map as usize].clone()
    }

    #[test]
    fn entries_that_left_without_being_removed_were_evicted() {
        let mut ledger = MapLedger::default();
        let kernel = changes(KernelMap::Sockets, 70_000, 1_000);
        ledger.settle(&kernel, &kernel, &held(KernelMap::Sockets, 65_536));
        assert_eq!(usage_of(&ledger, KernelMap::Sockets).evicted, 70_000 - 1_000 - 65_536);
        assert_eq!(usage_of(&ledger, KernelMap::Sockets).entries, 65_536);
    }

    #[test]
    fn user_space_changes_count_with_the_kernels() {
        let mut ledger = MapLedger::default();
        for _ in 0..10 {
            ledger.added(KernelMap::KnownStacks);
        }
        ledger.removed(KernelMap::KnownStacks, 4);
        ledger.settle(&Changes::default(), &Changes::default(), &held(KernelMap::KnownStacks, 6));
        assert_eq!(usage_of(&ledger, KernelMap::KnownStacks).evicted, 0);
        ledger.settle(&Changes::default(), &Changes::default(), &held(KernelMap::KnownStacks, 5));
        assert_eq!(usage_of(&ledger, KernelMap::KnownStacks).evicted, 1);
    }

    #[test]
    fn a_change_racing_with_the_sweep_never_counts_as_an_eviction() {
        let mut ledger = MapLedger::default();
        // An entry added after the counters were read is among those counted,
        // and one removed during the sweep is among the removals read after it.
        let before = changes(KernelMap::ThreadStates, 10, 2);
        let after = changes(KernelMap::ThreadStates, 12, 3);
        ledger.settle(&before, &after, &held(KernelMap::ThreadStates, 8));
        assert_eq!(usage_of(&ledger, KernelMap::ThreadStates).evicted, 0);
    }

    #[test]
    fn evictions_never_go_down_and_refusals_are_summed() {
        let mut ledger = MapLedger::default();
        let kernel = changes(KernelMap::FunctionCodes, 100, 0);
        ledger.settle(&kernel, &kernel, &held(KernelMap::FunctionCodes, 90));
        ledger.settle(&kernel, &kernel, &held(KernelMap::FunctionCodes, 95));
        assert_eq!(usage_of(&ledger, KernelMap::FunctionCodes).evicted, 10);
        let mut kernel = Changes::default();
        kernel[KernelMap::TracedProcesses as usize][MAP_REFUSED as usize] = 2;
        ledger.refused(KernelMap::TracedProcesses);
        assert_eq!(ledger.usage(&kernel)[KernelMap::TracedProcesses as usize].refused, 3);
        let warnings = limit_warnings(&ledger.usage(&kernel));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("traced processes") && warnings[0].contains("3 additions were refused"));
    }
}
