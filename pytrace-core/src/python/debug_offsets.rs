//! CPython's own map of its structures: `_Py_DebugOffsets`, which 3.13 and
//! later place at the start of `_PyRuntime` for out-of-process tools
//! (cookie `xdebugpy`, `PY_VERSION_HEX`, a free-threaded flag, then blocks of
//! `uint64_t` offsets and sizes: runtime, interpreter, thread state, frame,
//! code object, …, unicode).
//!
//! The struct itself grows between minor versions — 3.14 adds interpreter,
//! frame and code fields and a set block; 3.15 adds thread-state fields, an
//! exception block, type fields and a heap-type block — so each known
//! version's declaration is written down here as the list of its blocks and
//! fields, exactly as in `Include/internal/pycore_debug_offsets.h`, and a
//! field's position is counted from it. The offsets themselves are always
//! read from the target. Parsing is pure: bytes in, offsets out.

/// The cookie that opens the struct.
pub const COOKIE: &[u8; 8] = b"xdebugpy";

/// Bytes read from `_PyRuntime` to parse: every known schema's blocks up
/// to the unicode block, with room to spare.
pub const READ_LEN: usize = 1024;

/// The newest minor version whose declaration is known.
pub const NEWEST_KNOWN_MINOR: u32 = 15;

/// One block of the struct: its name and its fields, in order.
type Block = (&'static str, &'static [&'static str]);

// The blocks, each under the versions that declare it so; a later version
// that changes a block gets a block of its own.

const RUNTIME: Block = ("runtime_state", &["size", "finalizing", "interpreters_head"]);

const INTERPRETER_3_13: Block = (
    "interpreter_state",
    &[
        "size",
        "id",
        "next",
        "threads_head",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
    ],
);

/// `threads_main` after `threads_head`; the code-object and thread-local
/// bytecode generations at the end.
const INTERPRETER_3_14: Block = (
    "interpreter_state",
    &[
        "size",
        "id",
        "next",
        "threads_head",
        "threads_main",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
        "code_object_generation",
        "tlbc_generation",
    ],
);

const THREAD_3_13: Block = (
    "thread_state",
    &["size", "prev", "next", "interp", "current_frame", "thread_id", "native_thread_id", "datastack_chunk", "status"],
);

/// `base_frame` and profiling fields before `thread_id`; GIL and exception
/// fields at the end.
const THREAD_3_15: Block = (
    "thread_state",
    &[
        "size",
        "prev",
        "next",
        "interp",
        "current_frame",
        "base_frame",
        "last_profiled_frame",
        "last_profiled_frame_seq",
        "thread_id",
        "native_thread_id",
        "datastack_chunk",
        "status",
        "holds_gil",
        "gil_requested",
        "current_exception",
        "exc_state",
    ],
);

const ERR_STACKITEM_3_15: Block = ("err_stackitem", &["exc_value"]);

const FRAME_3_13: Block =
    ("interpreter_frame", &["size", "previous", "executable", "instr_ptr", "localsplus", "owner"]);

const FRAME_3_14: Block = (
    "interpreter_frame",
    &["size", "previous", "executable", "instr_ptr", "localsplus", "owner", "stackpointer", "tlbc_index"],
);

const CODE_3_13: Block = (
    "code_object",
    &[
        "size",
        "filename",
        "name",
        "qualname",
        "linetable",
        "firstlineno",
        "argcount",
        "localsplusnames",
        "localspluskinds",
        "co_code_adaptive",
    ],
);

/// `co_tlbc` at the end.
const CODE_3_14: Block = (
    "code_object",
    &[
        "size",
        "filename",
        "name",
        "qualname",
        "linetable",
        "firstlineno",
        "argcount",
        "localsplusnames",
        "localspluskinds",
        "co_code_adaptive",
        "co_tlbc",
    ],
);

const PYOBJECT: Block = ("pyobject", &["size", "ob_type"]);
const TYPE_3_13: Block = ("type_object", &["size", "tp_name", "tp_repr", "tp_flags"]);
const TYPE_3_15: Block = ("type_object", &["size", "tp_name", "tp_repr", "tp_flags", "tp_basicsize", "tp_dictoffset"]);
const HEAP_TYPE_3_15: Block = ("heap_type_object", &["size", "ht_cached_keys"]);
const TUPLE: Block = ("tuple_object", &["size", "ob_item", "ob_size"]);
const LIST: Block = ("list_object", &["size", "ob_item", "ob_size"]);
const SET_3_14: Block = ("set_object", &["size", "used", "table", "mask"]);
const DICT: Block = ("dict_object", &["size", "ma_keys", "ma_values"]);
const FLOAT: Block = ("float_object", &["size", "ob_fval"]);
const LONG: Block = ("long_object", &["size", "lv_tag", "ob_digit"]);
const BYTES: Block = ("bytes_object", &["size", "ob_size", "ob_sval"]);
const UNICODE_3_13: Block = ("unicode_object", &["size", "state", "length", "asciiobject_size"]);
const UNICODE_3_15: Block =
    ("unicode_object", &["size", "state", "length", "asciiobject_size", "compactunicodeobject_size"]);

/// Each version's blocks up to `unicode_object`, the last one pytrace reads.
const V3_13: &[Block] = &[
    RUNTIME,
    INTERPRETER_3_13,
    THREAD_3_13,
    FRAME_3_13,
    CODE_3_13,
    PYOBJECT,
    TYPE_3_13,
    TUPLE,
    LIST,
    DICT,
    FLOAT,
    LONG,
    BYTES,
    UNICODE_3_13,
];
const V3_14: &[Block] = &[
    RUNTIME,
    INTERPRETER_3_14,
    THREAD_3_13,
    FRAME_3_14,
    CODE_3_14,
    PYOBJECT,
    TYPE_3_13,
    TUPLE,
    LIST,
    SET_3_14,
    DICT,
    FLOAT,
    LONG,
    BYTES,
    UNICODE_3_13,
];
const V3_15: &[Block] = &[
    RUNTIME,
    INTERPRETER_3_14,
    THREAD_3_15,
    ERR_STACKITEM_3_15,
    FRAME_3_14,
    CODE_3_14,
    PYOBJECT,
    TYPE_3_15,
    HEAP_TYPE_3_15,
    TUPLE,
    LIST,
    SET_3_14,
    DICT,
    FLOAT,
    LONG,
    BYTES,
    UNICODE_3_15,
];

/// Bytes before the first block: cookie, version, free-threaded flag.
const HEADER_LEN: usize = 24;

/// The declaration that describes a given minor version (the newest known
/// one for newer versions).
fn schema(minor: u32) -> Option<&'static [Block]> {
    match minor {
        13 => Some(V3_13),
        14 => Some(V3_14),
        15.. => Some(V3_15),
        _ => None,
    }
}

/// Where `block.field` lies in the struct, in bytes.
fn position(schema: &[Block], block: &str, field: &str) -> Option<usize> {
    let mut at = HEADER_LEN;
    for (name, fields) in schema {
        if *name == block {
            return Some(at + 8 * fields.iter().position(|f| *f == field)?);
        }
        at += 8 * fields.len();
    }
    None
}

/// The offsets pytrace uses, as the target published them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugOffsets {
    /// `PY_VERSION_HEX`: 0xMMmmppLS.
    pub version: u32,
    pub free_threaded: bool,
    pub interpreters_head: u64,
    pub threads_head: u64,
    pub tstate_next: u64,
    pub tstate_interp: u64,
    pub tstate_current_frame: u64,
    pub tstate_native_thread_id: u64,
    pub frame_previous: u64,
    pub frame_executable: u64,
    pub frame_instr_ptr: u64,
    pub frame_owner: u64,
    pub code_filename: u64,
    pub code_name: u64,
    pub code_qualname: u64,
    pub code_linetable: u64,
    pub code_firstlineno: u64,
    pub code_adaptive: u64,
    pub bytes_size: u64,
    pub bytes_data: u64,
    pub unicode_state: u64,
    pub unicode_length: u64,
    pub unicode_ascii_size: u64,
    /// Where a compact non-ASCII string's characters start.
    pub unicode_compact_size: u64,
}

