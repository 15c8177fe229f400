//! `pytrace-core` stays pure: nothing linked into it, directly or not,
//! reaches the kernel, the file system or a runtime on its own. `cargo tree`
//! lists what building it alone links (the agent's features not unified
//! in); build scripts' own dependencies (`cc` compiling zstd's C sources
//! needs `libc`) run on the build machine and are not counted.

use std::process::Command;

use crate::shell::workspace_root;

/// Crates that would let the engine make system calls of its own: the eBPF
/// loader, runtimes and clients, C library bindings, random generators.
const SYSTEM_CRATES: &[&str] = &[
    "aya",
    "aya-obj",
    "tokio",
    "mio",
    "libc",
    "rustix",
    "nix",
    "kube",
    "kube-client",
    "k8s-openapi",
    "reqwest",
    "hyper",
    "tonic",
    "getrandom",
    "memmap2",
    "socket2",
];

/// The names of the crates `cargo tree` lists for `package` (normal edges).
fn dependencies(package: &str) -> Vec<String> {
    let output = Command::new("cargo")
        .args(["tree", "--package", package, "--edges", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_core_depends_on_no_system_crate() {
    let dependencies = dependencies("pytrace-core");
    assert!(dependencies.iter().any(|d| d == "tracer-common"), "the listing is read: {dependencies:?}");
    let system: Vec<&String> = dependencies.iter().filter(|d| SYSTEM_CRATES.contains(&d.as_str())).collect();
    assert!(system.is_empty(), "pytrace-core depends on {system:?}: move that code into the agent (tracer)");
}

#[test]
fn the_agent_is_seen_to_depend_on_them() {
    let dependencies = dependencies("tracer");
    for expected in ["aya", "tokio", "libc", "kube"] {
        assert!(dependencies.iter().any(|d| d == expected), "{expected} in {dependencies:?}");
    }
}
