//! Finding the TLS library a target uses: the OpenSSL objects it maps now
//! — a shared `libssl`, or OpenSSL linked statically into any object (the
//! executable, libpython, an extension module), found through `.symtab` as
//! well as `.dynsym` — and, when `ssl` is not imported yet, the `libssl` its
//! `_ssl` module *will* load, so probes can be in place before the first
//! request.
//!
//! Every mapped object is looked at once (by file identity): first a glance
//! at its symbol-name tables for `SSL_write`, and only then its symbols; an
//! object that holds a TLS stack pytrace cannot probe — OpenSSL stripped of
//! its symbols, BoringSSL, rustls — is recognised by its read-only data and
//! named, so the user learns why its HTTPS is not seen.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::elf::Elf;
use super::process::TargetProcess;
use super::x86;
pub use crate::probes::sites::{FileId, TLS_FUNCTIONS, TlsLibrary};

/// A TLS stack pytrace sees in an object but cannot probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnusableTls {
    /// OpenSSL's code is there, its symbols are not.
    StrippedOpenSsl,
    BoringSsl,
    Rustls,
}

impl std::fmt::Display for UnusableTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StrippedOpenSsl => "OpenSSL linked in without its symbols (stripped)",
            Self::BoringSsl => "BoringSSL, not supported",
            Self::Rustls => "rustls, not supported",
        })
    }
}

/// Result of one search.
#[derive(Debug, Default)]
pub struct TlsSearch {
    pub libraries: Vec<TlsLibrary>,
    /// Objects holding a TLS stack that cannot be probed.
    pub unusable: Vec<(String, UnusableTls)>,
    /// Where OpenSSL was looked for and not found (the executable, the
    /// interpreter, TLS-named libraries), for the "none usable" message.
    pub without_tls: Vec<String>,
}

impl TlsSearch {
    /// One line: what was examined, and why none of it can be probed.
    pub fn explain(&self) -> String {
        let mut parts: Vec<String> = self.unusable.iter().map(|(path, why)| format!("{path}: {why}")).collect();
        parts.extend(self.without_tls.iter().map(|path| format!("{path}: no OpenSSL")));
        if parts.is_empty() { "no object holds a TLS library".to_owned() } else { parts.join("; ") }
    }
}

pub fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Looks at the target's mapped objects not in `known` (examined already),
/// and adds them to it.
pub fn find_mapped(target: &TargetProcess, known: &mut HashSet<FileId>) -> TlsSearch {
    let mut search = TlsSearch::default();
    for file in &target.mapped {
        if !known.insert(file.id()) {
            continue;
        }
        let host_path = target.host_path(file);
        let (Some(id), Ok(elf)) = (file_id(&host_path), Elf::open(&host_path)) else { continue };
        match examine(&elf) {
            Examined::OpenSsl => {
                if let Some(library) = inspect(&elf, &file.path, host_path, id, true) {
                    search.libraries.push(library);
                }
            }
            Examined::Unusable(why) => search.unusable.push((file.path.clone(), why)),
            Examined::Nothing if worth_naming(&file.path, &target.executable) => {
                search.without_tls.push(file.path.clone());
            }
            Examined::Nothing => {}
        }
    }
    search
}

/// What an object holds, as far as TLS goes.
#[derive(Debug, PartialEq, Eq)]
enum Examined {
    /// It defines OpenSSL's functions (shared or static, with symbols).
    OpenSsl,
    Unusable(UnusableTls),
    Nothing,
}

/// A glance first: most objects name no `SSL_write` and hold no TLS code.
fn examine(elf: &Elf) -> Examined {
    if elf.names_contain("SSL_write") && defines_ssl_write(elf) {
        return Examined::OpenSsl;
    }
    if elf.rodata_contains("BoringSSL") {
        Examined::Unusable(UnusableTls::BoringSsl)
    } else if elf.rodata_contains("ssl/statem/") {
        // The file names OpenSSL's libssl records for its errors.
        Examined::Unusable(UnusableTls::StrippedOpenSsl)
    } else if elf.rodata_contains("rustls") {
        Examined::Unusable(UnusableTls::Rustls)
    } else {
        Examined::Nothing
    }
}

/// Whether `elf` defines (not merely calls) one of OpenSSL's write functions.
fn defines_ssl_write(elf: &Elf) -> bool {
    ["SSL_write", "SSL_write_ex"].iter().any(|name| elf.symbol(name).is_some_and(|s| s.file_offset.is_some()))
}

/// Objects named in the "none usable" message even when they hold no TLS:
/// the executable, the interpreter and TLS-named libraries.
fn worth_naming(path: &str, executable: &str) -> bool {
    let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.starts_with("libssl") || name.starts_with("libpython") || path == executable
}

