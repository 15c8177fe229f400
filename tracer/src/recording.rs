//! Recorded sessions: the raw ring-buffer records of a tracing session, in
//! the order they arrived, so the user-space pipeline can be replayed and
//! measured without the kernel (`pytrace replay`, `cargo xtask bench`).
//!
//! The format is a magic line, then each record as its length (u32,
//! little-endian) followed by its bytes. A recording holds the captured
//! plaintext — secrets included — so it is created readable by root only.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What every recording starts with.
pub const MAGIC: &[u8] = b"pytrace recording 1\n";

/// Appends records to a recording file.
pub struct Recorder {
    out: BufWriter<File>,
}

impl Recorder {
    pub fn create(path: &Path) -> io::Result<Self> {
        // A new file only: never through a symbolic link, never over a file
        // (the recording holds plaintext, secrets included).
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(crate::sys::O_NOFOLLOW)
            .mode(0o600)
            .open(path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)?;
        Ok(Self { out })
    }

    pub fn record(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("record longer than 4 GiB"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(bytes)
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordingError {
    #[error("not a pytrace recording (it does not start with {:?})", String::from_utf8_lossy(MAGIC).trim_end())]
    NotARecording,
    #[error("the recording is cut short at byte {0}")]
    Truncated(usize),
}

/// The records of a recording, in order.
pub fn parse(data: &[u8]) -> Result<Vec<&[u8]>, RecordingError> {
    let mut rest = data.strip_prefix(MAGIC).ok_or(RecordingError::NotARecording)?;
    let mut records = Vec::new();
    while !rest.is_empty() {
        let at = data.len() - rest.len();
        let (len, tail) = rest.split_first_chunk::<4>().ok_or(RecordingError::Truncated(at))?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(RecordingError::Truncated(at));
        }
        let (record, tail) = tail.split_at(len);
        records.push(record);
        rest = tail;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order() {
        let path = std::env::temp_dir().join(format!("pytrace-recording-{}", std::process::id()));
        let mut recorder = Recorder::create(&path).expect("create");
        for record in [&b"first"[..], b"", b"third record"] {
            recorder.record(record).expect("record");
        }
        recorder.finish().expect("finish");
        let data = std::fs::read(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(parse(&data), Ok(vec![&b"first"[..], b"", b"third record"]));
    }

    #[test]
    fn rejects_other_files_and_cut_recordings() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(RecordingError::NotARecording));
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&10u32.to_le_bytes());
        data.extend_from_slice(b"short");
        assert_eq!(parse(&data), Err(RecordingError::Truncated(MAGIC.len())));
        data.truncate(MAGIC.len() + 2);
        assert_eq!(parse(&data), Err(RecordingError::Truncated(MAGIC.len())));
    }
}
