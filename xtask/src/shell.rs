//! Running commands with visible progress, and locating the workspace.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

pub fn step(message: &str) {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        eprintln!("\x1b[1m==>\x1b[0m {message}");
    } else {
        eprintln!("==> {message}");
    }
}

/// Runs `command`, streaming its output; fails on a non-zero exit.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("could not start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Totals of the `test result:` lines of cargo test runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// Runs a `cargo test` command, echoing its output, and adds up its results.
pub fn run_tests(command: &mut Command, counts: &mut TestCounts) -> anyhow::Result<()> {
    use std::io::{BufRead as _, BufReader};
    let mut child =
        command.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("could not start {command:?}"))?;
    let stdout = child.stdout.take().context("test stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(result) = line.strip_prefix("test result: ") {
            let number = |word: &str| {
                result
                    .split(';')
                    .find_map(|part| part.trim().strip_suffix(word)?.trim().rsplit(' ').next()?.parse::<u64>().ok())
            };
            counts.passed += number("passed").unwrap_or(0);
            counts.failed += number("failed").unwrap_or(0);
            counts.ignored += number("ignored").unwrap_or(0);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Runs `command` quietly and returns its stdout, or None when it fails.
pub fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn pytrace_binary() -> PathBuf {
    workspace_root().join("target/release/pytrace")
}

pub fn require_root(what: &str) -> anyhow::Result<()> {
    let uid = output(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!("{what} loads eBPF programs and must run as root: sudo -E cargo xtask ...");
    }
    Ok(())
}

/// Installs those of Debian's `packages` that are missing (apt-get), or
/// says that they are present (`what` names them).
pub fn ensure_apt_packages(packages: &[&str], what: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            let status = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]));
            !status.is_some_and(|s| s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        step(&format!("{what}: present"));
        return Ok(());
    }
    step(&format!("installing {} (apt-get)", missing.join(", ")));
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
