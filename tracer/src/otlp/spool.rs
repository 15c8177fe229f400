//! The on-disk spool: span batches the collector could not take yet, kept
//! in order in an embedded database (redb: transactional, crash-safe), up to
//! a size cap. When a new batch does not fit, the oldest batches are dropped
//! and counted. What is left when pytrace exits is sent by the next run.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Spooled batches by sequence number: 4 bytes of span count, then the
/// gzip-compressed `ExportTraceServiceRequest`.
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("span_batches");

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot create the spool directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    #[error("spool {path}: {message}")]
    Database { path: PathBuf, message: String },
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

/// A spool's database and what it holds.
struct Loaded {
    db: Database,
    bytes: u64,
    spans: u64,
    next_key: u64,
}

/// Why a spool could not be opened.
enum Unreadable {
    /// Another pytrace holds it.
    InUse,
    /// Its file is corrupt: why.
    Damaged(String),
}

/// Opens (or creates) the database at `path` and counts what it holds.
/// redb panics on some corrupt files (found by fuzzing: an `unreachable!`
/// while reading the allocator state); such a panic is a damaged spool
/// too, caught here and kept off stderr.
fn load(path: &Path) -> Result<Loaded, Unreadable> {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| load_unguarded(path));
    std::panic::set_hook(report);
    outcome.unwrap_or_else(|_| Err(Unreadable::Damaged("its file is corrupt".into())))
}

fn load_unguarded(path: &Path) -> Result<Loaded, Unreadable> {
    let db = Database::create(path).map_err(|error| match error {
        redb::DatabaseError::DatabaseAlreadyOpen => Unreadable::InUse,
        damaged => Unreadable::Damaged(damaged.to_string()),
    })?;
    let damaged = |e: &dyn std::fmt::Display| Unreadable::Damaged(e.to_string());
    let (mut bytes, mut spans, mut next_key) = (0, 0, 0);
    let write = db.begin_write().map_err(|e| damaged(&e))?;
    {
        let table = write.open_table(BATCHES).map_err(|e| damaged(&e))?;
        for entry in table.iter().map_err(|e| damaged(&e))? {
            let (key, value) = entry.map_err(|e| damaged(&e))?;
            bytes += value.value().len() as u64;
            spans += u64::from(span_count(value.value()));
            next_key = key.value() + 1;
        }
    }
    write.commit().map_err(|e| damaged(&e))?;
    Ok(Loaded { db, bytes, spans, next_key })
}

