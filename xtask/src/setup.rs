//! Idempotent installation of everything the build and the tests need.
//! Each step checks first and prints what it does; a second run with
//! everything present takes a second or two.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::python;
use crate::shell::{self, output, step};

/// The bpf-linker the kernel programs are verified with (docs/kernels.md):
/// installed with `--locked`, replacing any other version.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The nightly whose kernel programs the kernel matrix verified. Another
/// one builds, with a warning: the machine's `nightly` is used as it is
/// (a pinned nightly may no longer be downloadable).
const VERIFIED_NIGHTLY_DATE: &str = "2026-05-19";

/// What later steps need from set-up.
pub struct Environment {
    /// PATH with cargo's bin directory and LLVM's first.
    pub path: String,
    /// The virtualenv's Python, with the client SDKs installed.
    pub python: PathBuf,
}

/// Everything: the toolchain that builds pytrace, and the Python
/// environment the demo, the tests and the benchmarks run.
pub fn run() -> anyhow::Result<Environment> {
    let path = toolchain()?;
    let python = python::ensure_venv()?;
    step("set-up complete");
    Ok(Environment { path, python })
}

/// Only what builds pytrace (`cargo xtask build`, `cargo xtask image`, the
/// Dockerfile's build stage): nightly rust-src, LLVM, bpf-linker. Returns
/// the PATH to build with (cargo's bin directory and LLVM's first).
pub fn toolchain() -> anyhow::Result<String> {
    let cargo_bin = home().join(".cargo/bin");
    let llvm_major = nightly_llvm_major()?;
    ensure_rust_src()?;
    ensure_llvm(llvm_major)?;
    let path =
        format!("{}:/usr/lib/llvm-{llvm_major}/bin:{}", cargo_bin.display(), std::env::var("PATH").unwrap_or_default());
    ensure_bpf_linker(llvm_major, &path, &cargo_bin)?;
    Ok(path)
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

/// The nightly toolchain builds the kernel programs; bpf-linker must use the
/// same LLVM major version as that nightly's rustc.
fn nightly_llvm_major() -> anyhow::Result<u32> {
    let version = match output(Command::new("rustup").args(["run", "nightly", "rustc", "-vV"])) {
        Some(v) => v,
        None => {
            step("installing the nightly Rust toolchain");
            shell::run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
            output(Command::new("rustup").args(["run", "nightly", "rustc", "-vV"]))
                .context("nightly rustc does not run after installing it")?
        }
    };
    let llvm = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("nightly rustc -vV reports no LLVM version")?;
    let major = llvm.split('.').next().unwrap_or_default().parse().context("unreadable LLVM version")?;
    let date = version.lines().find_map(|l| l.strip_prefix("commit-date: ")).unwrap_or("unknown").trim();
    if date == VERIFIED_NIGHTLY_DATE {
        step(&format!("nightly rustc of {date} (the one verified), LLVM {major}"));
    } else {
        step(&format!(
            "warning: nightly rustc of {date}, not {VERIFIED_NIGHTLY_DATE} (the one the kernel programs were verified \
             with): they may differ; the kernel matrix in `cargo xtask test` checks them (LLVM {major})"
        ));
    }
    Ok(major)
}

fn ensure_rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]))
        .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        step("rust-src for nightly: present");
        return Ok(());
    }
    step("installing rust-src for nightly");
    shell::run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn ensure_llvm(major: u32) -> anyhow::Result<()> {
    let llvm_config = format!("/usr/lib/llvm-{major}/bin/llvm-config");
    let polly = format!("/usr/lib/llvm-{major}/lib/libPolly.a");
    if Path::new(&llvm_config).exists() && Path::new(&polly).exists() {
        step(&format!("LLVM {major} development files: present"));
        return Ok(());
    }
    step(&format!("installing LLVM {major} development files (apt-get)"));
    shell::run(Command::new("apt-get").arg("update"))?;
    let packages =
        [format!("llvm-{major}-dev"), format!("libpolly-{major}-dev"), "libzstd-dev".into(), "zlib1g-dev".into()];
    shell::run(Command::new("apt-get").args(["install", "-y"]).args(&packages).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Headless Chromium (Debian's `chromium` package), which the tests open
/// `pytrace run`'s HTML report in.
pub fn ensure_chromium() -> anyhow::Result<()> {
    if output(Command::new("chromium").arg("--version")).is_some() {
        step("Chromium (for the HTML report test): present");
        return Ok(());
    }
    step("installing Chromium for the HTML report test (apt-get)");
    shell::run(Command::new("apt-get").arg("update"))?;
    shell::run(Command::new("apt-get").args(["install", "-y", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive"))
}

fn ensure_bpf_linker(major: u32, path: &str, cargo_bin: &Path) -> anyhow::Result<()> {
    let linker = cargo_bin.join("bpf-linker");
    let wanted = format!("bpf-linker {BPF_LINKER_VERSION}");
    match output(Command::new(&linker).arg("--version")) {
        Some(version) if version.trim() == wanted => {
            step(&format!("bpf-linker: present ({wanted})"));
            return Ok(());
        }
        Some(other) => step(&format!("replacing {} with {wanted}, the version verified", other.trim())),
        None => {}
    }
    step(&format!("building bpf-linker {BPF_LINKER_VERSION} against LLVM {major} (about two minutes)"));
    let feature = format!("llvm-{major}");
    shell::run(
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION, "--locked", "--force"])
            .args(["--no-default-features", "--features", &feature])
            .env("PATH", path),
    )?;
    match output(Command::new(&linker).arg("--version")) {
        Some(version) if version.trim() == wanted => Ok(()),
        Some(other) => bail!("bpf-linker reports {} after installing {wanted}", other.trim()),
        None => bail!("bpf-linker was installed but does not run"),
    }
}
