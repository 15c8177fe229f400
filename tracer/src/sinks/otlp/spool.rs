//! The on-disk spool: span batches the collector could not take yet, one
//! file per batch in the spool directory, up to a size cap. When a new
//! batch does not fit, the oldest batches are dropped and counted. What is
//! left when pytrace exits is sent by the next run.
//!
//! A batch file is `PYTSPOOL`, the span count (4 bytes, little-endian), then
//! the gzip-compressed `ExportTraceServiceRequest` — gzip's own checksum
//! and length catch a damaged payload when it is read. The cap counts each
//! file by the 4 KiB blocks it fills. A batch is written
//! to a `.tmp` file, synced, then renamed: a crash leaves the batch whole or
//! absent, never half. Files are named by sequence number, so the oldest
//! comes first. A file that is not a batch is set aside (renamed
//! `….damaged`, with a message); a `lock` file held with `flock` keeps two
//! pytraces off one spool. (An embedded database was used before; fuzzing
//! found files that made it panic, even twice over, which aborts.)

use crate::notices::warning;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// What every batch file starts with.
const MAGIC: &[u8; 8] = b"PYTSPOOL";
/// Magic and span count.
const HEADER_LEN: u64 = 12;
const BATCH_SUFFIX: &str = ".batch";
/// What a file takes on disk at least: the cap counts files by the blocks
/// they fill, so many small batches cannot take more disk than it allows.
const BLOCK: u64 = 4096;
const PARTIAL_SUFFIX: &str = ".tmp";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot create the spool directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "the spool {path} is in use by another pytrace; give this one its own with --spool-dir (each agent needs one)"
    )]
    InUse { path: PathBuf },
}

/// One spooled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub key: u64,
    pub spans: u32,
    pub payload: Vec<u8>,
}

/// What the spool knows of a batch file without reading its payload.
#[derive(Clone, Copy)]
struct Entry {
    /// The file's length.
    len: u64,
    spans: u32,
}

impl Entry {
    /// What the file counts against the cap.
    fn footprint(self) -> u64 {
        self.len.next_multiple_of(BLOCK)
    }
}

pub struct Spool {
    dir: PathBuf,
    /// Held (`flock`) while this spool is open.
    _lock: File,
    cap_bytes: u64,
    batches: BTreeMap<u64, Entry>,
    bytes: u64,
    spans: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping at most `cap_bytes` of
    /// batches. The directory is private to root (0700) and its files too
    /// (0600): spans hold URLs and, with `--capture-content`, prompts.
    pub fn open(dir: &Path, cap_bytes: u64) -> Result<Self, SpoolError> {
        let directory = |source| SpoolError::Directory { path: dir.to_owned(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(directory)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(directory)?;
        let lock = private_file(&dir.join("lock"), false).map_err(directory)?;
        if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
            return Err(SpoolError::InUse { path: dir.to_owned() });
        }
        let mut spool =
            Self { dir: dir.to_owned(), _lock: lock, cap_bytes, batches: BTreeMap::new(), bytes: 0, spans: 0 };
        for file in std::fs::read_dir(dir).map_err(directory)?.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(PARTIAL_SUFFIX) {
                // A batch whose writing a crash interrupted: never complete.
                let _ = std::fs::remove_file(file.path());
            } else if let Some(key) = name.strip_suffix(BATCH_SUFFIX).and_then(|k| k.parse().ok()) {
                match read_header(&file.path()) {
                    Some(entry) => spool.insert(key, entry),
                    None => spool.set_aside(&file.path(), "not a spooled batch"),
                }
            }
        }
        Ok(spool)
    }

    fn insert(&mut self, key: u64, entry: Entry) {
        self.bytes += entry.footprint();
        self.spans += u64::from(entry.spans);
        self.batches.insert(key, entry);
    }

