//! Everything pytrace learns about a target process before and while it
//! traces it: `/proc` facts, its memory, the CPython it runs (its layout,
//! `python_context`; where per-call probes go, `call_probes`), and its TLS
//! library.

pub mod call_probes;
pub mod container;
pub mod elf;
pub mod facts;
pub mod mapped_files;
pub mod memory;
pub mod process;
pub mod python_context;
pub mod sockets;
pub mod threads;
pub mod tls;
pub mod x86;

pub use process::{TargetError, TargetProcess};
