//! Fixtures the integration tests need beyond the virtualenv, each built
//! once, cached under `/var/cache/pytrace-tests`, and reused:
//!
//! - a Debian sid root file system (`debootstrap`, about a minute) holding
//!   CPython 3.14 and 3.15, which need sid's own C library and so run inside
//!   it — chroot'ed in namespaces of their own, or in a container;
//! - a podman image made from that root file system (`podman import`: no
//!   container registry can be reached here), run with runc;
//! - the base of pytrace's own image (`cargo xtask image`): from a Debian
//!   bookworm root file system, only what the binary needs — the C library,
//!   libgcc_s, the dynamic loader, the CA certificates (OTLP over TLS) —
//!   about 3 MB; the whole root file system is imported too, as the start of
//!   the stand-in for the Rust builder image (`image::source`);
//! - Debian's kernels for the kernel matrix (`kernels`), booted in QEMU;
//! - the packages both need (debootstrap, podman, runc) and Debian's static
//!   OpenSSL (`libssl-dev`) for the statically linked TLS client fixture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::shell::{self, step};

/// Where the fixtures are kept between runs.
const CACHE: &str = "/var/cache/pytrace-tests";

/// A root file system `debootstrap` makes, and what proves it whole.
struct Rootfs {
    dir: &'static str,
    suite: &'static str,
    /// Packages beyond minbase; a change rebuilds it.
    include: &'static str,
    what: &'static str,
    must_have: &'static [&'static str],
}

const SID: Rootfs = Rootfs {
    dir: "debian-sid",
    suite: "sid",
    include: "python3.14,python3.15,ca-certificates",
    what: "Debian sid root file system with CPython 3.14 and 3.15",
    must_have: &["usr/bin/python3.14", "usr/bin/python3.15"],
};

/// pytrace's runtime base: a C library and the CA certificates (OTLP over TLS).
const RUNTIME_BASE: Rootfs = Rootfs {
    dir: "debian-bookworm-base",
    suite: "bookworm",
    include: "ca-certificates",
    what: "Debian bookworm base root file system for pytrace's image",
    must_have: &["etc/ssl/certs/ca-certificates.crt"],
};

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
    /// The kernel matrix's manifest (`kernels`).
    pub kernel_matrix: PathBuf,
}

pub fn ensure() -> anyhow::Result<Fixtures> {
    ensure_packages()?;
    let cache = Path::new(CACHE);
    std::fs::create_dir_all(cache).with_context(|| format!("creating {CACHE}"))?;
    let sid_rootfs = ensure_rootfs(cache, &SID)?;
    let containers_conf = ensure_containers_conf(cache)?;
    let sid_image = ensure_image(&sid_rootfs, "localhost/pytrace-test-sid", &containers_conf)?;
    let kernel_matrix = crate::kernels::ensure(cache)?;
    Ok(Fixtures { sid_rootfs, sid_image, containers_conf, kernel_matrix })
}

/// The base image of pytrace's own image, and the containers.conf podman
/// needs here.
pub fn ensure_runtime_base() -> anyhow::Result<(String, PathBuf)> {
    let (cache, rootfs, containers_conf) = bookworm()?;
    let slim = slim_rootfs(&rootfs, &cache.join("pytrace-runtime-base"))?;
    let image = ensure_image(&slim, "localhost/pytrace-base", &containers_conf)?;
    Ok((image, containers_conf))
}

/// The whole bookworm root file system as a podman image (what the stand-in
/// for the Rust builder image starts from), and the containers.conf.
pub fn ensure_bookworm_image() -> anyhow::Result<(String, PathBuf)> {
    let (_, rootfs, containers_conf) = bookworm()?;
    let image = ensure_image(&rootfs, "localhost/pytrace-test-bookworm", &containers_conf)?;
    Ok((image, containers_conf))
}

/// The cache, the bookworm root file system and containers.conf, made when missing.
fn bookworm() -> anyhow::Result<(&'static Path, PathBuf, PathBuf)> {
    ensure_packages()?;
    let cache = Path::new(CACHE);
    std::fs::create_dir_all(cache).with_context(|| format!("creating {CACHE}"))?;
    let rootfs = ensure_rootfs(cache, &RUNTIME_BASE)?;
    let containers_conf = ensure_containers_conf(cache)?;
    Ok((cache, rootfs, containers_conf))
}

