//! How each CPython version lays out what pytrace reads: runtime →
//! interpreters → thread states → frames → code objects → strings. Offsets
//! for 3.8–3.12 come from `offsetof` against each version's own headers
//! (x86-64, glibc, default GIL build; they do not change between patch
//! releases): `cargo xtask cpython-offsets` prints them and a test holds
//! this table to its output; they are verified against the live process at attach;
//! 3.13 and later publish them in `_Py_DebugOffsets` at the start of
//! `_PyRuntime` (see `debug_offsets`), which is read instead — for versions
//! newer than pytrace knows too, when the struct parses sanely.

use tracer_common::{
    PY_FRAMES_DIRECT, PY_FRAMES_OBJECTS, PY_FRAMES_VIA_CFRAME, PY_STATE_BYTE, PY_STATE_STACKTOP, PyLayout,
};

use super::debug_offsets::{self, DebugOffsets, DebugOffsetsError};
use super::memory::ReadMemory;

/// How a frame's position maps to a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineTable {
    /// 3.8–3.9 `co_lnotab`; the position is `f_lasti` in bytes.
    Lnotab,
    /// 3.10 `co_linetable`; the position is `f_lasti` in code units.
    Linetable310,
    /// 3.11+ location table; the position is an instruction pointer.
    Locations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeLayout {
    pub filename: u64,
    pub name: u64,
    pub qualname: Option<u64>,
    pub firstlineno: u64,
    pub linetable: u64,
    /// Start of the bytecode inside the code object (3.11+).
    pub code_adaptive: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub minor: u32,
    pub kernel: PyLayout,
    pub interpreters_head: u64,
    pub threads_head: u64,
    pub tstate_next: u64,
    pub tstate_interp: u64,
    /// `native_thread_id` (3.11+): lets pytrace map threads to thread states at attach.
    pub tstate_native_thread_id: Option<u64>,
    pub code: CodeLayout,
    pub line_table: LineTable,
    pub objects: ObjectLayout,
}

/// Where `str` and `bytes` objects keep their length, flags and data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectLayout {
    pub unicode_length: u64,
    /// The `state` bit field (kind, compact, ascii).
    pub unicode_state: u64,
    /// Characters of a compact ASCII string start here (`sizeof(PyASCIIObject)`).
    pub unicode_ascii_data: u64,
    /// Characters of other compact strings (`sizeof(PyCompactUnicodeObject)`).
    pub unicode_compact_data: u64,
    pub bytes_size: u64,
    pub bytes_data: u64,
}

/// `PyASCIIObject` before 3.12 (with `wstr`), and from 3.12 on.
const OBJECTS_TO_3_11: ObjectLayout = ObjectLayout {
    unicode_length: 16,
    unicode_state: 32,
    unicode_ascii_data: 48,
    unicode_compact_data: 72,
    bytes_size: 16,
    bytes_data: 32,
};
const OBJECTS_3_12: ObjectLayout = ObjectLayout { unicode_ascii_data: 40, unicode_compact_data: 56, ..OBJECTS_TO_3_11 };

/// `owner` values from which a 3.12+ frame is not a Python call:
/// `FRAME_OWNED_BY_CSTACK` (3.12–3.13), `FRAME_OWNED_BY_INTERPRETER` and
/// `FRAME_OWNED_BY_CSTACK` (3.14), `FRAME_OWNED_BY_INTERPRETER` (3.15).
const FRAME_OWNED_BY_CSTACK_OR_INTERPRETER: u32 = 3;

/// 3.8–3.10: frame objects linked by `f_back`.
const fn objects(minor: u32) -> PyLayout {
    let (lasti, frame_state, frame_state_kind) =
        if minor == 10 { (96, 108, PY_STATE_BYTE) } else { (104, 72, PY_STATE_STACKTOP) };
    PyLayout {
        frames: PY_FRAMES_OBJECTS,
        tstate_frame: 24,
        cframe_current: 0,
        frame_back: 24,
        frame_code: 32,
        frame_instr: lasti,
        frame_owner: 0,
        owner_skip_from: 0xff,
        frame_state,
        frame_state_kind,
        ..NO_THREAD_LIST
    }
}

/// Kernel layout fields for finding thread states by walking the thread
/// list; filled in by [`Layout::for_kernel`] where the version allows it.
const NO_THREAD_LIST: PyLayout = PyLayout {
    frames: 0,
    tstate_frame: 0,
    cframe_current: 0,
    frame_back: 0,
    frame_code: 0,
    frame_instr: 0,
    frame_owner: 0,
    owner_skip_from: 0xff,
    tstate_native_thread_id: 0,
    tstate_next: 0,
    interp_threads_head: 0,
    frame_state: 0,
    frame_state_kind: 0,
    _pad: 0,
    interpreters_head_address: 0,
    pid_ns_dev: 0,
    pid_ns_ino: 0,
};

