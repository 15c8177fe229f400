//! The `pytrace` binary: parse flags, validate them, run the subcommand, and
//! turn any failure into one line on stderr and a non-zero exit code.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tracer::agent::stdout_is_terminal;
use tracer::cli::{Cli, Command};
use tracer::commands::{attach, doctor, node, replay, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            tracer::notices::emit(tracer::notices::Level::Error, format_args!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand; returns the exit code.
fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    // The session's loop runs on this thread; export, the metrics endpoint
    // and the Kubernetes watch run on the workers, so neither waits for the other.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pytrace-io")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let env = |name: &str| std::env::var(name).ok();
    match cli.command {
        Command::Attach(args) => {
            let config = args.validate(stdout_is_terminal(), env)?;
            runtime.block_on(attach::run(config))?;
            Ok(0)
        }
        Command::Run(args) => {
            let config = args.validate(stdout_is_terminal(), env)?;
            Ok(runtime.block_on(run::run(config))?)
        }
        Command::Node(args) => {
            let (config, selection, kubernetes) = args.validate(stdout_is_terminal(), env)?;
            runtime.block_on(node::run(config, selection, kubernetes))?;
            Ok(0)
        }
        Command::Doctor(args) => Ok(doctor::run(&args)),
        Command::Replay(args) => {
            replay::run(&args)?;
            Ok(0)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PYTRACE_LOG").unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
