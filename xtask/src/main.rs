//! `cargo xtask`: the project's set-up, build, demo and test commands.
//!
//! Each command first runs `setup`, which installs whatever is missing
//! (nightly rust-src, LLVM dev packages matching the nightly, bpf-linker, the
//! Python virtualenv with the real client SDKs) and skips what is present, so
//! a fresh machine needs nothing but this repository.

mod bench;
mod cpython;
mod demo;
mod fixtures;
mod fuzz;
mod guards;
mod image;
mod kernels;
mod manifest;
mod prices;
mod python;
mod setup;
mod shell;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "pytrace's developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the eBPF toolchain and the Python test environment (idempotent).
    Setup,
    /// Build (once) the test fixtures: a Debian sid root file system with CPython 3.14/3.15 and its podman image,
    /// and the kernel matrix's Debian kernels.
    Fixtures,
    /// Set up the toolchain (not the Python test environment), then build the release `pytrace` binary.
    Build,
    /// Attach pytrace to a running Python program making HTTPS calls, live.
    Demo {
        /// Seconds the demo program keeps making requests.
        #[arg(long, default_value_t = 12)]
        seconds: u32,
    },
    /// Measure pytrace's overhead against no tracing, the bare probes and OpenTelemetry.
    Bench {
        /// One short round (about two minutes), for CI; timings are indicative only.
        #[arg(long)]
        quick: bool,
        /// Run only these parts (repeatable): overhead, load, node, hostile, pipeline, soak.
        #[arg(long, value_parser = ["overhead", "load", "node", "hostile", "pipeline", "soak"])]
        only: Vec<String>,
        /// Minutes of the soak (a full run, or `--only soak`; `--quick` alone skips it).
        #[arg(long, default_value_t = 60.0)]
        soak_minutes: f64,
    },
    /// Regenerate pytrace-core/data/prices.json from LiteLLM's price table (PyPI).
    UpdatePrices,
    /// Render the Helm chart into the plain manifest deploy/kubernetes/pytrace.yaml.
    Manifest,
    /// Print the CPython 3.8–3.12 offsets pytrace reads, generated from pyenv's headers (gcc).
    CpythonOffsets,
    /// Build pytrace's container image localhost/pytrace:<version> (podman, no registry needed).
    Image {
        /// Compile pytrace in the Dockerfile's build stage (localhost/pytrace:<version>-source), as a user with a
        /// registry does, instead of copying the binary built here.
        #[arg(long)]
        from_source: bool,
    },
    /// Run the fuzz targets (cargo-fuzz, nightly), each for a while.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 300)]
        seconds: u32,
        /// Only these targets (repeatable): events, decoding, tokens, http_llm, json_fragments, code_objects, spool.
        #[arg(long = "target", value_parser = fuzz::TARGETS.to_vec())]
        targets: Vec<String>,
    },
    /// Set up, build, and run every test: unit tests, root integration tests, and the quick benchmark.
    Test {
        /// Only run integration tests whose name contains this.
        filter: Option<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Setup => setup::run().map(|_| ()),
        Command::Fixtures => fixtures::ensure().map(|_| ()),
        Command::Build => setup::toolchain().and_then(|toolchain| toolchain.build_release()),
        Command::Demo { seconds } => demo::run(seconds),
        Command::Test { filter } => test::run(filter.as_deref()),
        Command::UpdatePrices => prices::run(),
        Command::Manifest => manifest::run(),
        Command::CpythonOffsets => cpython::run(),
        Command::Image { from_source } => image::run(from_source),
        Command::Fuzz { seconds, targets } => setup::run().and_then(|env| fuzz::run(&env, seconds, &targets)),
        Command::Bench { quick, only, soak_minutes } => bench::run(quick, &only, soak_minutes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
