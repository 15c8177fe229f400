//! Parsing of `/proc/PID/maps`: which files a process has mapped, with the
//! device and inode that identify each file across mount namespaces.

/// One mapped file (several mappings of the same file collapse into one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    /// Path as the process sees it (inside its mount namespace).
    pub path: String,
    /// Start and end address of its first mapping (for `/proc/PID/map_files`).
    pub first_range: (u64, u64),
    /// Device (`major:minor` as text) and inode: the file's identity.
    pub dev: String,
    pub inode: u64,
    /// The file was deleted or replaced after being mapped.
    pub deleted: bool,
}

/// Mapped files in first-mapping order, without anonymous or special
/// mappings. `root`: the target's root directory as the reader sees it (a
/// chroot), which the kernel puts in front of every path; it is taken off.
pub fn parse_maps(text: &str, root: Option<&str>) -> Vec<MappedFile> {
    let mut files: Vec<MappedFile> = Vec::new();
    for line in text.lines() {
        let Some(mut entry) = parse_line(line) else {
            continue;
        };
        entry.path = as_target_sees(&entry.path, root);
        if !files.iter().any(|f| f.inode == entry.inode && f.dev == entry.dev) {
            files.push(entry);
        }
    }
    files
}

/// `path`, shown from pytrace's side, as the target sees it: without the
/// target's root directory in front.
pub fn as_target_sees(path: &str, root: Option<&str>) -> String {
    match root.and_then(|root| path.strip_prefix(root)) {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => path.to_owned(),
    }
}

impl MappedFile {
    /// The file's identity as `stat` would give it (`st_dev`, `st_ino`),
    /// known without a system call.
    pub fn id(&self) -> (u64, u64) {
        let (major, minor) = self.dev.split_once(':').unwrap_or_default();
        let number = |hex: &str| u32::from_str_radix(hex, 16).unwrap_or(0);
        (crate::sys::makedev(number(major), number(minor)), self.inode)
    }
}

fn parse_line(line: &str) -> Option<MappedFile> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let _perms = fields.next()?;
    let _offset = fields.next()?;
    let dev = fields.next()?;
    let inode: u64 = fields.next()?.parse().ok()?;
    let path = fields.next()?.trim_start();
    if inode == 0 || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let first_range = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Some(MappedFile { path: path.to_owned(), first_range, dev: dev.to_owned(), inode, deleted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_paths_as_the_target_sees_them() {
        let root = Some("/var/cache/rootfs");
        assert_eq!(as_target_sees("/var/cache/rootfs/usr/bin/python3.14", root), "/usr/bin/python3.14");
        assert_eq!(as_target_sees("/var/cache/rootfs-other/x", root), "/var/cache/rootfs-other/x");
        assert_eq!(as_target_sees("/usr/lib/libssl.so.3", None), "/usr/lib/libssl.so.3");
    }

    const MAPS: &str = "\
00400000-00401000 r--p 00000000 fe:01 1234   /usr/bin/python3.11
7f0000000000-7f0000001000 r--p 00000000 fe:01 555    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f0000001000-7f0000002000 r-xp 00001000 fe:01 555    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f0000003000-7f0000004000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0      [stack]
7f0000005000-7f0000006000 r-xp 00000000 fe:01 777    /tmp/my lib.so (deleted)
";

    #[test]
    fn lists_each_mapped_file_once() {
        let files = parse_maps(MAPS, None);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/tmp/my lib.so"]);
        assert_eq!(files[1].first_range, (0x7f0000000000, 0x7f0000001000));
        assert!(files[2].deleted);
        assert_eq!(files[1].inode, 555);
    }

    #[test]
    fn knows_a_file_s_identity_as_stat_gives_it() {
        use std::os::unix::fs::MetadataExt as _;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let file = parse_maps(&maps, None).into_iter().find(|f| f.path.contains("libc")).unwrap();
        let meta = std::fs::metadata(&file.path).unwrap();
        assert_eq!(file.id(), (meta.dev(), meta.ino()));
    }

    #[test]
    fn ignores_malformed_lines() {
        assert!(parse_maps("garbage\n\n1-2 r 0 0 x /a", None).is_empty());
    }

    #[test]
    fn takes_a_chroot_off_the_paths() {
        let maps = "00400000-00422000 r--p 00000000 fe:00 816448   /srv/rootfs/usr/bin/python3.14\n";
        assert_eq!(parse_maps(maps, Some("/srv/rootfs"))[0].path, "/usr/bin/python3.14");
    }
}
