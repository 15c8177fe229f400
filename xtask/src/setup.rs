//! Idempotent installation of everything the build and the tests need.
//! Each step checks first and prints what it does; a second run with
//! everything present takes a second or two.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::python;
use crate::shell::{self, output, step, workspace_root};

/// The bpf-linker the kernel programs are verified with (docs/kernels.md):
/// installed with `--locked`, replacing any other version.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The nightly whose kernel programs the kernel matrix verified: its rustc,
/// and the rustup channel that installs it (a nightly is published the day
/// after its commit). A machine with a `nightly` of its own builds with it
/// (a warning names another one); one without gets this one, not whatever
/// is newest, whose LLVM Debian may not ship.
const VERIFIED_NIGHTLY_RUSTC: &str = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)";
const VERIFIED_NIGHTLY_CHANNEL: &str = "nightly-2026-05-20";

/// What later steps need from set-up.
pub struct Environment {
    pub toolchain: Toolchain,
    /// The virtualenv's Python, with the client SDKs installed.
    pub python: PathBuf,
}

/// What builds pytrace: which nightly builds the kernel programs, and the
/// PATH that finds bpf-linker and LLVM.
pub struct Toolchain {
    /// PATH with cargo's bin directory and LLVM's first.
    pub path: String,
    /// The rustup toolchain of the kernel programs (`nightly` or a dated one),
    /// given to tracer/build.rs as `PYTRACE_NIGHTLY`.
    pub nightly: String,
}

impl Toolchain {
    /// `cargo` with this toolchain's PATH and nightly.
    pub fn cargo(&self) -> Command {
        let mut cargo = Command::new("cargo");
        cargo.env("PATH", &self.path).env("PYTRACE_NIGHTLY", &self.nightly);
        cargo
    }

    /// Builds the release `pytrace` binary ([`shell::pytrace_binary`]; the
    /// kernel object is built and embedded by tracer/build.rs).
    pub fn build_release(&self) -> anyhow::Result<()> {
        step("building pytrace (release)");
        shell::run(
            self.cargo()
                .args(["build", "--release", "--package", "tracer", "--bin", "pytrace"])
                .current_dir(workspace_root()),
        )
    }
}

/// Everything: the toolchain that builds pytrace, and the Python
/// environment the demo, the tests and the benchmarks run.
pub fn run() -> anyhow::Result<Environment> {
    let toolchain = toolchain()?;
    let python = python::ensure_venv()?;
    step("set-up complete");
    Ok(Environment { toolchain, python })
}

/// Only what builds pytrace (`cargo xtask build`, `cargo xtask image`, the
/// Dockerfile's build stage): a nightly with rust-src, LLVM, bpf-linker.
pub fn toolchain() -> anyhow::Result<Toolchain> {
    let cargo_bin = cargo_home().join("bin");
    let (nightly, llvm_major) = nightly()?;
    ensure_rust_src(&nightly)?;
    ensure_llvm(llvm_major)?;
    let path =
        format!("{}:/usr/lib/llvm-{llvm_major}/bin:{}", cargo_bin.display(), std::env::var("PATH").unwrap_or_default());
    ensure_bpf_linker(llvm_major, &path, &cargo_bin)?;
    Ok(Toolchain { path, nightly })
}

/// Where `cargo install` puts binaries: `$CARGO_HOME` (the Rust images set
/// it to /usr/local/cargo), else ~/.cargo.
fn cargo_home() -> PathBuf {
    match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cargo"),
    }
}

/// The nightly that builds the kernel programs, and its LLVM major version
/// (bpf-linker must use the same): the machine's `nightly`, or the verified
/// one installed.
fn nightly() -> anyhow::Result<(String, u32)> {
    let verified = VERIFIED_NIGHTLY_CHANNEL.to_owned();
    let rustc_version = |toolchain: &str| output(Command::new("rustup").args(["run", toolchain, "rustc", "-vV"]));
    let (nightly, version) = match rustc_version("nightly").map(|v| ("nightly".to_owned(), v)) {
        Some(found) => found,
        None => match rustc_version(&verified) {
            Some(v) => (verified, v),
            None => {
                step(&format!("installing the Rust toolchain {verified} (the kernel programs' verified nightly)"));
                shell::run(Command::new("rustup").args(["toolchain", "install", &verified, "--profile", "minimal"]))?;
                let v = rustc_version(&verified).with_context(|| format!("{verified}'s rustc does not run"))?;
                (verified, v)
            }
        },
    };
    let llvm = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("nightly rustc -vV reports no LLVM version")?;
    let major = llvm.split('.').next().unwrap_or_default().parse().context("unreadable LLVM version")?;
    let rustc = version.lines().next().unwrap_or("rustc (unknown)").trim();
    if rustc == VERIFIED_NIGHTLY_RUSTC {
        step(&format!("{rustc} (the nightly verified, as {nightly}), LLVM {major}"));
    } else {
        step(&format!(
            "warning: {rustc} as {nightly}, not {VERIFIED_NIGHTLY_RUSTC} (the nightly the kernel programs were \
             verified with): they may differ; the kernel matrix in `cargo xtask test` checks them (LLVM {major})"
        ));
    }
    Ok((nightly, major))
}

fn ensure_rust_src(nightly: &str) -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--toolchain", nightly, "--installed"]))
        .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        step(&format!("rust-src for {nightly}: present"));
        return Ok(());
    }
    step(&format!("installing rust-src for {nightly}"));
    shell::run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", nightly]))
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
