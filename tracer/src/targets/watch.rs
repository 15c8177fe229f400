//! Watch: a traced process as the session keeps it, and when pytrace looks
//! at it again. The kernel reports forks, execs and executable mappings
//! (`Lifecycle`, handled by [`super::Targets::follow`]); every rescan
//! (100 ms) then reads a process's memory map again only when it is due —
//! reading every process's map on every look was most of `pytrace node`'s
//! CPU time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::inspect::TargetProcess;
use super::inspect::tls::FileId;
use super::select::rules::ProcessFacts;
use crate::kubernetes::PodResource;

/// A traced process's memory map is read again when the kernel reports it
/// mapped a file executable (`sys_enter_mmap`), and at the latest after
/// this long, in case a library came by a way the kernel does not report.
const MAPS_REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// During its first second — loading its libraries, as an interpreter does
/// on its first imports — a process's map is read at every look (100 ms), as the
/// kernel's reports alone proved to arrive too late now and then (a
/// container's first HTTPS call was missed).
const YOUNG: Duration = Duration::from_secs(1);

/// Tries to set up Python context this many times (every rescan, 100 ms)
/// for a process whose interpreter is starting, before saying why not.
pub const CONTEXT_ATTEMPTS: u32 = 50;

/// A process being traced and what pytrace knows of it.
pub struct Traced {
    pub process: TargetProcess,
    /// The files of its map already examined for a TLS library.
    pub known_files: HashSet<FileId>,
    /// `pytrace run`: Python context not set up yet — the interpreter may
    /// still be starting — and how many times it was tried.
    pub context_pending: Option<u32>,
    /// What its pod added to its resource, once known.
    pub pod: Option<PodResource>,
    /// What a selection looks at (without its pod), read once: it holds
    /// until the process execs, which makes it a new `Traced`.
    pub facts: Option<ProcessFacts>,
    /// It mapped a file executable since its memory map was last read.
    maps_stale: bool,
    /// When its memory map was last read.
    maps_read: Instant,
    /// When pytrace began tracing it.
    traced_since: Instant,
}

impl Traced {
    /// A process inspected before the kernel traced it: a library mapped in
    /// between raised no event, so its map is read again at the next look.
    pub fn new(process: TargetProcess) -> Self {
        Self {
            process,
            known_files: HashSet::new(),
            context_pending: None,
            pod: None,
            facts: None,
            maps_stale: true,
            maps_read: Instant::now(),
            traced_since: Instant::now(),
        }
    }

    /// The kernel reported an executable mapping (or its map could not be
    /// read): look again at the next rescan.
    pub fn map_changed(&mut self) {
        self.maps_stale = true;
    }

    /// Whether its memory map is due to be read at this rescan; when it is,
    /// the schedule starts over.
    pub fn map_due(&mut self) -> bool {
        let due =
            self.maps_stale || self.traced_since.elapsed() < YOUNG || self.maps_read.elapsed() >= MAPS_REREAD_INTERVAL;
        if due {
            (self.maps_stale, self.maps_read) = (false, Instant::now());
        }
        due
    }

    /// One more try at Python context: `Some(attempts)` while tries are
    /// left, `None` once they are used up.
    pub fn next_context_attempt(&self) -> Option<u32> {
        self.context_pending.filter(|&attempts| attempts < CONTEXT_ATTEMPTS).map(|attempts| attempts + 1)
    }

    /// Tries at Python context are used up.
    pub fn context_attempts_exhausted(&self) -> bool {
        self.context_pending.is_some_and(|attempts| attempts >= CONTEXT_ATTEMPTS)
    }
}
