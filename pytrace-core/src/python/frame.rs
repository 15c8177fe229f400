//! One resolved Python frame: the function, its file and line, and the
//! addresses that tell its code object and its call apart.

use std::sync::Arc;

/// One resolved Python frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub qualname: Arc<str>,
    pub file: Arc<str>,
    pub line: Option<u32>,
    /// The code object's address in the process.
    pub code: u64,
    /// The frame's address: which call this is.
    pub frame: u64,
}
