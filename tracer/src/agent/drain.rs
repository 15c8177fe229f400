//! The ring-buffer drainer: a thread of its own that only copies kernel
//! records into batches for the session, so the kernel's ring buffer keeps
//! emptying while the session parses, builds and exports spans.
//!
//! The kernel wakes the drainer for a large backlog or an urgent record;
//! otherwise it collects every [`COLLECT_INTERVAL`]. Batches wait for the
//! session in a queue bounded in bytes ([`BACKLOG_BYTES`]); a record that
//! finds the queue full is dropped and counted (`events_dropped`), so a
//! session that falls behind costs memory up to a limit, never the ring
//! buffer's records of every other process. [`Drainer::drain_now`] lets the
//! session take everything the kernel has written up to now (before it
//! handles a process's exit, so that process's last records come first).

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::sync::mpsc;

/// How often records are collected when the kernel did not wake the
/// drainer. Spans appear at most this late (their timings come from the
/// kernel's clock, unaffected).
const COLLECT_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes of records waiting for the session before records are dropped.
pub const BACKLOG_BYTES: usize = 64 << 20;

/// Records copied out of the ring buffer, in the kernel's order.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn push(&mut self, record: &[u8]) {
        self.bytes.extend_from_slice(record);
        self.ends.push(self.bytes.len());
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| &self.bytes[start..end])
    }
}

/// What the drainer and the session share.
struct Shared {
    ring: Mutex<RingBuf<MapData>>,
    queue: mpsc::UnboundedSender<Batch>,
    /// Bytes of batches sent and not yet taken by the session.
    backlog: AtomicUsize,
    dropped: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// Copies every waiting record into one batch and queues it. Holding the
    /// ring's lock while queueing keeps batches in the kernel's order.
    fn drain(&self) {
        let Ok(mut ring) = self.ring.lock() else { return };
        let mut batch = Batch::default();
        let room = BACKLOG_BYTES.saturating_sub(self.backlog.load(Ordering::Acquire));
        let mut dropped = 0u64;
        while let Some(record) = ring.next() {
            if batch.len_bytes() + record.len() > room {
                dropped += 1;
            } else {
                batch.push(&record);
            }
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if !batch.ends.is_empty() {
            self.backlog.fetch_add(batch.len_bytes(), Ordering::AcqRel);
            // A closed queue means the session is over: nothing to keep.
            let _ = self.queue.send(batch);
        }
    }
}

/// The drainer thread and the session's end of its queue.
pub struct Drainer {
    shared: Arc<Shared>,
    batches: mpsc::UnboundedReceiver<Batch>,
    thread: Option<JoinHandle<()>>,
}

impl Drainer {
    /// Starts draining `ring` on a thread named `pytrace-drain`.
    pub fn start(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        let (queue, batches) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            ring: Mutex::new(ring),
            queue,
            backlog: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let fd = shared.ring.lock().map_err(|_| std::io::Error::other("ring lock poisoned"))?.as_fd().as_raw_fd();
        let worker = shared.clone();
        let thread = std::thread::Builder::new().name("pytrace-drain".into()).spawn(move || {
            while !worker.stop.load(Ordering::Acquire) {
                wait_readable(fd, COLLECT_INTERVAL);
                worker.drain();
            }
        })?;
        Ok(Self { shared, batches, thread: Some(thread) })
    }

    /// The next batch, when one is queued.
    pub async fn next(&mut self) -> Option<Batch> {
        let batch = self.batches.recv().await?;
        self.taken(&batch);
        Some(batch)
    }

    /// Every record the kernel has written until now, in order (queued
    /// batches first).
    pub fn drain_now(&mut self) -> Vec<Batch> {
        self.shared.drain();
        let mut batches = Vec::new();
        while let Ok(batch) = self.batches.try_recv() {
            self.taken(&batch);
            batches.push(batch);
        }
        batches
    }

    fn taken(&self, batch: &Batch) {
        self.shared.backlog.fetch_sub(batch.len_bytes(), Ordering::AcqRel);
    }

    /// Records dropped because the backlog was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Bytes waiting for the session now.
    pub fn backlog_bytes(&self) -> usize {
        self.shared.backlog.load(Ordering::Relaxed)
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `fd` is readable or `timeout` passes (an error or a signal
/// counts as a timeout: the caller drains either way). The ring buffer,
/// and so its fd, outlives the thread, which is joined on drop.
fn wait_readable(fd: i32, timeout: Duration) {
    crate::sys::wait_readable(fd, timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_its_records_back_in_order() {
        let mut batch = Batch::default();
        for record in [&b"one"[..], b"", b"three"] {
            batch.push(record);
        }
        let records: Vec<&[u8]> = batch.records().collect();
        assert_eq!(records, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(batch.len_bytes(), 8);
    }
}