/// The files of `full` the runtime needs, copied (symbolic links resolved).
const RUNTIME_FILES: &[&str] = &[
    "lib64/ld-linux-x86-64.so.2",
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "usr/lib/x86_64-linux-gnu/libm.so.6",
    "etc/ssl/certs/ca-certificates.crt",
    "etc/passwd",
    "etc/group",
];

/// A root file system of only [`RUNTIME_FILES`], made from `full` once
/// (a stamp follows `full`'s).
fn slim_rootfs(full: &Path, slim: &Path) -> anyhow::Result<PathBuf> {
    let source_stamp = std::fs::read_to_string(full.join(".pytrace-fixture"))?;
    let wanted = format!("{source_stamp}{}\n", RUNTIME_FILES.join(" "));
    if std::fs::read_to_string(slim.join(".pytrace-fixture")).is_ok_and(|built| built == wanted) {
        return Ok(slim.to_owned());
    }
    step("assembling the runtime base: the C library, libgcc_s, the loader, CA certificates");
    if slim.exists() {
        std::fs::remove_dir_all(slim)?;
    }
    for file in RUNTIME_FILES {
        let target = slim.join(file);
        std::fs::create_dir_all(target.parent().context("a parent directory")?)?;
        // Resolved inside `full`: its absolute links point into it, not at the host.
        let mut source = full.join(file);
        while let Ok(link) = std::fs::read_link(&source) {
            source = if link.is_absolute() {
                full.join(link.strip_prefix("/")?)
            } else {
                source.parent().context("a parent directory")?.join(link)
            };
        }
        std::fs::copy(&source, &target).with_context(|| format!("copying {}", source.display()))?;
    }
    for dir in ["tmp", "var/lib/pytrace/spool", "usr/local/bin"] {
        std::fs::create_dir_all(slim.join(dir))?;
    }
    std::fs::write(slim.join(".pytrace-fixture"), wanted)?;
    Ok(slim.to_owned())
}

fn ensure_containers_conf(cache: &Path) -> anyhow::Result<PathBuf> {
    let containers_conf = cache.join("containers.conf");
    // The VM lacks CAP_SYS_RESOURCE, so podman's default rlimits cannot be set.
    std::fs::write(&containers_conf, "[containers]\ndefault_ulimits = []\n")?;
    Ok(containers_conf)
}

fn ensure_packages() -> anyhow::Result<()> {
    shell::ensure_apt_packages(PACKAGES, "debootstrap, podman, runc and Debian's static OpenSSL")
}

/// A root file system, built with `debootstrap` when missing (its `I:`
/// lines show the progress); a stamp names what it was built with.
fn ensure_rootfs(cache: &Path, spec: &Rootfs) -> anyhow::Result<PathBuf> {
    let rootfs = cache.join(spec.dir);
    let stamp = rootfs.join(".pytrace-fixture");
    let wanted = format!("debootstrap --variant=minbase --include={} {}\n", spec.include, spec.suite);
    if std::fs::read_to_string(&stamp).is_ok_and(|built| built == wanted) {
        step(&format!("{}: present ({})", spec.what, rootfs.display()));
        return Ok(rootfs);
    }
    step(&format!("building a {} (debootstrap, about a minute)", spec.what));
    let partial = cache.join(format!("{}.partial", spec.dir));
    for stale in [&partial, &rootfs] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    shell::run(
        Command::new("timeout")
            .args([DEBOOTSTRAP_TIMEOUT, "debootstrap", "--variant=minbase"])
            .arg(format!("--include={}", spec.include))
            .arg(spec.suite)
            .arg(&partial),
    )
    .with_context(|| format!("debootstrap could not build the {}", spec.what))?;
    for file in spec.must_have {
        if !partial.join(file).exists() {
            bail!("the {} has no /{file}", spec.what);
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

/// The podman image `repository` of a root file system, imported when
/// missing. Its tag follows the root file system's inode, so a rebuilt one
/// is imported anew.
fn ensure_image(rootfs: &Path, repository: &str, containers_conf: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let generation = std::fs::metadata(rootfs.join(".pytrace-fixture"))?.ino();
    let image = format!("{repository}:{generation}");
    let exists = podman(containers_conf).args(["image", "exists", &image]).status().is_ok_and(|s| s.success());
    if exists {
        step(&format!("podman image {image}: present"));
        return Ok(image);
    }
    step(&format!("importing {} as podman image {image}", rootfs.display()));
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
        bail!("podman could not import {}", rootfs.display());
    }
    Ok(image)
}
