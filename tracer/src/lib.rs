//! pytrace's user space: target discovery, probe loading, and the pure
//! pipeline that turns captured TLS plaintext into OpenTelemetry spans.
//!
//! Data flows `discovery` (what a process maps and runs) → `probes` (kernel)
//! → `events` (decode) → `tracker` (per connection) → `http` (HTTP/1.1
//! exchanges) → `llm`, `python` → `span` → `output`, `otlp`; a `session`
//! drives it for the `commands`. Only `session`, `commands`, `probes`,
//! `privileges` and `discovery` touch the system; the rest is pure and tested
//! by replaying byte streams.

/// `pytrace --version`: the release and the toolchain that built its kernel programs.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (kernel programs: ", env!("PYTRACE_EBPF_TOOLCHAIN"), ")");

pub mod cli;
pub mod clock;
pub mod commands;
pub mod discovery;
pub mod doctor;
pub mod ids;
pub mod kubernetes;
pub mod metrics;
pub mod otlp;
pub mod output;
pub mod pipeline;
pub mod privileges;
pub mod probes;
pub mod recording;
pub mod report;
pub mod session;
