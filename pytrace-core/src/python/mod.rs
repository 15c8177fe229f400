//! Python context, from memory the agent lets it read: each CPython
//! version's layout (`layout`, from `debug_offsets` on 3.13+), reading
//! memory through a trait (`memory`), turning captured frames into function
//! names, files and lines (`code`, `symbolize`, into `frame`s) shared between requests from
//! the same call site (`stacks`), which asyncio task or thread a stack runs
//! in (`asyncio`), and the functions `--trace-function` chose (`patterns`).

pub mod asyncio;
pub mod code;
pub mod debug_offsets;
pub mod frame;
pub mod layout;
pub mod memory;
pub mod patterns;
pub mod stacks;
pub mod symbolize;
