//! How many entries each kernel map holding per-process state gets: its
//! default (`tracer_common::KERNEL_MAPS`) unless `--map-capacity MAP=N`
//! says otherwise. A node with more processes, threads or sockets than the
//! defaults allow raises them; evictions and refusals tell when to.

use tracer_common::{ALL_KERNEL_MAPS, KERNEL_MAP_COUNT, KernelMap};

/// Largest capacity accepted: the kernel allocates LRU maps' entries up
/// front, so this bounds the memory one flag can take.
pub const MAX_MAP_CAPACITY: u32 = 4 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapCapacities([u32; KERNEL_MAP_COUNT]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapCapacityError {
    #[error("--map-capacity takes MAP=ENTRIES, not `{0}`")]
    Form(String),
    #[error("--map-capacity: no kernel map is called `{name}`; the maps are: {known}")]
    UnknownMap { name: String, known: String },
    #[error("--map-capacity {name}: entries must be a number from 1 to {MAX_MAP_CAPACITY}, not `{value}`")]
    Entries { name: String, value: String },
}

impl Default for MapCapacities {
    fn default() -> Self {
        Self(ALL_KERNEL_MAPS.map(KernelMap::capacity))
    }
}

impl MapCapacities {
    /// The defaults with each `MAP=ENTRIES` applied in turn.
    pub fn parse(settings: &[String]) -> Result<Self, MapCapacityError> {
        let mut capacities = Self::default();
        for setting in settings {
            let (name, value) = setting.split_once('=').ok_or_else(|| MapCapacityError::Form(setting.clone()))?;
            let name = name.trim();
            let map = ALL_KERNEL_MAPS.into_iter().find(|map| map.info().name == name).ok_or_else(|| {
                MapCapacityError::UnknownMap {
                    name: name.to_owned(),
                    known: ALL_KERNEL_MAPS.map(|map| map.info().name).join(", "),
                }
            })?;
            let entries =
                value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|entries| (1..=MAX_MAP_CAPACITY).contains(entries))
                    .ok_or_else(|| MapCapacityError::Entries { name: name.to_owned(), value: value.to_owned() })?;
            capacities.0[map as usize] = entries;
        }
        Ok(capacities)
    }

    pub fn of(&self, map: KernelMap) -> u32 {
        self.0[map as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(settings: &[&str]) -> Result<MapCapacities, MapCapacityError> {
        MapCapacities::parse(&settings.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_setting_replaces_one_default() {
        let capacities = parse(&["sockets=131072", "traced_processes = 16"]).unwrap();
        assert_eq!(capacities.of(KernelMap::Sockets), 131_072);
        assert_eq!(capacities.of(KernelMap::TracedProcesses), 16);
        assert_eq!(capacities.of(KernelMap::ThreadStates), KernelMap::ThreadStates.capacity());
    }

    #[test]
    fn bad_settings_say_what_is_accepted() {
        assert_eq!(parse(&["sockets"]), Err(MapCapacityError::Form("sockets".into())));
        let unknown = parse(&["socket=5"]).unwrap_err().to_string();
        assert!(unknown.contains("no kernel map is called `socket`") && unknown.contains("sockets, thread_states"));
        for value in ["0", "-1", "lots", "99999999"] {
            let error = parse(&[&format!("sockets={value}")]).unwrap_err().to_string();
            assert!(error.contains("a number from 1 to 4194304"), "{error}");
        }
    }
}
