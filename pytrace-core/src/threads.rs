//! Thread names for `thread.name`: the OS name (`comm`) the kernel took
//! with the thread's stack — exact at the time of the request, even when
//! the thread is gone by the time the event is read.
//!
//! CPython before 3.14 does not name its threads in the OS, so every thread
//! shows the process's own name there; such a name says nothing and is left
//! out. 3.14 and later name them after `threading`'s names (cut to 15
//! bytes). The main thread is called `MainThread`, as `threading` calls it.

use std::collections::HashMap;
use std::sync::Arc;

use tracer_common::THREAD_NAME_LEN;

/// A thread's OS name, and the name reported for it.
type ReportedName = ([u8; THREAD_NAME_LEN], Option<Arc<str>>);

#[derive(Default)]
pub struct ThreadNames {
    /// Each thread's (pid, tid) last OS name and what is reported for it.
    names: HashMap<(u32, u32), ReportedName>,
    /// Each process's main-thread name, asked once.
    main_names: HashMap<u32, Option<String>>,
}

/// Threads remembered before the cache starts over.
const MAX_THREADS: usize = 65_536;

impl ThreadNames {
    /// The name to report for thread `tid` of `pid`, whose OS name was
    /// `comm`; `main_name` gives the process's main-thread name (asked once).
    pub fn name(
        &mut self,
        pid: u32,
        tid: u32,
        comm: &[u8; THREAD_NAME_LEN],
        main_name: impl FnOnce(u32) -> Option<String>,
    ) -> Option<Arc<str>> {
        if self.names.len() > MAX_THREADS {
            self.names.clear();
            self.main_names.clear();
        }
        if let Some((known, name)) = self.names.get(&(pid, tid))
            && known == comm
        {
            return name.clone();
        }
        let main = self.main_names.entry(pid).or_insert_with(|| main_name(pid));
        let text = String::from_utf8_lossy(comm.split(|b| *b == 0).next().unwrap_or_default());
        let name: Option<Arc<str>> = meaningful_name(pid, tid, Some(&text), main.as_deref()).map(Arc::from);
        self.names.insert((pid, tid), (*comm, name.clone()));
        name
    }

    pub fn remove_process(&mut self, pid: u32) {
        self.names.retain(|(p, _), _| *p != pid);
        self.main_names.remove(&pid);
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
    fn reports_names_that_say_something() {
        assert_eq!(meaningful_name(10, 10, Some("python3\n"), Some("python3\n")).as_deref(), Some("MainThread"));
        assert_eq!(meaningful_name(10, 11, Some("python3\n"), Some("python3\n")), None);
        assert_eq!(meaningful_name(10, 12, Some("worker-1\n"), Some("python3\n")).as_deref(), Some("worker-1"));
        assert_eq!(meaningful_name(10, 13, None, Some("python3\n")), None, "the thread is gone");
    }

    #[test]
    fn names_threads_from_the_name_taken_with_the_stack() {
        let comm = |name: &str| {
            let mut bytes = [0; THREAD_NAME_LEN];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            bytes
        };
        let main = |_| Some("python3\n".to_owned());
        let mut names = ThreadNames::default();
        assert_eq!(names.name(7, 7, &comm("python3"), main).as_deref(), Some("MainThread"));
        // A thread long gone: its name came with the event.
        assert_eq!(names.name(7, 9, &comm("llm-worker"), main).as_deref(), Some("llm-worker"));
        assert_eq!(names.name(7, 9, &comm("renamed"), main).as_deref(), Some("renamed"));
        assert_eq!(names.name(7, 8, &comm("python3"), main), None, "the process's own name says nothing");
    }
}
