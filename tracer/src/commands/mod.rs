//! One module per `pytrace` subcommand (`replay` is for benchmarks), and
//! OTLP export over a session (`export`).

pub mod attach;
pub mod export;
pub mod launch;
pub mod replay;
pub mod run;
