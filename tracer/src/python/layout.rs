//! How each CPython version lays out what pytrace reads: runtime →
//! interpreters → thread states → frames → code objects → strings. Offsets
//! for 3.8–3.12 were computed with `offsetof` against each version's own
//! headers (x86-64, glibc, default GIL build; they do not change between
//! patch releases) and are verified against the live process at attach;
//! 3.13 publishes them in `_Py_DebugOffsets` at the start of `_PyRuntime`,
//! which is read instead.

use tracer_common::{
    PY_FRAMES_DIRECT, PY_FRAMES_OBJECTS, PY_FRAMES_VIA_CFRAME, PY_STATE_BYTE, PY_STATE_STACKTOP, PyLayout,
};

use super::memory::Memory;

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
    pub unicode_ascii_data: u64,
    pub unicode_compact_data: u64,
}

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
        owner_shim: 0xff,
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
    owner_shim: 0xff,
    tstate_native_thread_id: 0,
    tstate_next: 0,
    interp_threads_head: 0,
    frame_state: 0,
    frame_state_kind: 0,
    _pad: 0,
    interpreters_head_address: 0,
};

impl Layout {
    /// The kernel's copy, able to walk the thread list of the process whose
    /// `_PyRuntime` is at `runtime` when the version records native thread ids.
    pub fn for_kernel(&self, runtime: u64) -> PyLayout {
        let mut kernel = self.kernel;
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
            unicode_ascii_data: 48,
            unicode_compact_data: 72,
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
                owner_shim: 0xff,
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
            unicode_ascii_data: 48,
            unicode_compact_data: 72,
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
                owner_shim: 3,
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
            unicode_ascii_data: 40,
            unicode_compact_data: 56,
        },
        _ => return None,
    };
    Some(layout)
}

/// Positions of the fields pytrace uses inside 3.13's `_Py_DebugOffsets`.
mod debug_offsets {
    pub const COOKIE: &[u8; 8] = b"xdebugpy";
    pub const INTERPRETERS_HEAD: u64 = 40;
    pub const THREADS_HEAD: u64 = 72;
    pub const TSTATE_NEXT: u64 = 168;
    pub const TSTATE_INTERP: u64 = 176;
    pub const TSTATE_CURRENT_FRAME: u64 = 184;
    pub const TSTATE_NATIVE_THREAD_ID: u64 = 200;
    pub const FRAME_PREVIOUS: u64 = 232;
    pub const FRAME_EXECUTABLE: u64 = 240;
    pub const FRAME_INSTR_PTR: u64 = 248;
    pub const FRAME_OWNER: u64 = 264;
    pub const CODE_FILENAME: u64 = 280;
    pub const CODE_QUALNAME: u64 = 296;
    pub const CODE_LINETABLE: u64 = 304;
    pub const CODE_FIRSTLINENO: u64 = 312;
    pub const CODE_ADAPTIVE: u64 = 344;
    pub const ASCII_OBJECT_SIZE: u64 = 560;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("CPython 3.{0} is not supported for Python context (supported: 3.8 to 3.13)")]
    UnsupportedVersion(u32),
    #[error("this CPython 3.13 has no _Py_DebugOffsets cookie at _PyRuntime (a debug or unusual build?)")]
    NoDebugOffsets,
    #[error("cannot read the process's memory at {0:#x}")]
    Unreadable(u64),
}

/// The layout for 3.`minor`, reading `_Py_DebugOffsets` at `runtime` for 3.13.
pub fn for_process(minor: u32, memory: &Memory, runtime: u64) -> Result<Layout, LayoutError> {
    if minor != 13 {
        return table(minor).ok_or(LayoutError::UnsupportedVersion(minor));
    }
    use debug_offsets as d;
    let cookie = memory.read(runtime, 8).ok_or(LayoutError::Unreadable(runtime))?;
    if cookie != d::COOKIE {
        return Err(LayoutError::NoDebugOffsets);
    }
    let field = |position: u64| memory.u64(runtime + position).ok_or(LayoutError::Unreadable(runtime + position));
    let narrow = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    let ascii = field(d::ASCII_OBJECT_SIZE)?;
    Ok(Layout {
        minor,
        kernel: PyLayout {
            frames: PY_FRAMES_DIRECT,
            tstate_frame: narrow(field(d::TSTATE_CURRENT_FRAME)?),
            cframe_current: 0,
            frame_back: narrow(field(d::FRAME_PREVIOUS)?),
            frame_code: narrow(field(d::FRAME_EXECUTABLE)?),
            frame_instr: narrow(field(d::FRAME_INSTR_PTR)?),
            frame_owner: narrow(field(d::FRAME_OWNER)?),
            owner_shim: 3,
            ..NO_THREAD_LIST
        },
        interpreters_head: field(d::INTERPRETERS_HEAD)?,
        threads_head: field(d::THREADS_HEAD)?,
        tstate_next: field(d::TSTATE_NEXT)?,
        tstate_interp: field(d::TSTATE_INTERP)?,
        tstate_native_thread_id: Some(field(d::TSTATE_NATIVE_THREAD_ID)?),
        code: CodeLayout {
            filename: field(d::CODE_FILENAME)?,
            name: field(d::CODE_QUALNAME)?,
            qualname: Some(field(d::CODE_QUALNAME)?),
            firstlineno: field(d::CODE_FIRSTLINENO)?,
            linetable: field(d::CODE_LINETABLE)?,
            code_adaptive: Some(field(d::CODE_ADAPTIVE)?),
        },
        line_table: LineTable::Locations,
        unicode_ascii_data: ascii,
        unicode_compact_data: ascii + 16,
    })
}

/// The interpreter's threads, read from the live process: (thread state,
/// native thread id where the version records it). Verifies the layout: every
/// thread state must point back at its interpreter.
pub fn threads(layout: &Layout, memory: &Memory, runtime: u64) -> Option<Vec<(u64, Option<u64>)>> {
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
