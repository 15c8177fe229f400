//! What pytrace needs from ELF files: exported symbol addresses converted to
//! file offsets (what uprobes attach to), shared-library dependencies, and a
//! symbol's bytes (CPython's `Py_Version`). Local symbols are found too when
//! the file is not stripped.

use std::path::{Path, PathBuf};

use object::read::elf::{Dyn as _, ElfFile64};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an ELF file pytrace understands: {source}")]
    Parse { path: PathBuf, source: object::Error },
}

/// A parsed ELF file, mapped rather than read: only the pages looked at
/// (headers, symbol tables, a few functions) become pytrace's memory, which
/// matters for a 30 MB unstripped `libpython`.
pub struct Elf {
    data: memmap2::Mmap,
}

/// A defined symbol: its virtual address and where it lives in the file
/// (`None` for zero-initialised data, which has no bytes in the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolLocation {
    pub address: u64,
    pub file_offset: Option<u64>,
    pub size: u64,
}

/// A loadable segment's virtual addresses and permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    pub range: std::ops::Range<u64>,
    pub writable: bool,
    pub executable: bool,
}

impl Elf {
    pub fn open(path: &Path) -> Result<Self, ElfError> {
        let read_error = |source| ElfError::Read { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let data = crate::sys::map_executable(&file).map_err(read_error)?;
        object::File::parse(&*data).map_err(|source| ElfError::Parse { path: path.to_owned(), source })?;
        Ok(Self { data })
    }

    fn file(&self) -> object::File<'_> {
        object::File::parse(&*self.data).expect("parsed in Elf::open")
    }

    /// Finds a defined symbol in the dynamic symbol table, then the full one.
    pub fn symbol(&self, name: &str) -> Option<SymbolLocation> {
        self.find_symbol(|symbol| symbol == name)
    }

    /// Finds a defined symbol that is `name` or a compiler-renamed local
    /// copy of it (`name.0`, `name.17`: a function-level `static`).
    pub fn local_symbol(&self, name: &str) -> Option<SymbolLocation> {
        self.find_symbol(|symbol| {
            symbol.strip_prefix(name).is_some_and(|rest| {
                rest.is_empty() || rest.strip_prefix('.').is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
    }

    fn find_symbol(&self, wanted: impl Fn(&str) -> bool) -> Option<SymbolLocation> {
        let file = self.file();
        let symbol =
            file.dynamic_symbols().chain(file.symbols()).find(|s| s.is_definition() && s.name().is_ok_and(&wanted))?;
        let address = symbol.address();
        Some(SymbolLocation { address, file_offset: self.file_offset(address), size: symbol.size() })
    }

    /// Whether a symbol-name table (`.dynstr`, or `.strtab` when the file
    /// is not stripped) holds `name`: a look at a few pages that tells, before
    /// any symbol table is searched, whether the file can define it.
    pub fn names_contain(&self, name: &str) -> bool {
        self.section_contains(&[".dynstr", ".strtab"], name.as_bytes())
    }

    /// Whether the read-only data (`.rodata`) holds `text`.
    pub fn rodata_contains(&self, text: &str) -> bool {
        self.section_contains(&[".rodata"], text.as_bytes())
    }

    fn section_contains(&self, sections: &[&str], needle: &[u8]) -> bool {
        let file = self.file();
        sections
            .iter()
            .filter_map(|name| file.section_by_name(name))
            .any(|section| section.data().is_ok_and(|data| memchr::memmem::find(data, needle).is_some()))
    }

    /// Where the byte at virtual address `address` is stored in the file.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        self.file().segments().find_map(|segment| {
            let (offset, size) = segment.file_range();
            let start = segment.address();
            (address >= start && address < start + size).then(|| address - start + offset)
        })
    }

    /// Up to `len` bytes of the file from `offset`.
    pub fn bytes_at(&self, offset: u64, len: usize) -> &[u8] {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.data.len());
        &self.data[start..start.saturating_add(len).min(self.data.len())]
    }

    /// The bytes of a symbol's initial value, as stored in the file.
    pub fn symbol_bytes(&self, name: &str) -> Option<&[u8]> {
        let location = self.symbol(name)?;
        let start = usize::try_from(location.file_offset?).ok()?;
        self.data.get(start..start.checked_add(usize::try_from(location.size).ok()?)?)
    }

    /// The loadable segments: (virtual address range, writable, executable).
    pub fn load_segments(&self) -> Vec<LoadSegment> {
        self.file()
            .segments()
            .map(|segment| {
                let flags = match segment.flags() {
                    object::SegmentFlags::Elf { p_flags } => p_flags,
                    _ => 0,
                };
                LoadSegment {
                    range: segment.address()..segment.address() + segment.size(),
                    writable: flags & object::elf::PF_W != 0,
                    executable: flags & object::elf::PF_X != 0,
                }
            })
            .collect()
    }

    /// The lowest virtual address a loadable segment asks for (0 for
    /// shared objects and PIE executables).
    pub fn lowest_load_address(&self) -> u64 {
        self.file().segments().map(|s| s.address()).min().unwrap_or(0)
    }

    /// `DT_NEEDED` libraries and `DT_RUNPATH`/`DT_RPATH` directories.
    pub fn dependencies(&self) -> (Vec<String>, Vec<String>) {
        let Ok(elf) = ElfFile64::<object::Endianness>::parse(&*self.data) else {
            return Default::default();
        };
        let endian = elf.endian();
        let sections = elf.elf_section_table();
        let Ok(Some((entries, strings_index))) = sections.dynamic(endian, &*self.data) else {
            return Default::default();
        };
        let Ok(strings) = sections.strings(endian, &*self.data, strings_index) else {
            return Default::default();
        };
        let (mut needed, mut search) = (Vec::new(), Vec::new());
        for entry in entries {
            let tag = entry.d_tag(endian) as u32;
            let value = entry.d_val(endian) as u32;
            let text = || strings.get(value).ok().map(|s| String::from_utf8_lossy(s).into_owned());
            match tag {
                object::elf::DT_NEEDED => needed.extend(text()),
                object::elf::DT_RUNPATH | object::elf::DT_RPATH => {
                    search.extend(text().into_iter().flat_map(|s| s.split(':').map(str::to_owned).collect::<Vec<_>>()))
                }
                _ => {}
            }
        }
        (needed, search)
    }
}
