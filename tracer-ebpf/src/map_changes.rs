//! Counts of what happens to the maps that hold per-process state: entries
//! added, entries removed, additions refused. User space reads them with
//! its own changes and a count of the entries left, and so knows how many
//! entries an LRU map evicted to make room — a limit reported, not silent.
//!
//! Every change to such a map goes through [`store!`] or [`remove!`].

use tracer_common::{KernelMap, MAP_ADDED, MAP_REFUSED, MAP_REMOVED, map_change_slot};

use crate::maps::MAP_CHANGES;

/// `BPF_NOEXIST`: add the key only if it is absent.
pub const NO_EXIST: u64 = 1;

pub fn note(map: KernelMap, kind: u32) {
    if let Some(counter) = MAP_CHANGES.get_ptr_mut(map_change_slot(map, kind)) {
        // SAFETY: per-CPU value owned by this CPU for the program's duration.
        unsafe { *counter += 1 };
    }
}

pub fn added(map: KernelMap) {
    note(map, MAP_ADDED);
}

pub fn removed(map: KernelMap) {
    note(map, MAP_REMOVED);
}

pub fn refused(map: KernelMap) {
    note(map, MAP_REFUSED);
}

/// Sets `key` to `value` in `map`: overwritten in place when present, else
/// added (counted; a full map's refusal is counted too).
macro_rules! store {
    ($map:expr, $which:expr, $key:expr, $value:expr) => {{
        match $map.get_ptr_mut($key) {
            // SAFETY: map value pointer valid for this program run.
            Some(slot) => unsafe { *slot = *$value },
            None => match $map.insert($key, $value, $crate::map_changes::NO_EXIST) {
                Ok(()) => $crate::map_changes::added($which),
                // Added meanwhile by another CPU, or the map is full.
                Err(_) => {
                    if $map.insert($key, $value, 0).is_err() {
                        $crate::map_changes::refused($which);
                    }
                }
            },
        }
    }};
}

/// Removes `key` from `map`, counting the removal when there was an entry.
macro_rules! remove {
    ($map:expr, $which:expr, $key:expr) => {{
        if $map.remove($key).is_ok() {
            $crate::map_changes::removed($which);
        }
    }};
}

pub(crate) use {remove, store};