/// The `libssl` that the target's `_ssl` extension module links against,
/// resolved as the dynamic loader would inside the target's filesystem.
pub fn predict_libssl(target: &TargetProcess) -> Option<TlsLibrary> {
    let python = target.python.as_ref()?;
    let module = find_ssl_module(target, &python.object_path, &python.version)?;
    let (needed, runpath) = Elf::open(&target.root_path(&module)).ok()?.dependencies();
    let libssl = needed.iter().find(|n| n.starts_with("libssl"))?;
    let module_dir = Path::new(&module).parent()?.to_string_lossy().into_owned();
    let dirs = runpath
        .iter()
        .map(|d| d.replace("$ORIGIN", &module_dir))
        .chain(STANDARD_LIBRARY_DIRS.iter().map(|d| d.to_string()));
    for dir in dirs {
        let path = format!("{}/{libssl}", dir.trim_end_matches('/'));
        let host_path = target.root_path(&path);
        if let Some(id) = file_id(&host_path) {
            return inspect(&Elf::open(&host_path).ok()?, &path, host_path, id, false);
        }
    }
    None
}

const STANDARD_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// `<prefix>/lib/python3.X/lib-dynload/_ssl.cpython-3X-*.so`, where the
/// prefix is the parent of the interpreter object's `bin/` or `lib/`.
fn find_ssl_module(target: &TargetProcess, object_path: &str, version: &str) -> Option<String> {
    let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let prefix = Path::new(object_path).parent()?.parent()?;
    let candidates = [
        prefix.join(format!("lib/python{minor}/lib-dynload")),
        PathBuf::from(format!("/usr/lib/python{minor}/lib-dynload")),
    ];
    for dir in candidates {
        let Ok(entries) = std::fs::read_dir(target.root_path(&dir.to_string_lossy())) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("_ssl.") && name.ends_with(".so") {
                return Some(dir.join(name).to_string_lossy().into_owned());
            }
        }
    }
    None
}

fn inspect(elf: &Elf, path: &str, host_path: PathBuf, id: FileId, mapped: bool) -> Option<TlsLibrary> {
    let mut symbols: Vec<(&'static str, u64)> = Vec::new();
    for function in TLS_FUNCTIONS {
        if let Some(offset) = elf.symbol(function).and_then(|location| location.file_offset) {
            symbols.push((function, offset));
        }
    }
    let has_io = symbols.iter().any(|(name, _)| name.starts_with("SSL_write"));
    let mut covered_by_callee = Vec::new();
    if has_io {
        covered_by_callee = probe_shared_callees(elf, &mut symbols);
    }
    has_io.then(|| TlsLibrary { path: path.to_owned(), host_path, id, symbols, covered_by_callee, mapped })
}

/// OpenSSL 3's `SSL_read_ex` and `SSL_read` both call `ssl_read_internal`
/// (`SSL_write*` likewise), and Debian's `SSL_read_ex` starts with
/// `sub $0x8,%rsp`, which the kernel cannot emulate: ≈10 µs per probe hit
/// instead of ≈1 µs. When `SSL_read_ex` passes its arguments straight on to
/// a callee whose first instruction is emulated, and `SSL_read` provably
/// calls that callee too, the callee is probed — entry and return, with
/// `SSL_read_ex`'s programs — and `SSL_read` not at all: every call of
/// either is seen once, cheaply. Returns the functions left unprobed.
fn probe_shared_callees(elf: &Elf, symbols: &mut Vec<(&'static str, u64)>) -> Vec<&'static str> {
    let mut covered = Vec::new();
    for (extended, plain) in [("SSL_read_ex", "SSL_read"), ("SSL_write_ex", "SSL_write")] {
        let code_of = |name: &str| {
            let location = elf.symbol(name)?;
            Some((elf.bytes_at(location.file_offset?, 64), location.address))
        };
        let Some((code, address)) = code_of(extended) else { continue };
        let Some(callee) = x86::leading_callee(code, address) else { continue };
        let Some(callee_offset) = elf.file_offset(callee) else { continue };
        if !x86::is_emulated(elf.bytes_at(callee_offset, 16)) {
            continue;
        }
        let plain_calls_it = match code_of(plain) {
            Some((code, address)) => x86::early_callees(code, address).contains(&callee),
            None => true,
        };
        if !plain_calls_it {
            continue;
        }
        if symbols.iter().any(|(name, _)| *name == plain) {
            covered.push(plain);
        }
        symbols.retain(|(name, _)| *name != plain);
        for (name, offset) in symbols.iter_mut() {
            if *name == extended {
                *offset = callee_offset;
            }
        }
        tracing::debug!(extended, plain, callee = format_args!("{callee:#x}"), "probing the shared callee");
    }
    covered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examined(path: &str) -> Examined {
        examine(&Elf::open(Path::new(path)).unwrap())
    }

    #[test]
    fn tells_openssl_from_objects_without_tls() {
        assert_eq!(examined("/usr/lib/x86_64-linux-gnu/libssl.so.3"), Examined::OpenSsl);
        assert_eq!(examined("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"), Examined::Nothing);
        assert_eq!(examined("/usr/bin/true"), Examined::Nothing);
    }

    #[test]
    fn explains_why_nothing_is_usable() {
        let search = TlsSearch {
            libraries: Vec::new(),
            unusable: vec![("/app/client.so".into(), UnusableTls::StrippedOpenSsl)],
            without_tls: vec!["/usr/bin/python3.14".into()],
        };
        assert_eq!(
            search.explain(),
            "/app/client.so: OpenSSL linked in without its symbols (stripped); /usr/bin/python3.14: no OpenSSL"
        );
    }
}
