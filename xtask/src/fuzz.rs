//! `cargo xtask fuzz [--seconds N] [--target T]…`: runs the cargo-fuzz
//! targets of `fuzz/` (installing cargo-fuzz when missing), each for N
//! seconds, from the committed seeds (`fuzz/seeds/T`) and the corpus grown by
//! earlier runs (`fuzz/corpus/T`, not committed). A crash fails the run and
//! names the input libFuzzer saved (`fuzz/artifacts/T/`), which becomes a
//! regression test. `cargo xtask test` runs each target briefly.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::bail;

use crate::setup::Environment;
use crate::shell::{self, output, step, workspace_root};

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &["events", "decoding", "tokens", "http_llm", "json_fragments", "code_objects", "spool"];

pub fn run(env: &Environment, seconds: u32, only: &[String]) -> anyhow::Result<()> {
    ensure_cargo_fuzz(env)?;
    let fuzz = workspace_root().join("fuzz");
    build(env, &fuzz)?;
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

/// Builds every target. A failed build is tried once more (a download or
/// the machine running short can fail one) after saying why; a second
/// failure ends with the compiler's errors and the machine's free disk
/// and memory as its last lines, where a CI log that keeps only its tail
/// still shows them.
fn build(env: &Environment, fuzz: &Path) -> anyhow::Result<()> {
    let mut first_failure = None;
    for attempt in 1..=2 {
        step(&format!(
            "building the fuzz targets (nightly, address sanitizer, overflow checks), attempt {attempt} of 2"
        ));
        let mut command = env.toolchain.cargo();
        command.arg(format!("+{}", env.toolchain.nightly)).args(["fuzz", "build", "-O"]).current_dir(fuzz);
        let errors = match run_keeping_errors(&mut command)? {
            None => return Ok(()),
            Some(errors) => errors,
        };
        let cause = format!("{}\n{}", errors.join("\n"), machine_room());
        println!("==> the fuzz build failed:\n{cause}");
        first_failure.get_or_insert(cause);
    }
    bail!("the fuzz targets do not build; the first failure:\n{}", first_failure.unwrap_or_default())
}

/// Runs `command`, passing its standard error through and keeping the
/// compiler's error messages (each `error` line and what follows it, at
/// most [`KEPT_ERROR_LINES`]); `None` when it succeeds.
fn run_keeping_errors(command: &mut Command) -> anyhow::Result<Option<Vec<String>>> {
    let mut child = command.stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().map(BufReader::new);
    let mut kept = Vec::new();
    let mut following = 0;
    for line in stderr.into_iter().flat_map(|reader| reader.lines().map_while(Result::ok)) {
        eprintln!("{line}");
        if line.starts_with("error") {
            following = 12;
        }
        if following > 0 && kept.len() < KEPT_ERROR_LINES {
            kept.push(line);
            following -= 1;
        }
    }
    Ok((!child.wait()?.success()).then_some(kept))
}

/// Lines of compiler errors a failed fuzz build reports at its end.
const KEPT_ERROR_LINES: usize = 60;

/// Free disk (where the fuzz targets are built) and memory, in one line.
fn machine_room() -> String {
    let disk = output(Command::new("df").args(["-h", "--output=avail"]).arg(workspace_root()))
        .and_then(|out| out.lines().nth(1).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| "?".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or_else(|| "?".into(), |kib| format!("{} MiB", kib >> 10));
    format!("free disk: {disk}; available memory: {memory}")
}

fn ensure_cargo_fuzz(env: &Environment) -> anyhow::Result<()> {
    if output(env.toolchain.cargo().args(["fuzz", "--version"])).is_some() {
        step("cargo-fuzz: present");
        return Ok(());
    }
    step("installing cargo-fuzz (cargo install)");
    shell::run(env.toolchain.cargo().args(["install", "cargo-fuzz", "--locked"]))
}
