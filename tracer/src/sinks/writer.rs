//! A stream of lines for the terminal or a file: written in a buffer and
//! pushed out once per batch; when its reader goes away (`pytrace … |
//! head`), it stops quietly instead of failing the session.

use std::io::{self, Write};

pub struct LineWriter {
    out: Option<Box<dyn Write + Send>>,
}

impl LineWriter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out: Some(out) }
    }

    /// Writes with `write`; a failure closes the stream for good.
    pub fn write_with(&mut self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if let Some(out) = &mut self.out
            && write(out.as_mut()).is_err()
        {
            self.out = None;
        }
    }

    pub fn flush(&mut self) {
        self.write_with(|out| out.flush());
    }

    /// The last lines, whose failure is the caller's to report (a closed
    /// stream is not a failure: nothing is written).
    pub fn finish_with(&mut self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let Some(out) = &mut self.out else { return Ok(()) };
        write(out.as_mut())?;
        out.flush()
    }
}
