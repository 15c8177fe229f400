//! pytrace's agent: everything around the engine (`pytrace_core`) that
//! touches the system — finding target processes, loading and attaching the
//! kernel programs, draining their ring buffer, and sending spans out.
//!
//! Data flows `discovery` (what a process maps and runs) → `probes` (kernel
//! programs) → `session` (the loop that drains the ring buffer) →
//! `pipeline` (records into `pytrace_core::engine`, spans out) → `output`,
//! `otlp`, `metrics`, `report`; `commands` run a session for each
//! subcommand, `kubernetes` names the pods. `clock`, `ids` and
//! `discovery::memory` answer what the engine may not ask the system itself.

/// `pytrace --version`: the release and the toolchain that built its kernel programs.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (kernel programs: ", env!("PYTRACE_EBPF_TOOLCHAIN"), ")");

pub mod agent;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod ids;
pub mod kubernetes;
pub mod metrics;
pub mod notices;
pub mod otlp;
pub mod output;
pub mod pipeline;
pub mod privileges;
pub mod probes;
pub mod recording;
pub mod report;
pub mod stats;
pub mod targets;