    fn path_of(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key:020}{BATCH_SUFFIX}"))
    }

    fn io_error(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io { path: self.dir.clone(), source }
    }

    /// Keeps a damaged file for whoever wants to look, out of the spool's way.
    fn set_aside(&self, path: &Path, why: &str) {
        let aside = path.with_extension("damaged");
        warning!("{} cannot be read ({why}); it is set aside as {}", path.display(), aside.display());
        let _ = std::fs::rename(path, aside);
    }

    /// Appends a batch; returns how many spans of older batches were
    /// dropped to make room (the batch itself is dropped when it alone
    /// exceeds the cap, and counted).
    pub fn push(&mut self, spans: u32, payload: &[u8]) -> Result<u64, SpoolError> {
        let entry = Entry { len: HEADER_LEN + payload.len() as u64, spans };
        let size = entry.footprint();
        if size > self.cap_bytes {
            return Ok(u64::from(spans));
        }
        let mut dropped = 0;
        while self.bytes + size > self.cap_bytes {
            let Some((&key, _)) = self.batches.first_key_value() else { break };
            dropped += u64::from(self.forget(key)?.spans);
        }
        let key = self.batches.last_key_value().map_or(0, |(&key, _)| key + 1);
        let path = self.path_of(key);
        let partial = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = private_file(&partial, true)?;
            file.write_all(MAGIC)?;
            file.write_all(&spans.to_le_bytes())?;
            file.write_all(payload)?;
            file.sync_data()?;
            std::fs::rename(&partial, &path)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&partial);
            self.io_error(source)
        })?;
        self.insert(key, entry);
        Ok(dropped)
    }

    /// The oldest batch, if any (a file that is no longer a batch is set
    /// aside and the next one read).
    pub fn oldest(&mut self) -> Result<Option<Batch>, SpoolError> {
        while let Some((&key, &entry)) = self.batches.first_key_value() {
            let path = self.path_of(key);
            let mut bytes = Vec::new();
            match File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)) {
                Ok(_) => {}
                // Deleted by hand: gone, not a reason to stop sending the others.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    self.remove_entry(key);
                    continue;
                }
                Err(error) => return Err(self.io_error(error)),
            }
            if bytes.len() as u64 == entry.len && bytes.starts_with(MAGIC) {
                let payload = bytes.split_off(HEADER_LEN as usize);
                return Ok(Some(Batch { key, spans: entry.spans, payload }));
            }
            self.set_aside(&path, "changed since it was spooled");
            self.remove_entry(key);
        }
        Ok(None)
    }

    /// Forgets a batch that was delivered.
    pub fn remove(&mut self, key: u64) -> Result<(), SpoolError> {
        self.forget(key).map(drop)
    }

    fn forget(&mut self, key: u64) -> Result<Entry, SpoolError> {
        match std::fs::remove_file(self.path_of(key)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(self.io_error(error)),
            _ => {}
        }
        Ok(self.remove_entry(key).unwrap_or(Entry { len: 0, spans: 0 }))
    }

    fn remove_entry(&mut self, key: u64) -> Option<Entry> {
        let entry = self.batches.remove(&key)?;
        self.bytes -= entry.footprint();
        self.spans -= u64::from(entry.spans);
        Some(entry)
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Spans waiting in the spool.
    pub fn spans(&self) -> u64 {
        self.spans
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// A file only root can read, created (`new`: it must not exist) or opened;
/// never through a symbolic link.
fn private_file(path: &Path, new: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600).custom_flags(crate::sys::O_NOFOLLOW);
    if new {
        options.create_new(true);
    } else {
        options.create(true);
    }
    options.open(path)
}

/// The size and span count of a batch file, when it is one.
fn read_header(path: &Path) -> Option<Entry> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut header = [0; HEADER_LEN as usize];
    file.read_exact(&mut header).ok()?;
    let (magic, spans) = header.split_at(MAGIC.len());
    (magic == MAGIC).then(|| Entry { len, spans: u32::from_le_bytes(spans.try_into().unwrap_or_default()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pytrace-spool-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn batches_come_back_in_order_and_survive_a_reopen() {
        let dir = scratch("order");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert!(spool.oldest().unwrap().is_none());
        spool.push(3, b"first").unwrap();
        spool.push(2, b"second").unwrap();
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(spool.spans(), 5);
        let first = spool.oldest().unwrap().unwrap();
        assert_eq!((first.spans, first.payload.as_slice()), (3, b"first".as_slice()));
        spool.remove(first.key).unwrap();
        spool.push(1, b"third").unwrap();
        assert_eq!(spool.oldest().unwrap().unwrap().payload, b"second");
        assert_eq!(spool.spans(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_spool_is_private_and_one_pytrace_has_it() {
        let dir = scratch("private");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.push(1, b"spans").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let batch = dir.join(names(&dir).into_iter().find(|n| n.ends_with(".batch")).unwrap());
        assert_eq!(mode(&batch), 0o600);
        // A second pytrace on the same spool is told so.
        assert!(matches!(Spool::open(&dir, 1 << 20), Err(SpoolError::InUse { .. })));
        drop(spool);
        assert!(Spool::open(&dir, 1 << 20).is_ok(), "free again once the first is gone");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn damaged_and_half_written_files_are_set_aside_or_removed() {
        let dir = scratch("damaged");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.push(4, b"kept").unwrap();
        spool.push(5, b"changed later").unwrap();
        drop(spool);
        std::fs::write(dir.join("00000000000000000007.batch"), b"not a batch at all").unwrap();
        std::fs::write(dir.join("00000000000000000008.tmp"), b"PYTSPOOL\x01\0\0\0half").unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(spool.spans(), 9, "the two real batches count, the others not");
        assert!(names(&dir).contains(&"00000000000000000007.damaged".to_owned()), "{:?}", names(&dir));
        assert!(!names(&dir).iter().any(|n| n.ends_with(".tmp")), "{:?}", names(&dir));
        // A batch whose file changed after it was counted is set aside when read.
        std::fs::write(dir.join("00000000000000000000.batch"), b"PYTSPOOL\x04\0\0\0truncated!!").unwrap();
        let next = spool.oldest().unwrap().unwrap();
        assert_eq!((next.spans, next.payload.as_slice()), (5, b"changed later".as_slice()));
        assert_eq!(spool.spans(), 5);
        // One deleted by hand is skipped, not an error that would hold up the rest.
        spool.push(6, b"after").unwrap();
        std::fs::remove_file(dir.join("00000000000000000001.batch")).unwrap();
        assert_eq!(spool.oldest().unwrap().unwrap().payload, b"after");
        assert_eq!(spool.spans(), 6);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_oldest_batches_make_room_and_are_counted() {
        let dir = scratch("cap");
        // Each small file counts as one 4 KiB block: three fit in 12 KiB.
        let mut spool = Spool::open(&dir, 3 * BLOCK).unwrap();
        for spans in 1..=3 {
            assert_eq!(spool.push(spans, &[0; 88]).unwrap(), 0);
        }
        assert_eq!(spool.push(10, &[0; 88]).unwrap(), 1, "the first batch (1 span) made room");
        assert_eq!((spool.batches.len(), spool.spans()), (3, 2 + 3 + 10));
        assert_eq!(names(&dir).iter().filter(|n| n.ends_with(".batch")).count(), 3);
        assert_eq!(spool.push(4, &[0; 5000]).unwrap(), 2 + 3, "a two-block batch made room for itself");
        assert_eq!(spool.push(7, &[0; 13_000]).unwrap(), 7, "a batch larger than the cap is dropped itself");
        let _ = std::fs::remove_dir_all(dir);
    }
}