impl Layout {
    /// Whether every frame field the kernel's walk reads lies within the
    /// [`tracer_common::PY_FRAME_HEAD_LEN`] bytes it reads of a frame (the
    /// kernel masks offsets to that range rather than checking them).
    pub fn frame_fields_within_head(&self) -> bool {
        let k = &self.kernel;
        let fields = [(k.frame_back, 8), (k.frame_code, 8), (k.frame_instr, 8), (k.frame_owner, 1)];
        fields.iter().all(|&(offset, len)| offset as usize + len <= tracer_common::PY_FRAME_HEAD_LEN)
    }

    /// The kernel's copy, able to walk the thread list of the process whose
    /// `_PyRuntime` is at `runtime` when the version records native thread
    /// ids — as seen in `pid_namespace` (device, inode) when the process
    /// runs in a PID namespace of its own.
    pub fn for_kernel(&self, runtime: u64, pid_namespace: Option<(u64, u64)>) -> PyLayout {
        let mut kernel = self.kernel;
        if let Some((dev, ino)) = pid_namespace {
            (kernel.pid_ns_dev, kernel.pid_ns_ino) = (dev, ino);
        }
        if let Some(native) = self.tstate_native_thread_id {
            kernel.tstate_native_thread_id = native as u32;
            kernel.tstate_next = self.tstate_next as u32;
            kernel.interp_threads_head = self.threads_head as u32;
            kernel.interpreters_head_address = runtime + self.interpreters_head;
        }
        kernel
    }
}

/// The table for 3.8–3.12; `None` for other versions.
pub fn table(minor: u32) -> Option<Layout> {
    let old_code =
        CodeLayout { filename: 104, name: 112, qualname: None, firstlineno: 40, linetable: 120, code_adaptive: None };
    let layout = match minor {
        8..=10 => Layout {
            minor,
            kernel: objects(minor),
            interpreters_head: 32,
            threads_head: 8,
            tstate_next: 8,
            tstate_interp: 16,
            tstate_native_thread_id: None,
            code: old_code,
            line_table: if minor == 10 { LineTable::Linetable310 } else { LineTable::Lnotab },
            objects: OBJECTS_TO_3_11,
        },
        11 => Layout {
            minor,
            kernel: PyLayout {
                frames: PY_FRAMES_VIA_CFRAME,
                tstate_frame: 56,
                cframe_current: 8,
                frame_back: 48,
                frame_code: 32,
                frame_instr: 56,
                frame_owner: 69,
                owner_skip_from: 0xff,
                ..NO_THREAD_LIST
            },
            interpreters_head: 40,
            threads_head: 16,
            tstate_next: 8,
            tstate_interp: 16,
            tstate_native_thread_id: Some(160),
            code: CodeLayout {
                filename: 112,
                name: 120,
                qualname: Some(128),
                firstlineno: 72,
                linetable: 136,
                code_adaptive: Some(184),
            },
            line_table: LineTable::Locations,
            objects: OBJECTS_TO_3_11,
        },
        12 => Layout {
            minor,
            kernel: PyLayout {
                frames: PY_FRAMES_VIA_CFRAME,
                tstate_frame: 56,
                cframe_current: 0,
                frame_back: 8,
                frame_code: 0,
                frame_instr: 56,
                frame_owner: 70,
                owner_skip_from: FRAME_OWNED_BY_CSTACK_OR_INTERPRETER,
                ..NO_THREAD_LIST
            },
            interpreters_head: 40,
            threads_head: 72,
            tstate_next: 8,
            tstate_interp: 16,
            tstate_native_thread_id: Some(144),
            code: CodeLayout {
                filename: 112,
                name: 120,
                qualname: Some(128),
                firstlineno: 68,
                linetable: 136,
                code_adaptive: Some(192),
            },
            line_table: LineTable::Locations,
            objects: OBJECTS_3_12,
        },
        _ => return None,
    };
    Some(layout)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("CPython 3.{0} is not supported for Python context (supported: 3.8 to 3.15)")]
    UnsupportedVersion(u32),
    #[error(
        "free-threaded CPython 3.{0}t is not supported for Python context yet (told by the build flag it publishes)"
    )]
    FreeThreaded(u32),
    #[error("this CPython 3.{minor}'s published offsets cannot be used: {reason}")]
    DebugOffsets { minor: u32, reason: DebugOffsetsError },
    #[error("cannot read the process's memory at {0:#x}")]
    Unreadable(u64),
    #[error(
        "this CPython 3.{0}'s frames keep their fields beyond the first {len} bytes, which is all the kernel reads of a frame",
        len = tracer_common::PY_FRAME_HEAD_LEN
    )]
    FrameFieldsOutOfReach(u32),
}