impl DebugOffsets {
    pub fn minor(&self) -> u32 {
        (self.version >> 16) & 0xff
    }

    /// Whether this version is newer than every declaration pytrace knows
    /// (its offsets were read with the newest known one).
    pub fn is_newer_than_known(&self) -> bool {
        self.minor() > NEWEST_KNOWN_MINOR
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DebugOffsetsError {
    #[error("no _Py_DebugOffsets cookie at _PyRuntime (a debug or unusual build?)")]
    NoCookie,
    #[error("_Py_DebugOffsets names version {0:#010x}, which is not a CPython 3.13 or later")]
    InsaneVersion(u32),
    #[error("_Py_DebugOffsets is too short")]
    Truncated,
    #[error("_Py_DebugOffsets gives {block}.{field} = {value:#x}, outside its structure of {size:#x} bytes")]
    Implausible { block: &'static str, field: &'static str, value: u64, size: u64 },
}

/// Largest structure size believed: anything bigger means the declaration
/// does not match the bytes.
const MAX_STRUCT_SIZE: u64 = 1 << 20;

/// Parses the struct from the bytes at the start of `_PyRuntime`.
pub fn parse(bytes: &[u8]) -> Result<DebugOffsets, DebugOffsetsError> {
    if bytes.get(..8) != Some(COOKIE.as_slice()) {
        return Err(DebugOffsetsError::NoCookie);
    }
    let word = |at: usize| -> Result<u64, DebugOffsetsError> {
        let bytes = bytes.get(at..at + 8).ok_or(DebugOffsetsError::Truncated)?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| DebugOffsetsError::Truncated)?))
    };
    let version = u32::try_from(word(8)?).map_err(|_| DebugOffsetsError::InsaneVersion(u32::MAX))?;
    let (major, minor) = (version >> 24, (version >> 16) & 0xff);
    let schema = schema(minor).filter(|_| major == 3 && minor < 64).ok_or(DebugOffsetsError::InsaneVersion(version))?;
    let free_threaded = match word(16)? {
        0 => false,
        1 => true,
        _ => return Err(DebugOffsetsError::InsaneVersion(version)),
    };
    // An offset, checked to lie inside its block's structure (`size`, the
    // block's first field); `size` itself is checked to be plausible.
    let field = |block: &'static str, field: &'static str| -> Result<u64, DebugOffsetsError> {
        let size_at = position(schema, block, "size").ok_or(DebugOffsetsError::Truncated)?;
        let value_at = position(schema, block, field).ok_or(DebugOffsetsError::Truncated)?;
        let (size, value) = (word(size_at)?, word(value_at)?);
        if size == 0 || size > MAX_STRUCT_SIZE || value >= size {
            return Err(DebugOffsetsError::Implausible { block, field, value, size });
        }
        Ok(value)
    };
    // `PyASCIIObject` lies within `PyUnicodeObject`: the same check holds.
    let ascii_size = field("unicode_object", "asciiobject_size")?;
    let compact_size = match position(schema, "unicode_object", "compactunicodeobject_size") {
        Some(at) => word(at)?,
        // `PyCompactUnicodeObject` adds `utf8_length` and `utf8`.
        None => ascii_size + 16,
    };
    Ok(DebugOffsets {
        version,
        free_threaded,
        interpreters_head: field("runtime_state", "interpreters_head")?,
        threads_head: field("interpreter_state", "threads_head")?,
        tstate_next: field("thread_state", "next")?,
        tstate_interp: field("thread_state", "interp")?,
        tstate_current_frame: field("thread_state", "current_frame")?,
        tstate_native_thread_id: field("thread_state", "native_thread_id")?,
        frame_previous: field("interpreter_frame", "previous")?,
        frame_executable: field("interpreter_frame", "executable")?,
        frame_instr_ptr: field("interpreter_frame", "instr_ptr")?,
        frame_owner: field("interpreter_frame", "owner")?,
        code_filename: field("code_object", "filename")?,
        code_name: field("code_object", "name")?,
        code_qualname: field("code_object", "qualname")?,
        code_linetable: field("code_object", "linetable")?,
        code_firstlineno: field("code_object", "firstlineno")?,
        code_adaptive: field("code_object", "co_code_adaptive")?,
        bytes_size: field("bytes_object", "ob_size")?,
        bytes_data: field("bytes_object", "ob_sval")?,
        unicode_state: field("unicode_object", "state")?,
        unicode_length: field("unicode_object", "length")?,
        unicode_ascii_size: ascii_size,
        unicode_compact_size: compact_size,
    })
}

