//! Fixtures the integration tests need beyond the virtualenv, each built
//! once, cached under `/var/cache/pytrace-tests`, and reused:
//!
//! - a Debian sid root file system (`debootstrap`, about a minute) holding
//!   CPython 3.14 and 3.15, which need sid's own C library and so run inside
//!   it — chroot'ed in namespaces of their own, or in a container;
//! - a podman image made from that root file system (`podman import`: no
//!   container registry can be reached here), run with runc;
//! - the packages both need (debootstrap, podman, runc) and Debian's static
//!   OpenSSL (`libssl-dev`) for the statically linked TLS client fixture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::shell::{self, output, step};

/// Where the fixtures are kept between runs.
const CACHE: &str = "/var/cache/pytrace-tests";

/// What the root file system is made of; a change rebuilds it.
const SID_PACKAGES: &str = "python3.14,python3.15,ca-certificates";

/// Longest time `debootstrap` may take before the set-up gives up.
const DEBOOTSTRAP_TIMEOUT: &str = "900";

/// Debian packages the fixtures are built with.
const PACKAGES: &[&str] = &["debootstrap", "podman", "runc", "libssl-dev", "gcc"];

pub struct Fixtures {
    /// The Debian sid root file system.
    pub sid_rootfs: PathBuf,
    /// The podman image made from it.
    pub sid_image: String,
    /// The containers.conf podman needs on these machines.
    pub containers_conf: PathBuf,
}

pub fn ensure() -> anyhow::Result<Fixtures> {
    ensure_packages()?;
    let cache = Path::new(CACHE);
    std::fs::create_dir_all(cache).with_context(|| format!("creating {CACHE}"))?;
    let sid_rootfs = ensure_sid_rootfs(cache)?;
    let containers_conf = cache.join("containers.conf");
    // The VM lacks CAP_SYS_RESOURCE, so podman's default rlimits cannot be set.
    std::fs::write(&containers_conf, "[containers]\ndefault_ulimits = []\n")?;
    let sid_image = ensure_sid_image(&sid_rootfs, &containers_conf)?;
    Ok(Fixtures { sid_rootfs, sid_image, containers_conf })
}

fn ensure_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|package| {
            let status = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]));
            !status.is_some_and(|s| s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        step("debootstrap, podman, runc and Debian's static OpenSSL: present");
        return Ok(());
    }
    step(&format!("installing {} (apt-get)", missing.join(", ")));
    shell::run(Command::new("apt-get").arg("update"))?;
    shell::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The sid root file system, built with `debootstrap` when missing (its
/// `I:` lines show the progress); a stamp names what it was built with.
fn ensure_sid_rootfs(cache: &Path) -> anyhow::Result<PathBuf> {
    let rootfs = cache.join("debian-sid");
    let stamp = rootfs.join(".pytrace-fixture");
    let wanted = format!("debootstrap --variant=minbase --include={SID_PACKAGES} sid\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|built| built == wanted) {
        step(&format!("Debian sid root file system with CPython 3.14 and 3.15: present ({})", rootfs.display()));
        return Ok(rootfs);
    }
    step("building a Debian sid root file system with CPython 3.14 and 3.15 (debootstrap, about a minute)");
    let partial = cache.join("debian-sid.partial");
    for stale in [&partial, &rootfs] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    shell::run(
        Command::new("timeout")
            .args([DEBOOTSTRAP_TIMEOUT, "debootstrap", "--variant=minbase"])
            .arg(format!("--include={SID_PACKAGES}"))
            .arg("sid")
            .arg(&partial),
    )
    .context("debootstrap could not build the Debian sid root file system")?;
    for python in ["python3.14", "python3.15"] {
        if !partial.join("usr/bin").join(python).exists() {
            bail!("the Debian sid root file system has no {python}");
        }
    }
    std::fs::write(partial.join(".pytrace-fixture"), &wanted)?;
    std::fs::rename(&partial, &rootfs)?;
    Ok(rootfs)
}

/// `podman` with the settings these machines need.
pub fn podman(containers_conf: &Path) -> Command {
    let mut command = Command::new("podman");
    command.env("CONTAINERS_CONF", containers_conf).args(["--runtime", "runc"]);
    command
}

/// The podman image of the root file system, imported when missing. Its
/// tag follows the root file system's inode, so a rebuilt one is imported anew.
fn ensure_sid_image(rootfs: &Path, containers_conf: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let generation = std::fs::metadata(rootfs.join(".pytrace-fixture"))?.ino();
    let image = format!("localhost/pytrace-test-sid:{generation}");
    let exists = podman(containers_conf).args(["image", "exists", &image]).status().is_ok_and(|s| s.success());
    if exists {
        step(&format!("podman image {image}: present"));
        return Ok(image);
    }
    step(&format!("importing the Debian sid root file system as podman image {image}"));
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting tar")?;
    let archive = tar.stdout.take().context("tar's output")?;
    let imported = podman(containers_conf).args(["import", "-", &image]).stdin(archive).status();
    let tarred = tar.wait()?;
    if !imported.is_ok_and(|s| s.success()) || !tarred.success() {
        bail!("podman could not import the Debian sid root file system");
    }
    Ok(image)
}
