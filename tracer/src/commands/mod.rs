//! One module per `pytrace` subcommand.

pub mod attach;
