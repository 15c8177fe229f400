//! Which kernels pytrace's programs are for: 6.1 and later, the oldest
//! release they are proven to load and trace on (`cargo xtask test` boots
//! Debian's kernels in QEMU; docs/kernels.md). Older kernels are refused
//! before anything is loaded, in one line naming what they lack.

use std::fmt;

/// The oldest kernel release the programs are proven on.
pub const MINIMUM: (u32, u32) = (6, 1);

/// Set to 1 to try the programs on an older kernel anyway (a distribution
/// kernel with backported BPF features, such as RHEL 9's 5.14).
pub const OVERRIDE_VARIABLE: &str = "PYTRACE_ANY_KERNEL";

/// A kernel release older than [`MINIMUM`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TooOld {
    pub release: String,
}

impl fmt::Display for TooOld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = MINIMUM;
        let missing = match version(&self.release) {
            Some(version) if version < (5, 17) => "it has no bpf_loop (5.17), which the stack walks and copies use",
            _ => "no kernel between 5.17 and 6.0 could be tested",
        };
        write!(
            f,
            "Linux {} is older than {major}.{minor}, the oldest kernel pytrace's programs are proven on: {missing} \
             (set {OVERRIDE_VARIABLE}=1 to try anyway)",
            self.release
        )
    }
}

/// (major, minor) of a release string such as `6.1.0-50-amd64`.
pub fn version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.trim().split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??))
}

/// Whether `release` is one the programs are for (an unreadable one is given the benefit of the doubt).
pub fn supported(release: &str) -> Result<(), TooOld> {
    match version(release) {
        Some(version) if version < MINIMUM => Err(TooOld { release: release.trim().to_owned() }),
        _ => Ok(()),
    }
}

/// This machine's kernel release.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|r| r.trim().to_owned()).unwrap_or_default()
}

/// Whether [`OVERRIDE_VARIABLE`] says to try an older kernel anyway.
pub fn overridden() -> bool {
    std::env::var(OVERRIDE_VARIABLE).is_ok_and(|value| value == "1")
}

/// This machine's kernel, unless [`overridden`].
pub fn check_this_kernel() -> Result<(), TooOld> {
    if overridden() {
        return Ok(());
    }
    supported(&release())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_releases_and_refuses_older_kernels_naming_what_they_lack() {
        assert_eq!(version("6.1.0-50-amd64\n"), Some((6, 1)));
        assert_eq!(version("7.3.4+deb13-amd64"), Some((7, 3)));
        assert!(supported("6.1.0-50-amd64").is_ok());
        assert!(supported("6.18.44-fc").is_ok());
        assert!(supported("").is_ok(), "an unreadable release is not refused");
        let bullseye = supported("5.10.0-32-amd64").unwrap_err().to_string();
        assert!(bullseye.starts_with("Linux 5.10.0-32-amd64 is older than 6.1"), "{bullseye}");
        assert!(bullseye.contains("no bpf_loop (5.17)"), "{bullseye}");
        assert!(!bullseye.contains('\n'), "one line");
        let untested = supported("5.19.0-1").unwrap_err().to_string();
        assert!(untested.contains("no kernel between 5.17 and 6.0 could be tested"), "{untested}");
    }
}
