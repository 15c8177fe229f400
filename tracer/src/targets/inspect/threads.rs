//! A process's threads as `/proc` shows them: their ids on the host, and
//! the main thread's OS name (what the engine's thread naming compares
//! others with).

use std::collections::HashMap;

/// `pid`'s threads, from the id each has in the process's own PID
/// namespace (what CPython records) to its id on the host (the `NSpid`
/// line of `/proc/PID/task/TID/status` lists both, outermost first).
pub fn host_thread_ids(pid: u32) -> HashMap<u32, u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            namespace_ids(&status)
        })
        .collect()
}

/// (innermost namespace's id, host id) from a `status` file's `NSpid` line.
fn namespace_ids(status: &str) -> Option<(u32, u32)> {
    let ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .filter_map(|id| id.parse().ok())
        .collect();
    Some((*ids.last()?, *ids.first()?))
}

/// The OS name (`comm`) of `pid`'s main thread.
pub fn main_thread_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/comm")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_namespace_thread_ids_to_the_host() {
        assert_eq!(namespace_ids("Name:\tpython3.14\nNSpid:\t27266\t1\n"), Some((1, 27266)));
        assert_eq!(namespace_ids("NSpid:\t500\n"), Some((500, 500)));
        let me = std::process::id();
        assert_eq!(host_thread_ids(me).get(&me), Some(&me), "same namespace: the same ids");
    }

    #[test]
    fn reads_the_main_thread_name() {
        let name = main_thread_name(std::process::id()).expect("this process's name");
        assert!(!name.trim().is_empty());
    }
}
