//! The kernel matrix's kernels: Debian's current kernel of each suite a
//! fleet runs — bookworm (6.1), trixie (6.12), trixie-backports and sid —
//! and bullseye's 5.10, below pytrace's minimum (the tests check that it is
//! refused in one line). Each suite's version is read from its
//! `linux-image-amd64` (pinned versions vanish from sid), the package fetched
//! with `apt-get download` through a private `APT_CONFIG` (its own sources
//! list, lists, cache and empty status, reusing Debian's mirror; the
//! system's sources are never touched), and only its vmlinuz kept, cached
//! under `/var/cache/pytrace-tests/kernels/SUITE`. The package lists are
//! refreshed once a day; without the network the cached kernels serve.
//!
//! Also installs what boots them: QEMU, a static busybox and cpio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};

use crate::shell::{self, output, step};

/// The suites, in the order the matrix runs them.
pub const SUITES: &[&str] = &["bookworm", "trixie", "trixie-backports", "sid", "bullseye"];

const MIRROR: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Packages that boot and fill the guests.
const PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static", "cpio"];
/// How long the private package lists are trusted before they are read again.
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Writes the matrix's manifest — one `SUITE RELEASE VMLINUZ` line per
/// kernel — and returns its path.
pub fn ensure(cache: &Path) -> anyhow::Result<PathBuf> {
    shell::ensure_apt_packages(PACKAGES, "QEMU, busybox and cpio (kernel matrix)")?;
    let dir = cache.join("kernels");
    let apt = PrivateApt::new(&dir.join("apt"))?;
    apt.refresh_lists();
    let mut manifest = String::new();
    for suite in SUITES {
        let kernel = dir.join(suite);
        let cached = std::fs::read_to_string(kernel.join("release")).ok().map(|r| r.trim().to_owned());
        let current = apt.current_image(suite);
        let release = match (current, cached) {
            (Some((release, _)), Some(cached)) if release == cached => {
                step(&format!("kernel matrix: {suite} {release}: present"));
                release
            }
            (Some((release, package)), _) => {
                step(&format!("kernel matrix: fetching {suite}'s kernel {release} ({package})"));
                apt.fetch_vmlinuz(&release, &package, &kernel)
                    .with_context(|| format!("fetching {suite}'s kernel {release}"))?;
                release
            }
            (None, Some(cached)) => {
                step(&format!("kernel matrix: {suite} {cached}: cached (the package lists could not be read)"));
                cached
            }
            (None, None) => {
                step(&format!("kernel matrix: no kernel for {suite} (not on the mirror, or no network)"));
                continue;
            }
        };
        manifest.push_str(&format!("{suite} {release} {}\n", kernel.join("vmlinuz").display()));
    }
    let path = dir.join("matrix.txt");
    std::fs::write(&path, manifest)?;
    Ok(path)
}

/// apt with a configuration of its own, for packages of other suites.
struct PrivateApt {
    dir: PathBuf,
    config: PathBuf,
}

impl PrivateApt {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        for sub in ["lists/partial", "cache/archives/partial", "download"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let status = dir.join("status");
        if !status.exists() {
            std::fs::write(&status, "")?;
        }
        let sources: String =
            SUITES.iter().map(|suite| format!("deb [signed-by={KEYRING}] {MIRROR} {suite} main\n")).collect();
        std::fs::write(dir.join("sources.list"), sources)?;
        let d = dir.display();
        let config = dir.join("apt.conf");
        std::fs::write(
            &config,
            format!(
                "Dir::State \"{d}\";\nDir::State::Lists \"{d}/lists\";\nDir::State::status \"{d}/status\";\n\
                 Dir::Etc::SourceList \"{d}/sources.list\";\nDir::Etc::SourceParts \"/nonexistent\";\n\
                 Dir::Cache \"{d}/cache\";\nAPT::Architecture \"amd64\";\nAPT::Sandbox::User \"root\";\nAcquire::Languages \"none\";\n\
                 Acquire::IndexTargets::deb::DEP-11::DefaultEnabled \"false\";\n\
                 Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled \"false\";\n\
                 Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled \"false\";\n"
            ),
        )?;
        Ok(Self { dir: dir.to_owned(), config })
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("APT_CONFIG", &self.config);
        command
    }

    /// Reads the suites' package lists when older than a day. Best effort:
    /// a suite the mirror no longer serves, or no network, leaves the lists
    /// that could be read (and the cached kernels) to serve.
    fn refresh_lists(&self) {
        let stamp = self.dir.join("lists/.pytrace-updated");
        let age = std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok());
        if age.is_some_and(|age| age < LISTS_MAX_AGE) {
            return;
        }
        step("kernel matrix: reading the suites' package lists (apt-get update, private configuration)");
        if self.command("apt-get").args(["-q", "update"]).status().is_ok_and(|s| s.success()) {
            let _ = std::fs::write(&stamp, "");
        } else {
            step("kernel matrix: some package lists could not be read; the others and the cached kernels serve");
        }
    }

    /// The suite's current kernel: (release, image package), read from the
    /// Depends of its `linux-image-amd64`.
    fn current_image(&self, suite: &str) -> Option<(String, String)> {
        let show = output(self.command("apt-cache").args(["show", &format!("linux-image-amd64/{suite}")]))?;
        let depends = show.lines().find_map(|line| line.strip_prefix("Depends: "))?;
        let package = depends
            .split(',')
            .map(|d| d.trim().split(' ').next().unwrap_or_default())
            .find(|name| name.starts_with("linux-image-") && name != &"linux-image-amd64")?
            .to_owned();
        let release = package.strip_prefix("linux-image-")?.to_owned();
        Some((release, package))
    }

    /// Downloads the image package (and, for newer kernels, the
    /// `linux-binary` package it depends on, which holds the vmlinuz) and
    /// keeps only the vmlinuz, as `kernel/vmlinuz` with `kernel/release`.
    fn fetch_vmlinuz(&self, release: &str, package: &str, kernel: &Path) -> anyhow::Result<()> {
        let download = self.dir.join("download");
        let _ = std::fs::remove_dir_all(&download);
        std::fs::create_dir_all(&download)?;
        let binary = format!("linux-binary-{release}");
        let mut packages = vec![package.to_owned()];
        if output(self.command("apt-cache").args(["show", &binary])).is_some() {
            packages = vec![binary];
        }
        shell::run(self.command("apt-get").args(["-q", "download"]).args(&packages).current_dir(&download))?;
        let unpacked = download.join("unpacked");
        std::fs::create_dir_all(&unpacked)?;
        for deb in std::fs::read_dir(&download)?.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "deb"))
        {
            // Only the vmlinuz: an image package also holds ~400 MB of modules.
            let extract = format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards '*vmlinuz*'",
                deb.path().display(),
                unpacked.display()
            );
            shell::run(Command::new("sh").args(["-c", &extract]))?;
        }
        let candidates = [
            unpacked.join(format!("boot/vmlinuz-{release}")),
            unpacked.join(format!("usr/lib/modules/{release}/vmlinuz")),
        ];
        let Some(vmlinuz) = candidates.iter().find(|path| path.exists()) else {
            bail!("no vmlinuz in {}", packages.join(", "));
        };
        std::fs::create_dir_all(kernel)?;
        std::fs::copy(vmlinuz, kernel.join("vmlinuz"))?;
        std::fs::write(kernel.join("release"), format!("{release}\n"))?;
        std::fs::remove_dir_all(&download)?;
        Ok(())
    }
}
