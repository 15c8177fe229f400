//! One module per `pytrace` subcommand (`replay` is for benchmarks): thin
//! adapters from a validated configuration to a tracing session
//! (`crate::agent`) and its reports.

pub mod attach;
pub mod doctor;
pub mod node;
pub mod replay;
pub mod run;
