//! CPython context without a probe per Python call: a uprobe on
//! `PyEval_RestoreThread` (hit when a thread takes the GIL back after
//! blocking I/O) remembers each thread's `PyThreadState`; when a write starts
//! an HTTP request, the thread's frames are walked — at most
//! `MAX_PY_FRAMES`, every pointer read through `bpf_probe_read_user` — and
//! sent as (code object, instruction) pairs. User space turns them into
//! names, files and lines.

use aya_ebpf::{
    cty::c_void,
    helpers::{bpf_ktime_get_ns, bpf_loop, bpf_probe_read_user},
    macros::uprobe,
    programs::ProbeContext,
};
use tracer_common::{
    EVENT_HEADER_LEN, EventHeader, EventKind, MAX_PY_FRAMES, PY_FRAME_LEN, PY_FRAMES_OBJECTS, PY_FRAMES_VIA_CFRAME,
    PyFrame, PyLayout, StackBuffer, Stat,
};

use crate::emit::{Source, output_urgent, peek, traced_pid};
use crate::maps::{PY_LAYOUTS, STACK_SCRATCH, THREAD_STATES};

// void PyEval_RestoreThread(PyThreadState *tstate);
#[uprobe]
pub fn py_restore_thread(ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, _)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let tstate: u64 = ctx.arg(0).unwrap_or(0);
    if tstate != 0 {
        let _ = THREAD_STATES.insert(&pid_tgid, &tstate, 0);
    }
    0
}

/// Whether `source` begins like an HTTP/1.x request line: an upper-case
/// method token and a space.
pub fn starts_request(source: Source) -> bool {
    let Some(head) = peek::<8>(source) else { return false };
    if !head[0].is_ascii_uppercase() {
        return false;
    }
    let mut index = 1;
    while index < 8 {
        match head[index] {
            b' ' => return true,
            b'A'..=b'Z' => index += 1,
            _ => return false,
        }
    }
    false
}

pub fn read_u64(address: u64) -> Option<u64> {
    if address < 4096 {
        return None;
    }
    // SAFETY: bpf_probe_read_user checks the address.
    unsafe { bpf_probe_read_user(address as *const u64) }.ok()
}

/// The layout of a process with Python context.
pub fn layout_of(pid: u32) -> Option<PyLayout> {
    // SAFETY: the layout is copied out at once.
    unsafe { PY_LAYOUTS.get(&pid) }.copied()
}

/// Sends the calling thread's Python stack, tagged with connection `conn_id`.
pub fn capture_stack(pid_tgid: u64, pid: u32, conn_id: u64) {
    let Some(layout) = layout_of(pid) else { return };
    let Some(tstate) = thread_state(&layout, pid_tgid) else { return };
    let Some(frame) = current_frame(&layout, tstate) else { return };
    send_stack(EventKind::PyStack, &layout, frame, pid_tgid, conn_id, 0);
}

/// The innermost frame the thread whose state is `tstate` is executing.
pub fn current_frame(layout: &PyLayout, tstate: u64) -> Option<u64> {
    let frame = read_u64(tstate + u64::from(layout.tstate_frame))?;
    if layout.frames == PY_FRAMES_VIA_CFRAME {
        return read_u64(frame + u64::from(layout.cframe_current));
    }
    Some(frame)
}

/// Walks the stack from `frame` outwards and sends it as a `kind` event
/// tagged with `tag` (a connection id, or the frame of a function call).
#[inline(always)]
pub fn send_stack(kind: EventKind, layout: &PyLayout, frame: u64, pid_tgid: u64, tag: u64, flags: u32) {
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(0) else { return };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    let count = walk(layout, frame);
    if count == 0 {
        return;
    }
    // SAFETY: a helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    scratch.header = EventHeader {
        kind: kind as u32,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        conn_id: tag,
        call_start_ns: now,
        call_end_ns: now,
        call_len: count as u64,
        chunk_len: (count * PY_FRAME_LEN) as u32,
        flags,
        ..EventHeader::default()
    };
    let len = (EVENT_HEADER_LEN + count * PY_FRAME_LEN).min(core::mem::size_of::<StackBuffer>());
    // At once: the frames are resolved by reading the code objects from the
    // process, which may exit (or free them) within milliseconds.
    let _ = output_urgent::<StackBuffer>(scratch, len);
}

