//! Builds the kernel programs (`tracer-ebpf`) for the BPF target with the
//! nightly toolchain and places the object in `OUT_DIR`, where `src/probes`
//! embeds it with `include_bytes_aligned!`. `cargo xtask setup` installs what
//! this needs (nightly rust-src, LLVM 22, bpf-linker).
fn main() -> anyhow::Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tracer-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package { name: "tracer-ebpf", root_dir, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
}
