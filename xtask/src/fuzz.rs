//! `cargo xtask fuzz [--seconds N] [--target T]…`: runs the cargo-fuzz
//! targets of `fuzz/` (installing cargo-fuzz when missing), each for N
//! seconds, from the committed seeds (`fuzz/seeds/T`) and the corpus grown by
//! earlier runs (`fuzz/corpus/T`, not committed). A crash fails the run and
//! names the input libFuzzer saved (`fuzz/artifacts/T/`), which becomes a
//! regression test. `cargo xtask test` runs each target briefly.

use anyhow::bail;

use crate::setup::Environment;
use crate::shell::{self, output, step, workspace_root};

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &["events", "decoding", "tokens", "http_llm", "json_fragments", "code_objects", "spool"];

pub fn run(env: &Environment, seconds: u32, only: &[String]) -> anyhow::Result<()> {
    ensure_cargo_fuzz(env)?;
    let fuzz = workspace_root().join("fuzz");
    step("building the fuzz targets (nightly, address sanitizer, overflow checks)");
    shell::run(
        env.toolchain
            .cargo()
            .arg(format!("+{}", env.toolchain.nightly))
            .args(["fuzz", "build", "-O"])
            .current_dir(&fuzz),
    )?;
    for target in TARGETS.iter().filter(|t| only.is_empty() || only.iter().any(|o| o == *t)) {
        step(&format!("fuzzing {target} for {seconds} s"));
        let corpus = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let status = env
            .toolchain
            .cargo()
            .arg(format!("+{}", env.toolchain.nightly))
            .args(["fuzz", "run", "-O", target])
            .arg(&corpus)
            .arg(fuzz.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-max_len=65536", "-rss_limit_mb=4096", "-print_final_stats=1"])
            .current_dir(&fuzz)
            .status()?;
        if !status.success() {
            bail!(
                "fuzz target {target} failed: the input is in fuzz/artifacts/{target}/ (turn it into a regression test)"
            );
        }
    }
    Ok(())
}

fn ensure_cargo_fuzz(env: &Environment) -> anyhow::Result<()> {
    if output(env.toolchain.cargo().args(["fuzz", "--version"])).is_some() {
        step("cargo-fuzz: present");
        return Ok(());
    }
    step("installing cargo-fuzz (cargo install)");
    shell::run(env.toolchain.cargo().args(["install", "cargo-fuzz", "--locked"]))
}
