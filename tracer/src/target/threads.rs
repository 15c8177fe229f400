//! Thread names for `thread.name`, read once per thread from
//! `/proc/PID/task/TID/comm` and cached.
//!
//! CPython before 3.14 does not name its threads in the OS, so every thread
//! shows the process's own name there; such a name says nothing and is left
//! out. The main thread is called `MainThread`, as `threading` calls it.

use std::collections::HashMap;
use std::sync::Arc;

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
    let ids: Vec<u32> =
        status.lines().find_map(|l| l.strip_prefix("NSpid:"))?.split_whitespace().filter_map(|id| id.parse().ok()).collect();
    Some((*ids.last()?, *ids.first()?))
}

#[derive(Default)]
pub struct ThreadNames {
    names: HashMap<(u32, u32), Option<Arc<str>>>,
}

/// Threads remembered before the cache starts over.
const MAX_THREADS: usize = 65_536;

impl ThreadNames {
    pub fn name(&mut self, pid: u32, tid: u32) -> Option<Arc<str>> {
        if self.names.len() > MAX_THREADS {
            self.names.clear();
        }
        self.names
            .entry((pid, tid))
            .or_insert_with(|| {
                let comm = |task: u32| std::fs::read_to_string(format!("/proc/{pid}/task/{task}/comm")).ok();
                meaningful_name(pid, tid, comm(tid).as_deref(), comm(pid).as_deref()).map(Arc::from)
            })
            .clone()
    }

    pub fn remove_process(&mut self, pid: u32) {
        self.names.retain(|(p, _), _| *p != pid);
    }
}

/// The name worth reporting for thread `tid` of process `pid`, given its
/// OS name and the main thread's.
fn meaningful_name(pid: u32, tid: u32, name: Option<&str>, main_name: Option<&str>) -> Option<String> {
    if tid == pid {
        return Some("MainThread".to_owned());
    }
    let name = name?.trim_end_matches('\n');
    (!name.is_empty() && Some(name) != main_name.map(|m| m.trim_end_matches('\n'))).then(|| name.to_owned())
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
    fn reports_names_that_say_something() {
        assert_eq!(meaningful_name(10, 10, Some("python3\n"), Some("python3\n")).as_deref(), Some("MainThread"));
        assert_eq!(meaningful_name(10, 11, Some("python3\n"), Some("python3\n")), None);
        assert_eq!(meaningful_name(10, 12, Some("worker-1\n"), Some("python3\n")).as_deref(), Some("worker-1"));
        assert_eq!(meaningful_name(10, 13, None, Some("python3\n")), None, "the thread is gone");
    }

    #[test]
    fn reads_this_process_threads() {
        let pid = std::process::id();
        let mut names = ThreadNames::default();
        assert_eq!(names.name(pid, pid).as_deref(), Some("MainThread"));
        let (sender, receiver) = std::sync::mpsc::channel();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("pytrace-test".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                sender.send(unsafe { libc::gettid() } as u32).unwrap();
                wait.recv().unwrap();
            })
            .unwrap();
        let tid = receiver.recv().unwrap();
        let name = names.name(pid, tid);
        done.send(()).unwrap();
        worker.join().unwrap();
        assert_eq!(name.as_deref(), Some("pytrace-test"));
    }
}
