//! deploy/Dockerfile's source route, built the way a user with a registry
//! builds it (`podman build -f deploy/Dockerfile .`, default target), with
//! the two images it names made here instead of pulled: BASE is the
//! debootstrapped runtime base, BUILDER a stand-in for `rust:1-bookworm`
//! (tests/fixtures/rust-builder/Containerfile: bookworm, a C toolchain,
//! rustup's stable Rust) built once and tagged by its recipe's hash. The
//! build stage installs the rest itself (`cargo xtask build`): the verified
//! nightly, rust-src, LLVM 22 from bookworm-security, bpf-linker.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::fixtures;
use crate::shell::{self, step, workspace_root};

/// The recipe of the stand-in for the Rust builder image.
const BUILDER_RECIPE: &str = "tests/fixtures/rust-builder/Containerfile";
/// The host's own certificate authorities, which the builder trusts too (the
/// network here passes through a TLS-inspecting proxy).
const LOCAL_CA: &str = "/usr/local/share/ca-certificates";

/// Longest a build may take before it is stopped: the builder about three
/// minutes, pytrace from nothing about twelve on 2 cores.
const BUILDER_TIMEOUT_SECONDS: &str = "900";
const BUILD_TIMEOUT_SECONDS: &str = "2400";

/// The image built from source: `localhost/pytrace:<version>-source`.
pub fn name() -> String {
    format!("{}-source", super::name())
}

/// Builds the image from source (podman's layer and cache mounts make an
/// unchanged tree a matter of seconds); returns its name.
pub fn build() -> anyhow::Result<String> {
    let (base, containers_conf) = fixtures::ensure_runtime_base()?;
    let builder = ensure_builder()?;
    let image = name();
    step(&format!(
        "building {image} from source: deploy/Dockerfile's build stage on {builder} (about 12 minutes the first \
         time, 4 after a change, seconds when nothing changed)"
    ));
    shell::run(
        podman_within(BUILD_TIMEOUT_SECONDS, &containers_conf)
            .args(["build", "--network", "host", "--target", "image"])
            .arg(format!("--build-arg=BASE={base}"))
            .arg(format!("--build-arg=BUILDER={builder}"))
            .args(["--tag", &image, "--file"])
            .arg(workspace_root().join("deploy/Dockerfile"))
            .arg(workspace_root()),
    )
    .with_context(|| format!("building {image} from source (deploy/Dockerfile, target image)"))?;
    Ok(image)
}

/// The stand-in for `rust:1-bookworm`, built from the bookworm root file
/// system when its tag (the hash of its recipe, base and CA certificates)
/// is missing.
fn ensure_builder() -> anyhow::Result<String> {
    let (bookworm, containers_conf) = fixtures::ensure_bookworm_image()?;
    let recipe = workspace_root().join(BUILDER_RECIPE);
    let context = builder_context(&recipe)?;
    let mut hasher = DefaultHasher::new();
    bookworm.hash(&mut hasher);
    std::fs::read(context.join("Containerfile"))?.hash(&mut hasher);
    let mut certificates: Vec<PathBuf> =
        std::fs::read_dir(context.join("local-ca"))?.flatten().map(|e| e.path()).collect();
    certificates.sort();
    for certificate in certificates {
        (certificate.file_name(), std::fs::read(&certificate)?).hash(&mut hasher);
    }
    let builder = format!("localhost/pytrace-test-rust-builder:{:012x}", hasher.finish() & 0xffff_ffff_ffff);
    if fixtures::podman(&containers_conf).args(["image", "exists", &builder]).status().is_ok_and(|s| s.success()) {
        step(&format!("stand-in for rust:1-bookworm {builder}: present"));
        return Ok(builder);
    }
    step(&format!("building {builder}, the stand-in for rust:1-bookworm (apt-get, rustup; about three minutes)"));
    shell::run(
        podman_within(BUILDER_TIMEOUT_SECONDS, &containers_conf)
            .args(["build", "--network", "host"])
            .arg(format!("--build-arg=BASE={bookworm}"))
            .args(["--tag", &builder, "--file"])
            .arg(context.join("Containerfile"))
            .arg(&context),
    )
    .context("building the stand-in for rust:1-bookworm")?;
    Ok(builder)
}

/// The builder's build context, made anew under target/: its recipe and the
/// host's CA certificates (`local-ca/`, empty when the host adds none).
fn builder_context(recipe: &Path) -> anyhow::Result<PathBuf> {
    let context = workspace_root().join("target/rust-builder");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    let local_ca = context.join("local-ca");
    std::fs::create_dir_all(&local_ca)?;
    std::fs::copy(recipe, context.join("Containerfile")).with_context(|| format!("copying {}", recipe.display()))?;
    for entry in std::fs::read_dir(LOCAL_CA).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".crt") {
            std::fs::copy(entry.path(), local_ca.join(&name))?;
        }
    }
    Ok(context)
}

/// `podman` as [`fixtures::podman`] runs it, stopped after `seconds`.
fn podman_within(seconds: &str, containers_conf: &Path) -> Command {
    let mut command = Command::new("timeout");
    command.env("CONTAINERS_CONF", containers_conf).args([seconds, "podman", "--runtime", "runc"]);
    command
}
