//! Every message pytrace shows its user goes through here (ripgrep's
//! `messages.rs` is the model): one stream (stderr — stdout carries spans),
//! one prefix, and three levels. [`notice!`] says what happens ("PID 42
//! runs CPython 3.12"); [`warning!`] says something is missing or lost and
//! what to do about it; [`Level::Error`] is the one line a failed command
//! ends with (`main.rs`). Diagnostics for pytrace's developers go through `tracing` instead
//! (`-v`, `PYTRACE_LOG`), never through here.

use std::fmt;
use std::io::Write as _;

/// How a message is prefixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Error,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Self::Notice => "pytrace: ",
            Self::Warning => "pytrace: warning: ",
            Self::Error => "pytrace: error: ",
        }
    }
}

/// Writes one message, whole, on stderr. A closed stderr is not worth
/// failing a session for: the message is dropped.
pub fn emit(level: Level, message: fmt::Arguments<'_>) {
    let line = format!("{}{message}\n", level.prefix());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// What happens: `notice!("PID {pid} exited")`.
macro_rules! notice {
    ($($arg:tt)*) => { $crate::notices::emit($crate::notices::Level::Notice, format_args!($($arg)*)) };
}

/// Something is missing, lost or refused, and the user should know.
macro_rules! warning {
    ($($arg:tt)*) => { $crate::notices::emit($crate::notices::Level::Warning, format_args!($($arg)*)) };
}

pub(crate) use {notice, warning};

/// Each of `warnings` (from the engine or the kernel maps), as a warning.
pub fn warnings(warnings: &[String]) {
    for text in warnings {
        warning!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_have_distinct_prefixes() {
        let prefixes = [Level::Notice, Level::Warning, Level::Error].map(Level::prefix);
        assert_eq!(prefixes, ["pytrace: ", "pytrace: warning: ", "pytrace: error: "]);
    }
}