/// The calling thread's `PyThreadState`: cached, re-validated against its
/// native thread id where the version records one, else found by walking the
/// interpreter's thread list (3.11+) and cached.
pub fn thread_state(layout: &PyLayout, pid_tgid: u64) -> Option<u64> {
    let tid = pid_tgid as u32;
    // SAFETY: the value is copied out at once.
    let cached = unsafe { THREAD_STATES.get(&pid_tgid) }.copied();
    if layout.tstate_native_thread_id == 0 {
        return cached;
    }
    let owner = |tstate: u64| read_u64(tstate + u64::from(layout.tstate_native_thread_id)).map(|id| id as u32);
    if let Some(tstate) = cached
        && owner(tstate) == Some(tid)
    {
        return Some(tstate);
    }
    let interp = read_u64(layout.interpreters_head_address)?;
    let first = read_u64(interp + u64::from(layout.interp_threads_head))?;
    let mut search = ThreadSearch { layout: *layout, tid, next: first, found: 0 };
    // SAFETY: `thread_step` has the callback signature bpf_loop expects and
    // receives `search`, which outlives the call.
    unsafe {
        bpf_loop(MAX_THREADS, thread_step as *mut c_void, (&mut search as *mut ThreadSearch).cast::<c_void>(), 0)
    };
    if search.found == 0 {
        return None;
    }
    let _ = THREAD_STATES.insert(&pid_tgid, &search.found, 0);
    Some(search.found)
}

/// Most thread states visited when searching the thread list.
const MAX_THREADS: u32 = 1024;

#[repr(C)]
struct ThreadSearch {
    layout: PyLayout,
    tid: u32,
    next: u64,
    found: u64,
}

#[inline(never)]
extern "C" fn thread_step(_index: u64, context: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the `ThreadSearch` given to it.
    let search = unsafe { &mut *context.cast::<ThreadSearch>() };
    let tstate = search.next;
    if tstate < 4096 {
        return 1;
    }
    let id = read_u64(tstate + u64::from(search.layout.tstate_native_thread_id)).unwrap_or(0) as u32;
    if id == search.tid {
        search.found = tstate;
        return 1;
    }
    search.next = read_u64(tstate + u64::from(search.layout.tstate_next)).unwrap_or(0);
    0
}

/// State of a frame walk driven by `bpf_loop` (its callback is verified
/// once; an unrolled 64-frame loop with layout-dependent branches exceeds the
/// verifier's budget).
#[repr(C)]
struct FrameWalk {
    layout: PyLayout,
    frame: u64,
    count: u64,
}

/// Walks frames from `frame` outwards into the stack scratch buffer;
/// returns how many were stored.
fn walk(layout: &PyLayout, frame: u64) -> usize {
    let mut state = FrameWalk { layout: *layout, frame, count: 0 };
    // SAFETY: `frame_step` has the callback signature bpf_loop expects and
    // receives `state`, which outlives the call.
    unsafe {
        bpf_loop(
            (MAX_PY_FRAMES * 2) as u32,
            frame_step as *mut c_void,
            (&mut state as *mut FrameWalk).cast::<c_void>(),
            0,
        )
    };
    state.count as usize
}

/// One frame: record it (unless it is a shim) and move to its caller.
/// Returns 1 to stop.
#[inline(never)]
extern "C" fn frame_step(_index: u64, context: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the `FrameWalk` given to it.
    let walk = unsafe { &mut *context.cast::<FrameWalk>() };
    let layout = walk.layout;
    if walk.frame < 4096 || walk.count >= MAX_PY_FRAMES as u64 {
        return 1;
    }
    let frame = walk.frame;
    let back = read_u64(frame + u64::from(layout.frame_back)).unwrap_or(0);
    walk.frame = back;
    if layout.frames != PY_FRAMES_OBJECTS && layout.owner_shim != 0xff {
        // SAFETY: bpf_probe_read_user checks the address.
        let owner = unsafe { bpf_probe_read_user((frame + u64::from(layout.frame_owner)) as *const u8) }.unwrap_or(0);
        if u32::from(owner) == layout.owner_shim {
            return 0;
        }
    }
    let Some(code) = read_u64(frame + u64::from(layout.frame_code)) else { return 1 };
    let instr = if layout.frames == PY_FRAMES_OBJECTS {
        // SAFETY: bpf_probe_read_user checks the address.
        u64::from(unsafe { bpf_probe_read_user((frame + u64::from(layout.frame_instr)) as *const u32) }.unwrap_or(0))
    } else {
        read_u64(frame + u64::from(layout.frame_instr)).unwrap_or(0)
    };
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(0) else { return 1 };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    let index = (walk.count as usize) & (MAX_PY_FRAMES - 1);
    scratch.frames[index] = PyFrame { code: code & !3, instr, frame };
    walk.count += 1;
    0
}
