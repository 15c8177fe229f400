//! Everything pytrace learns about a target process before and while it
//! traces it: `/proc` facts, the CPython it runs, and its TLS library.

pub mod container;
pub mod elf;
pub mod maps;
pub mod process;
pub mod selection;
pub mod sockets;
pub mod threads;
pub mod tls;
pub mod x86;

pub use process::{TargetError, TargetProcess};
