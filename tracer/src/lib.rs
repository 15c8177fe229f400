//! pytrace's agent: everything around the engine (`pytrace_core`) that
//! touches the system — finding target processes, loading and attaching the
//! kernel programs, draining their ring buffer, and sending spans out.
//!
//! Data flows `targets` (which processes, found and probed in stages:
//! source → watch → select → inspect → attach) → `probes` (kernel programs)
//! → `agent` (the session loop that drains the ring buffer) → `pipeline`
//! (records into `pytrace_core::engine`, spans out) → `sinks` (pretty,
//! JSON, OTLP, Prometheus, reports, the summary). `commands` run a session
//! for each subcommand; `stats` is pytrace's own figures, `notices` every
//! message to the user; `kubernetes` names the pods. `clock`, `ids` and
//! `targets::inspect::facts` answer what the engine may not ask the system
//! itself.

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
pub mod notices;
pub mod pipeline;
pub mod privileges;
pub mod probes;
pub mod recording;
pub mod sinks;
pub mod stats;
pub mod sys;
pub mod targets;