/// The layout for 3.`minor`: from the table up to 3.12, from the
/// `_Py_DebugOffsets` the process publishes at `runtime` from 3.13 on.
pub fn for_process(minor: u32, memory: &(impl ReadMemory + ?Sized), runtime: u64) -> Result<Layout, LayoutError> {
    if minor < 13 {
        return table(minor).ok_or(LayoutError::UnsupportedVersion(minor));
    }
    let bytes = memory.read(runtime, debug_offsets::READ_LEN).ok_or(LayoutError::Unreadable(runtime))?;
    let offsets = debug_offsets::parse(&bytes).map_err(|reason| LayoutError::DebugOffsets { minor, reason })?;
    if offsets.free_threaded {
        return Err(LayoutError::FreeThreaded(offsets.minor()));
    }
    let layout = from_debug_offsets(&offsets);
    if !layout.frame_fields_within_head() {
        return Err(LayoutError::FrameFieldsOutOfReach(offsets.minor()));
    }
    Ok(layout)
}

/// The layout CPython 3.13+ describes in its `_Py_DebugOffsets`.
pub fn from_debug_offsets(offsets: &DebugOffsets) -> Layout {
    let narrow = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    Layout {
        minor: offsets.minor(),
        kernel: PyLayout {
            frames: PY_FRAMES_DIRECT,
            tstate_frame: narrow(offsets.tstate_current_frame),
            cframe_current: 0,
            frame_back: narrow(offsets.frame_previous),
            frame_code: narrow(offsets.frame_executable),
            frame_instr: narrow(offsets.frame_instr_ptr),
            frame_owner: narrow(offsets.frame_owner),
            // C-stack shims (3.13), interpreter-owned entry and base frames (3.14+).
            owner_skip_from: FRAME_OWNED_BY_CSTACK_OR_INTERPRETER,
            ..NO_THREAD_LIST
        },
        interpreters_head: offsets.interpreters_head,
        threads_head: offsets.threads_head,
        tstate_next: offsets.tstate_next,
        tstate_interp: offsets.tstate_interp,
        tstate_native_thread_id: Some(offsets.tstate_native_thread_id),
        code: CodeLayout {
            filename: offsets.code_filename,
            name: offsets.code_name,
            qualname: Some(offsets.code_qualname),
            firstlineno: offsets.code_firstlineno,
            linetable: offsets.code_linetable,
            code_adaptive: Some(offsets.code_adaptive),
        },
        line_table: LineTable::Locations,
        objects: ObjectLayout {
            unicode_length: offsets.unicode_length,
            unicode_state: offsets.unicode_state,
            unicode_ascii_data: offsets.unicode_ascii_size,
            unicode_compact_data: offsets.unicode_compact_size,
            bytes_size: offsets.bytes_size,
            bytes_data: offsets.bytes_data,
        },
    }
}

/// The interpreter's threads, read from the live process: (thread state,
/// native thread id where the version records it). Verifies the layout: every
/// thread state must point back at its interpreter.
pub fn threads(layout: &Layout, memory: &(impl ReadMemory + ?Sized), runtime: u64) -> Option<Vec<(u64, Option<u64>)>> {
    let interp = memory.u64(runtime + layout.interpreters_head).filter(|p| *p > 4096)?;
    let mut tstate = memory.u64(interp + layout.threads_head)?;
    let mut threads = Vec::new();
    while tstate > 4096 && threads.len() < 4096 {
        if memory.u64(tstate + layout.tstate_interp)? != interp {
            return None;
        }
        let native = layout.tstate_native_thread_id.and_then(|offset| memory.u64(tstate + offset));
        threads.push((tstate, native));
        tstate = memory.u64(tstate + layout.tstate_next)?;
    }
    (!threads.is_empty()).then_some(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_reaches_every_frame_field_of_the_tables() {
        for minor in 8..=12 {
            assert!(table(minor).expect("a table layout").frame_fields_within_head(), "3.{minor}");
        }
    }

    #[test]
    fn a_frame_field_beyond_the_head_the_kernel_reads_is_refused() {
        let mut layout = table(12).expect("3.12");
        layout.kernel.frame_owner = tracer_common::PY_FRAME_HEAD_LEN as u32;
        assert!(!layout.frame_fields_within_head());
        layout.kernel.frame_owner = 70;
        layout.kernel.frame_instr = tracer_common::PY_FRAME_HEAD_LEN as u32 - 4;
        assert!(!layout.frame_fields_within_head(), "an 8-byte field must end within the head");
    }
}
