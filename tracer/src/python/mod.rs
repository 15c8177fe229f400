//! Python context from a traced CPython process: its memory layout
//! (`layout`, from `debug_offsets` on 3.13+), reading its memory (`memory`), and turning captured frames into
//! function names, files and lines (`code`, `symbolize`), shared between
//! requests from the same call site (`stacks`); which functions
//! `--trace-function` chose (`patterns`) and where its probes go (`call_probes`).

pub mod call_probes;
pub mod code;
pub mod debug_offsets;
pub mod discover;
pub mod layout;
pub mod memory;
pub mod patterns;
pub mod stacks;
pub mod symbolize;