pub struct Spool {
    db: Database,
    path: PathBuf,
    cap_bytes: u64,
    bytes: u64,
    spans: u64,
    next_key: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping at most `cap_bytes` of batches.
    /// The directory is private to root (0700) and the file too (0600): spans
    /// hold URLs and, with `--capture-content`, prompts. A spool that cannot
    /// be read is set aside (renamed, with a message) and a new one begun;
    /// one held by another pytrace is a clear error.
    pub fn open(dir: &Path, cap_bytes: u64) -> Result<Self, SpoolError> {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        let directory = |source| SpoolError::Directory { path: dir.to_owned(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(directory)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(directory)?;
        let path = dir.join("spans.redb");
        let loaded = match load(&path) {
            Ok(loaded) => loaded,
            Err(Unreadable::InUse) => return Err(SpoolError::InUse { path }),
            Err(Unreadable::Damaged(why)) => {
                let aside = dir.join(format!("spans.redb.damaged-{}", std::process::id()));
                eprintln!(
                    "pytrace: warning: the spool {} cannot be read ({why}); it is set aside as {} and a new one begun",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(&path, &aside).map_err(directory)?;
                load(&path).map_err(|unreadable| SpoolError::Database {
                    path: path.clone(),
                    message: match unreadable {
                        Unreadable::InUse => "in use".into(),
                        Unreadable::Damaged(why) => why,
                    },
                })?
            }
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(directory)?;
        let Loaded { db, bytes, spans, next_key } = loaded;
        Ok(Self { db, path, cap_bytes, bytes, spans, next_key })
    }

    fn error(&self, e: &dyn std::fmt::Display) -> SpoolError {
        SpoolError::Database { path: self.path.clone(), message: e.to_string() }
    }

    /// Appends a batch; returns how many spans of older batches were
    /// dropped to make room (the batch itself is dropped when it alone
    /// exceeds the cap, and counted).
    pub fn push(&mut self, spans: u32, payload: &[u8]) -> Result<u64, SpoolError> {
        let mut record = spans.to_le_bytes().to_vec();
        record.extend_from_slice(payload);
        let size = record.len() as u64;
        if size > self.cap_bytes {
            return Ok(u64::from(spans));
        }
        let mut dropped = 0;
        let write = self.db.begin_write().map_err(|e| self.error(&e))?;
        {
            let mut table = write.open_table(BATCHES).map_err(|e| self.error(&e))?;
            while self.bytes + size > self.cap_bytes {
                let Some((_, oldest)) = table.pop_first().map_err(|e| self.error(&e))? else { break };
                self.bytes -= oldest.value().len() as u64;
                let count = u64::from(span_count(oldest.value()));
                self.spans -= count;
                dropped += count;
            }
            table.insert(self.next_key, record.as_slice()).map_err(|e| self.error(&e))?;
        }
        write.commit().map_err(|e| self.error(&e))?;
        self.next_key += 1;
        self.bytes += size;
        self.spans += u64::from(spans);
        Ok(dropped)
    }

    /// The oldest batch, if any.
    pub fn oldest(&self) -> Result<Option<Batch>, SpoolError> {
        let read = self.db.begin_read().map_err(|e| self.error(&e))?;
        let table = read.open_table(BATCHES).map_err(|e| self.error(&e))?;
        let Some((key, value)) = table.first().map_err(|e| self.error(&e))? else { return Ok(None) };
        let record = value.value();
        Ok(Some(Batch {
            key: key.value(),
            spans: span_count(record),
            payload: record.get(4..).unwrap_or_default().to_vec(),
        }))
    }

    /// Forgets a batch that was delivered.
    pub fn remove(&mut self, key: u64) -> Result<(), SpoolError> {
        let write = self.db.begin_write().map_err(|e| self.error(&e))?;
        {
            let mut table = write.open_table(BATCHES).map_err(|e| self.error(&e))?;
            if let Some(removed) = table.remove(key).map_err(|e| self.error(&e))? {
                self.bytes -= removed.value().len() as u64;
                self.spans -= u64::from(span_count(removed.value()));
            }
        }
        write.commit().map_err(|e| self.error(&e))
    }

    pub fn is_empty(&self) -> bool {
        self.spans == 0 && self.bytes == 0
    }

    /// Spans waiting in the spool.
    pub fn spans(&self) -> u64 {
        self.spans
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    fn batches(&self) -> u64 {
        use redb::ReadableTableMetadata;
        let read = self.db.begin_read().unwrap();
        read.open_table(BATCHES).unwrap().len().unwrap()
    }
}

fn span_count(record: &[u8]) -> u32 {
    record.get(..4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pytrace-spool-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
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
    fn the_spool_is_private_and_a_damaged_one_is_set_aside() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("private");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.join("spans.redb"), b"not a database, whatever happened to it").unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.push(1, b"after").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("spans.redb")), 0o600);
        let set_aside = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("spans.redb.damaged-"));
        assert!(set_aside, "the damaged spool is kept aside, not deleted");
        // A second pytrace on the same spool is told so.
        assert!(matches!(Spool::open(&dir, 1 << 20), Err(SpoolError::InUse { .. })));
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Found by fuzzing (`spool`): this file makes redb itself panic
    /// (`unreachable!`) while opening it.
    #[test]
    fn a_spool_file_that_panics_the_database_is_set_aside_too() {
        let dir = scratch("panics");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("spans.redb"), include_bytes!("testdata/spool-that-panics-redb.redb")).unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(spool.spans(), 0, "a new spool was begun");
        spool.push(2, b"after").unwrap();
        assert_eq!(spool.oldest().unwrap().map(|b| b.spans), Some(2));
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_oldest_batches_make_room_and_are_counted() {
        let dir = scratch("cap");
        // Each record is 4 + 96 bytes: three fit in 300.
        let mut spool = Spool::open(&dir, 300).unwrap();
        for spans in 1..=3 {
            assert_eq!(spool.push(spans, &[0; 96]).unwrap(), 0);
        }
        assert_eq!(spool.push(10, &[0; 96]).unwrap(), 1, "the first batch (1 span) made room");
        assert_eq!((spool.batches(), spool.spans()), (3, 2 + 3 + 10));
        assert_eq!(spool.push(7, &[0; 400]).unwrap(), 7, "a batch larger than the cap is dropped itself");
        let _ = std::fs::remove_dir_all(dir);
    }
}
