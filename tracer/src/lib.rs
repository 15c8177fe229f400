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
pub(crate) mod checks;
pub mod cli;
pub(crate) mod clock;
pub mod commands;
pub(crate) mod ids;
pub(crate) mod kubernetes;
pub mod notices;
pub(crate) mod pipeline;
pub mod privileges;
pub mod probes;
pub(crate) mod recording;
pub mod sinks;
pub(crate) mod stats;
pub mod sys;
pub(crate) mod targets;