/// Test support: a `_Py_DebugOffsets` struct for a given version, laid out
/// by that version's declaration, with every field given a value.
#[cfg(any(test, feature = "testing"))]
pub mod build {
    use super::{Block, HEADER_LEN, position, schema};

    pub struct Builder {
        schema: &'static [Block],
        pub bytes: Vec<u8>,
    }

    impl Builder {
        /// A struct for 3.`minor` (`free_threaded` as the build flag) whose
        /// blocks all have a plausible size and every offset 8.
        pub fn new(minor: u32, free_threaded: bool) -> Self {
            let schema = schema(minor).expect("a known schema");
            let len = HEADER_LEN + 8 * schema.iter().map(|(_, fields)| fields.len()).sum::<usize>();
            let mut builder = Self { schema, bytes: vec![0; len] };
            builder.bytes[..8].copy_from_slice(super::COOKIE);
            builder.word(8, 0x0300_00f0 | (u64::from(minor) << 16));
            builder.word(16, u64::from(free_threaded));
            for (block, fields) in schema {
                for field in fields.iter() {
                    builder.set(block, field, if *field == "size" { 0x1000 } else { 8 });
                }
            }
            builder.set("unicode_object", "asciiobject_size", 40);
            builder
        }

        pub fn set(&mut self, block: &str, field: &str, value: u64) -> &mut Self {
            let at = position(self.schema, block, field).expect("a declared field");
            self.word(at, value);
            self
        }

