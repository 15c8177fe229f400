//! One module per `pytrace` subcommand, and OTLP export over a session (`export`).

pub mod attach;
pub mod export;
pub mod launch;
pub mod run;
