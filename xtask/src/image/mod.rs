//! `cargo xtask image [--from-source]`: pytrace's container image, built
//! here, where no container registry can be reached: the runtime base is a
//! Debian bookworm root file system made with `debootstrap` and imported
//! with `podman import` (cached with the test fixtures), given to
//! deploy/Dockerfile as `BASE`; its `prebuilt` stage takes the release
//! binary built on the host. The result is `localhost/pytrace:<version>`,
//! the image the Helm chart names. With `--from-source`, the Dockerfile's
//! own build stage compiles it instead ([`source`]).

pub mod source;

use std::process::Command;

use anyhow::Context as _;

use crate::fixtures;
use crate::setup::Toolchain;
use crate::shell::{self, step, workspace_root};

/// The image's name: the chart's default repository and appVersion.
pub fn name() -> String {
    format!("localhost/pytrace:{}", env!("CARGO_PKG_VERSION"))
}

/// Builds the image from the release binary (built if needed); returns its name.
pub fn build(toolchain: &Toolchain) -> anyhow::Result<String> {
    let (base, containers_conf) = fixtures::ensure_runtime_base()?;
    toolchain.build_release()?;
    let context = workspace_root().join("target/image");
    std::fs::create_dir_all(&context)?;
    std::fs::copy(shell::pytrace_binary(), context.join("pytrace")).context("copying the binary into the context")?;
    let image = name();
    step(&format!("building the image {image} (podman build, base {base})"));
    shell::run(
        fixtures::podman(&containers_conf)
            .args(["build", "--target", "prebuilt", "--build-arg"])
            .arg(format!("BASE={base}"))
            .args(["--tag", &image, "--file"])
            .arg(workspace_root().join("deploy/Dockerfile"))
            .arg(&context),
    )?;
    Ok(image)
}

pub fn run(from_source: bool) -> anyhow::Result<()> {
    shell::require_root("building the image")?;
    let image = if from_source { source::build()? } else { build(&crate::setup::toolchain()?)? };
    let size = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Size}}", &image])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    step(&format!(
        "{image} built ({size} bytes); push it to your registry and set image.repository and image.tag in the chart"
    ));
    Ok(())
}