        fn word(&mut self, at: usize, value: u64) {
            self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::Builder;
    use super::*;

    /// Positions inside the struct that pytrace's 3.13 support used (and
    /// verified against pyenv's 3.13.0), counted from the declaration.
    #[test]
    fn positions_match_the_3_13_header() {
        assert_eq!(position(V3_13, "runtime_state", "interpreters_head"), Some(40));
        assert_eq!(position(V3_13, "interpreter_state", "threads_head"), Some(72));
        assert_eq!(position(V3_13, "thread_state", "next"), Some(168));
        assert_eq!(position(V3_13, "thread_state", "native_thread_id"), Some(200));
        assert_eq!(position(V3_13, "interpreter_frame", "owner"), Some(264));
        assert_eq!(position(V3_13, "code_object", "co_code_adaptive"), Some(344));
        assert_eq!(position(V3_13, "unicode_object", "asciiobject_size"), Some(560));
    }

    /// Each version's added fields move what follows them.
    #[test]
    fn positions_move_with_each_version() {
        // threads_main after threads_head: the thread block starts 3 words later in 3.14.
        assert_eq!(position(V3_14, "thread_state", "next"), Some(168 + 24));
        // base_frame and two profiling fields before thread_id in 3.15.
        let native = |schema| position(schema, "thread_state", "native_thread_id").unwrap();
        assert_eq!(native(V3_15) - native(V3_14), 24);
        // 3.15's frame block comes after 7 more thread fields and err_stackitem.
        let owner = |schema| position(schema, "interpreter_frame", "owner").unwrap();
        assert_eq!(owner(V3_15) - owner(V3_14), 8 * 8);
        assert_eq!(position(V3_14, "unicode_object", "compactunicodeobject_size"), None);
        assert!(position(V3_15, "unicode_object", "compactunicodeobject_size").is_some());
    }

    #[test]
    fn reads_the_published_offsets_for_each_version() {
        for minor in [13, 14, 15] {
            let mut builder = Builder::new(minor, false);
            builder.set("thread_state", "native_thread_id", 0xb8).set("interpreter_frame", "owner", 0x4a).set(
                "code_object",
                "co_code_adaptive",
                0xd0,
            );
            let offsets = parse(&builder.bytes).unwrap();
            assert_eq!(offsets.minor(), minor);
            assert!(!offsets.free_threaded);
            assert_eq!(
                (offsets.tstate_native_thread_id, offsets.frame_owner, offsets.code_adaptive),
                (0xb8, 0x4a, 0xd0)
            );
            assert_eq!(offsets.unicode_ascii_size, 40);
            assert!(!offsets.is_newer_than_known());
        }
    }

    #[test]
    fn tells_free_threaded_builds_from_their_flag() {
        for minor in [13, 14, 15] {
            assert!(parse(&Builder::new(minor, true).bytes).unwrap().free_threaded, "3.{minor}t");
        }
    }

    #[test]
    fn a_newer_version_is_read_with_the_newest_declaration_and_flagged() {
        let mut bytes = Builder::new(15, false).bytes;
        bytes[8..16].copy_from_slice(&0x0310_00a1u64.to_le_bytes());
        let offsets = parse(&bytes).unwrap();
        assert_eq!(offsets.minor(), 16);
        assert!(offsets.is_newer_than_known());
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(parse(b"notadebugpy"), Err(DebugOffsetsError::NoCookie));
        let mut bytes = Builder::new(14, false).bytes;
        bytes[8..16].copy_from_slice(&0x030c_00f0u64.to_le_bytes());
        assert_eq!(parse(&bytes), Err(DebugOffsetsError::InsaneVersion(0x030c_00f0)), "3.12 has no debug offsets");
        let mut builder = Builder::new(14, false);
        builder.set("interpreter_frame", "owner", 0x5000);
        assert!(matches!(parse(&builder.bytes), Err(DebugOffsetsError::Implausible { field: "owner", .. })));
        let builder = Builder::new(15, false);
        assert_eq!(parse(&builder.bytes[..200]), Err(DebugOffsetsError::Truncated));
        let mut builder = Builder::new(13, false);
        builder.bytes[16] = 7;
        assert!(matches!(parse(&builder.bytes), Err(DebugOffsetsError::InsaneVersion(_))), "flag must be 0 or 1");
    }
}
