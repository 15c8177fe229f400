//! Build-time inputs embedded in the binary:
//! - the kernel programs (`tracer-ebpf`), built for the BPF target with the
//!   nightly toolchain (rustup's `nightly`, or the one `PYTRACE_NIGHTLY`
//!   names: `cargo xtask` sets it) into `OUT_DIR`, where `src/probes` embeds
//!   them with `include_bytes_aligned!` (`cargo xtask setup` installs what
//!   this needs: a nightly with rust-src, LLVM 22, bpf-linker);
//! - the toolchain that built them (`PYTRACE_EBPF_TOOLCHAIN`: the nightly's
//!   version and date, its LLVM, bpf-linker's version), which
//!   `pytrace --version` and `doctor` print so that a report names it.

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=PYTRACE_NIGHTLY");
    let nightly = std::env::var("PYTRACE_NIGHTLY").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "nightly".into());
    println!("cargo:rustc-env=PYTRACE_EBPF_TOOLCHAIN={}", ebpf_toolchain(&nightly));
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tracer-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package { name: "tracer-ebpf", root_dir, ..Default::default() }],
        aya_build::Toolchain::Custom(&nightly),
    )
}

/// "rustc 1.97.0-nightly (e50aa6fba 2026-05-19), LLVM 22.1.4, bpf-linker 0.13.0":
/// what aya-build runs (the `nightly` toolchain, `bpf-linker` from PATH).
fn ebpf_toolchain(nightly: &str) -> String {
    let output = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    let rustc = output("rustup", &["run", nightly, "rustc", "-vV"]);
    let release = rustc.lines().next().unwrap_or("rustc (unknown nightly)").trim().to_owned();
    let llvm = rustc.lines().find_map(|l| l.strip_prefix("LLVM version: ")).unwrap_or("unknown").trim().to_owned();
    let linker = output("bpf-linker", &["--version"]);
    let linker = linker.trim();
    format!("{release}, LLVM {llvm}, {}", if linker.is_empty() { "bpf-linker (unknown)" } else { linker })
}
