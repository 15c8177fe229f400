//! `cargo xtask bench [--quick]`: what pytrace costs the programs it traces
//! and how much it can take, in one run, written to target/bench/results.md
//! and results.json:
//! - `overhead`: every workload under no tracing, the bare probes (the
//!   floor), pytrace, pytrace `--trace-function` and OpenTelemetry in-process;
//! - `load`: 2,000 requests/s under pytrace — events lost, spans;
//! - `node`: `pytrace node` over 50 Python processes at 500 requests/s —
//!   its CPU share of one core, peak RSS, events lost;
//! - `hostile`: special-token streams, a gzip bomb, endless model names and
//!   never-closed connections under pytrace — its peak RSS against targets;
//! - `pipeline`: recorded events replayed through user space alone —
//!   events/s and spans/s per core, memory with 10,000 open connections;
//! - `soak`: an hour of mixed traffic — pytrace's RSS must stay flat after
//!   warm-up (not in `--quick`, which CI runs).

mod cgroup;
mod hostile;
mod load;
mod node;
mod overhead;
mod pipeline;
mod processes;
mod soak;

use std::path::Path;
use std::process::Command;

use crate::setup;
use crate::shell::{self, output, step, workspace_root};

pub fn run(quick: bool, only: &[String], soak_minutes: f64) -> anyhow::Result<()> {
    shell::require_root("the benchmarks")?;
    let env = setup::run()?;
    ensure_opentelemetry(&env.python)?;
    env.toolchain.build_release()?;
    let out_dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let server = processes::Server::start(&env.python, &out_dir)?;
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);

    let mut sections = Vec::new();
    let mut json = serde_json::Map::new();
    json.insert("quick".into(), quick.into());
    if wanted("overhead") {
        let overhead = overhead::measure(&env.python, &server, quick, &out_dir)?;
        sections.push(overhead::render(&overhead));
        json.insert("overhead".into(), overhead::to_json(&overhead));
    }
    if wanted("load") {
        let load = load::measure(&env.python, &server, quick, &out_dir)?;
        sections.push(load::render(&load));
        json.insert("load".into(), load::to_json(&load));
    }
    if wanted("node") {
        let node = node::measure(&env.python, &server, quick, &out_dir)?;
        sections.push(node::render(&node));
        json.insert("node".into(), node::to_json(&node));
    }
    if wanted("hostile") {
        let hostile = hostile::measure(&env.python, &server, quick, &out_dir)?;
        sections.push(hostile::render(&hostile));
        json.insert("hostile".into(), hostile::to_json(&hostile));
    }
    if wanted("pipeline") {
        let pipeline = pipeline::measure(&env.python, &server, quick, &out_dir)?;
        sections.push(pipeline::render(&pipeline));
        json.insert("pipeline".into(), pipeline::to_json(&pipeline));
    }

    // An hour: in a full run, or when asked for by name.
    if (!quick && only.is_empty()) || only.iter().any(|o| o == "soak") {
        let soak = soak::measure(&env.python, &server, soak_minutes, &out_dir)?;
        sections.push(soak::render(&soak));
        json.insert("soak".into(), soak::to_json(&soak));
    }

    let mode = if quick {
        "quick mode: one round, fewer operations — indicative only"
    } else {
        "full run; overhead timings: 3 rounds, median"
    };
    let report = format!("# pytrace benchmarks ({mode})\n\n{}", sections.join("\n"));
    println!("\n{report}");
    std::fs::write(out_dir.join("results.md"), &report)?;
    std::fs::write(out_dir.join("results.json"), serde_json::Value::Object(json).to_string())?;
    step(&format!("results written to {}", out_dir.join("results.md").display()));
    Ok(())
}

/// The OpenTelemetry packages the comparison needs, in the venv (idempotent).
fn ensure_opentelemetry(python: &Path) -> anyhow::Result<()> {
    let check = "import opentelemetry.instrumentation.openai_v2, opentelemetry.instrumentation.httpx, opentelemetry.instrumentation.requests, opentelemetry.sdk";
    if output(Command::new(python).args(["-c", check])).is_some() {
        step("OpenTelemetry instrumentation for the comparison: present");
        return Ok(());
    }
    step("installing the OpenTelemetry SDK and the openai-v2, httpx and requests instrumentations");
    let requirements = workspace_root().join("tests/python/bench-requirements.txt");
    shell::run(
        Command::new(python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q", "-r"])
            .arg(requirements),
    )
}
