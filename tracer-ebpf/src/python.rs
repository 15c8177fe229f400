//! CPython context without a probe per Python call: a uprobe on
//! `PyEval_RestoreThread` (hit when a thread takes the GIL back after
//! blocking I/O) remembers each thread's `PyThreadState`; when a write starts
//! an HTTP request, the thread's frames are walked — at most
//! `MAX_PY_FRAMES`, every pointer read through `bpf_probe_read_user` — and
//! sent as (code object, instruction) pairs. User space turns them into
//! names, files and lines.

use aya_ebpf::{
    bindings::bpf_pidns_info,
    cty::c_void,
    helpers::{
        bpf_get_current_comm, bpf_get_ns_current_pid_tgid, bpf_ktime_get_ns, bpf_loop, bpf_probe_read_user,
        bpf_probe_read_user_buf,
    },
    macros::uprobe,
    programs::ProbeContext,
};
use tracer_common::{
    EVENT_HEADER_LEN, EventHeader, EventKind, KernelMap, KnownStackKey, MAX_PY_FRAMES, PY_FRAME_LEN, PY_FRAMES_OBJECTS,
    PY_FRAMES_VIA_CFRAME, PyFrame, PyLayout, STACK_HASH_SEED, STACK_KNOWN, StackBuffer, Stat, THREAD_NAME_LEN,
    stack_hash_step,
};

use crate::emit::{Source, opaque, output, output_urgent, peek, traced_pid};
use crate::map_changes::store;
use crate::maps::{
    FRAME_HEAD, FRAME_HEAD_LEN, FRAME_WINDOW, FRAME_WINDOW_LEN, KNOWN_STACKS, PY_LAYOUTS, STACK_SCRATCH, THREAD_STATES,
};

// void PyEval_RestoreThread(PyThreadState *tstate);
#[uprobe]
pub fn py_restore_thread(ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, _)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let tstate: u64 = ctx.arg(0).unwrap_or(0);
    if tstate != 0 {
        store!(THREAD_STATES, KernelMap::ThreadStates, &pid_tgid, &tstate);
    }
    0
}

/// Whether `source` begins an HTTP/1.x message: a request line (an
/// upper-case method token and a space) — a client's request — or a status
/// line (`HTTP/1.`) — a server's response, whose stack tells which handler,
/// and which asyncio task, produced it.
pub fn starts_message(source: Source) -> bool {
    let Some(head) = peek::<8>(source) else { return false };
    if head[..7] == *b"HTTP/1." {
        return true;
    }
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

/// The layout of a process with Python context, in place in its map: a
/// copy would cost 72 bytes of the 512-byte stack in every program that
/// walks frames.
pub fn layout_of(pid: u32) -> Option<&'static PyLayout> {
    // SAFETY: a map value stays valid for the program's run; it is only read.
    unsafe { PY_LAYOUTS.get(&pid) }
}

/// Sends the calling thread's Python stack, tagged with connection `conn_id`
/// (the thread is about to write a message on it).
pub fn capture_stack(pid_tgid: u64, pid: u32, conn_id: u64) {
    let Some(layout) = layout_of(pid) else { return };
    let Some(tstate) = thread_state(layout, pid_tgid) else { return };
    let Some(frame) = current_frame(layout, tstate) else { return };
    send_stack(EventKind::PyStack, layout, frame, pid_tgid, conn_id, 0);
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
    let walked = walk(layout, frame);
    if walked.count != 0 {
        send_walked(kind, pid_tgid, tag, flags, &walked);
    }
}

/// What a walk left in the stack scratch buffer: how many frames, and the
/// hash of their code objects.
struct Walked {
    count: usize,
    hash: u64,
}

/// Sends the `count` frames a walk left in the stack scratch buffer. A
/// function of its own, so that what it builds is not on the stack while
/// the walk runs (the verifier adds up a program's frames, callbacks
/// included, against 512 bytes).
#[inline(never)]
fn send_walked(kind: EventKind, pid_tgid: u64, tag: u64, flags: u32, walked: &Walked) {
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(0) else { return };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    let (count, hash) = (walked.count.min(MAX_PY_FRAMES), walked.hash);
    let pid = (pid_tgid >> 32) as u32;
    // SAFETY: only the presence of the entry is used.
    let known = unsafe { KNOWN_STACKS.get(&KnownStackKey { pid: u64::from(pid), hash }) }.is_some();
    // SAFETY: a helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    scratch.header = EventHeader {
        kind: kind as u32,
        pid,
        tid: pid_tgid as u32,
        conn_id: tag,
        call_start_ns: now,
        call_end_ns: now,
        call_len: count as u64,
        chunk_len: (THREAD_NAME_LEN + count * PY_FRAME_LEN) as u32,
        flags: if known { flags | STACK_KNOWN } else { flags },
        ..EventHeader::default()
    };
    scratch.thread_name = bpf_get_current_comm().unwrap_or_default();
    let len = (EVENT_HEADER_LEN + THREAD_NAME_LEN + count * PY_FRAME_LEN).min(core::mem::size_of::<StackBuffer>());
    // A stack with code objects user space has not read yet goes at once:
    // they are read from the process, which may exit (or free them) within
    // milliseconds. A known one waits for the batch (a wake-up costs the
    // traced thread more than the whole walk).
    if known {
        let _ = output::<StackBuffer>(scratch, len);
    } else {
        let _ = output_urgent::<StackBuffer>(scratch, len);
    }
}

/// The calling thread's `PyThreadState`: cached, re-validated against its
/// native thread id where the version records one, else found by walking the
/// interpreter's thread list (3.11+) and cached.
pub fn thread_state(layout: &PyLayout, pid_tgid: u64) -> Option<u64> {
    let tid = thread_id_as_recorded(layout, pid_tgid)?;
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
    let mut search = ThreadSearch {
        tid,
        native_thread_id: layout.tstate_native_thread_id,
        next_offset: layout.tstate_next,
        next: first,
        found: 0,
    };
    // SAFETY: `thread_step` has the callback signature bpf_loop expects and
    // receives `search`, which outlives the call.
    unsafe {
        bpf_loop(MAX_THREADS, thread_step as *mut c_void, (&mut search as *mut ThreadSearch).cast::<c_void>(), 0)
    };
    if search.found == 0 {
        return None;
    }
    store!(THREAD_STATES, KernelMap::ThreadStates, &pid_tgid, &search.found);
    Some(search.found)
}

/// The calling thread's id as CPython records it (`gettid()` in the
/// process's own PID namespace, which may not be pytrace's).
fn thread_id_as_recorded(layout: &PyLayout, pid_tgid: u64) -> Option<u32> {
    if layout.pid_ns_ino == 0 {
        return Some(pid_tgid as u32);
    }
    let mut ids = bpf_pidns_info { pid: 0, tgid: 0 };
    let size = core::mem::size_of::<bpf_pidns_info>() as u32;
    // SAFETY: `ids` is a writable bpf_pidns_info of `size` bytes.
    let status = unsafe { bpf_get_ns_current_pid_tgid(layout.pid_ns_dev, layout.pid_ns_ino, &mut ids, size) };
    (status == 0).then_some(ids.pid)
}

/// Most thread states visited when searching the thread list.
const MAX_THREADS: u32 = 1024;

/// State of a thread-list search driven by `bpf_loop`: only the two
/// offsets it needs, not the whole layout (the callback's caller keeps this
/// on its stack).
#[repr(C)]
struct ThreadSearch {
    tid: u32,
    /// Thread state → `native_thread_id`.
    native_thread_id: u32,
    /// Thread state → next thread state.
    next_offset: u32,
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
    let id = read_u64(tstate + u64::from(search.native_thread_id)).unwrap_or(0) as u32;
    if id == search.tid {
        search.found = tstate;
        return 1;
    }
    search.next = read_u64(tstate + u64::from(search.next_offset)).unwrap_or(0);
    0
}

/// State of a frame walk driven by `bpf_loop` (its callback is verified
/// once; an unrolled 64-frame loop with layout-dependent branches exceeds the
/// verifier's budget).
#[repr(C)]
struct FrameWalk {
    layout: FrameFields,
    frame: u64,
    count: u64,
    /// `stack_hash` of the code objects stored so far.
    hash: u64,
    /// Where the bytes in `FRAME_WINDOW` came from, and how many (0: none).
    window_start: u64,
    window_len: u64,
}

/// Where a frame's fields are, from the process's [`PyLayout`]: only what
/// a walk reads, so that the walk's state stays small on the stack.
#[repr(C)]
#[derive(Clone, Copy)]
struct FrameFields {
    frames: u32,
    back: u32,
    code: u32,
    instr: u32,
    owner: u32,
    owner_skip_from: u32,
}

impl FrameFields {
    fn of(layout: &PyLayout) -> Self {
        Self {
            frames: layout.frames,
            back: layout.frame_back,
            code: layout.frame_code,
            instr: layout.frame_instr,
            owner: layout.frame_owner,
            owner_skip_from: layout.owner_skip_from,
        }
    }
}

/// `owner` of a 3.11+ frame on its thread's frame stack (not in a generator
/// or frame object), in every supported version.
const FRAME_OWNED_BY_THREAD: u8 = 0;

impl FrameWalk {
    /// Copies `frame`'s head from the window into `head`, if the window
    /// holds it.
    fn head_from_window(&self, frame: u64, head: &mut [u8; FRAME_HEAD_LEN]) -> bool {
        if frame < self.window_start || frame + FRAME_HEAD_LEN as u64 > self.window_start + self.window_len {
            return false;
        }
        let Some(window) = FRAME_WINDOW.get_ptr(0) else { return false };
        // SAFETY: per-CPU value, ours while this program runs.
        let window = unsafe { &*window };
        // The mask keeps the verifier's bound; the test above already did.
        let offset = ((frame - self.window_start) as usize) & (FRAME_WINDOW_LEN - 1);
        // SAFETY: `offset` + FRAME_HEAD_LEN lies within the value.
        let source = unsafe { &*window.bytes.as_ptr().add(offset).cast::<[u64; FRAME_HEAD_LEN / 8]>() };
        // SAFETY: `head` is FRAME_HEAD_LEN bytes; unaligned writes are allowed.
        unsafe { head.as_mut_ptr().cast::<[u64; FRAME_HEAD_LEN / 8]>().write_unaligned(*source) };
        true
    }

    /// Reads the `FRAME_WINDOW_LEN` bytes that end with `frame`'s head into
    /// the window: on 3.11+ the callers of a frame on its thread's frame
    /// stack lie just below it, so one read serves the frames that follow
    /// rather than a read each (generators' frames, elsewhere, are still
    /// read one by one). Where that stretch is not all mapped (the stack's
    /// first pages), reads from the start of `frame`'s page.
    fn read_window_below(&mut self, frame: u64) {
        let (start, len) = read_window(frame).unwrap_or((0, 0));
        // Through `opaque`, every outcome leaves the walk in one state for
        // the verifier (else it verifies the walk once for each).
        self.window_start = opaque(start);
        self.window_len = opaque(len);
    }
}

/// Fills `FRAME_WINDOW` with the bytes that end with `frame`'s head (see
/// `read_window_below`); returns where they start and how many there are.
fn read_window(frame: u64) -> Option<(u64, u64)> {
    let window = FRAME_WINDOW.get_ptr_mut(0)?;
    // SAFETY: per-CPU value, exclusively ours while this program runs.
    let window = unsafe { &mut *window };
    let end = frame + FRAME_HEAD_LEN as u64;
    let start = end.saturating_sub(FRAME_WINDOW_LEN as u64);
    // SAFETY: bpf_probe_read_user_buf checks the address.
    if unsafe { bpf_probe_read_user_buf(start as *const u8, &mut window.bytes[..FRAME_WINDOW_LEN]) }.is_ok() {
        return Some((start, FRAME_WINDOW_LEN as u64));
    }
    let page = frame & !(PAGE_SIZE - 1);
    // Re-bound `len` in a form the verifier tracks (it is ≤ a page + a head).
    let len = ((end - page) as usize) & (2 * FRAME_WINDOW_LEN - 1);
    if len > FRAME_WINDOW_LEN {
        return None;
    }
    // SAFETY: bpf_probe_read_user_buf checks the address.
    unsafe { bpf_probe_read_user_buf(page as *const u8, &mut window.bytes[..len]) }.ok()?;
    Some((page, len as u64))
}

const PAGE_SIZE: u64 = 4096;

/// Walks frames from `frame` outwards into the stack scratch buffer.
fn walk(layout: &PyLayout, frame: u64) -> Walked {
    let mut state = FrameWalk {
        layout: FrameFields::of(layout),
        frame,
        count: 0,
        hash: STACK_HASH_SEED,
        window_start: 0,
        window_len: 0,
    };
    if layout.frames != PY_FRAMES_OBJECTS && owner(layout, frame) == Some(FRAME_OWNED_BY_THREAD) {
        state.read_window_below(frame);
    }
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
    Walked { count: state.count as usize, hash: state.hash }
}

/// The `owner` byte of a 3.11+ frame.
fn owner(layout: &PyLayout, frame: u64) -> Option<u8> {
    // SAFETY: bpf_probe_read_user checks the address.
    unsafe { bpf_probe_read_user((frame + u64::from(layout.frame_owner)) as *const u8) }.ok()
}

/// One frame: record it (unless it is a shim) and move to its caller.
/// Returns 1 to stop.
#[inline(never)]
extern "C" fn frame_step(_index: u64, context: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the `FrameWalk` given to it.
    let walk = unsafe { &mut *context.cast::<FrameWalk>() };
    let layout = walk.layout;
    // The count as the verifier cannot know it: else a comparison it can
    // decide marks the count precise, and every iteration is verified anew.
    let count = opaque(walk.count);
    if walk.frame < 4096 || count >= MAX_PY_FRAMES as u64 {
        return 1;
    }
    let frame = walk.frame;
    let Some(buffer) = FRAME_HEAD.get_ptr_mut(0) else { return 1 };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let buffer = unsafe { &mut *buffer };
    let head = if walk.head_from_window(frame, buffer) {
        FrameHead { bytes: buffer }
    } else {
        let Some(head) = FrameHead::read(buffer, frame) else { return 1 };
        head
    };
    walk.frame = head.u64_at(layout.back).unwrap_or(0);
    if layout.frames != PY_FRAMES_OBJECTS
        && head.u8_at(layout.owner).is_some_and(|owner| u32::from(owner) >= layout.owner_skip_from)
    {
        return 0;
    }
    let Some(code) = head.u64_at(layout.code) else { return 1 };
    let instr = if layout.frames == PY_FRAMES_OBJECTS {
        u64::from(head.u32_at(layout.instr).unwrap_or(0))
    } else {
        head.u64_at(layout.instr).unwrap_or(0)
    };
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(0) else { return 1 };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    let index = (count as usize) & (MAX_PY_FRAMES - 1);
    scratch.frames[index] = PyFrame { code: code & !3, instr, frame };
    walk.count = count + 1;
    walk.hash = stack_hash_step(walk.hash, code & !3);
    0
}

/// A frame's fields, from one `bpf_probe_read_user` of its first
/// `FRAME_HEAD_LEN` bytes (every field the walk needs lies there in 3.8–3.15)
/// or from the window read below a frame, rather than one read per field: a
/// read costs far more than the bytes it copies.
struct FrameHead<'a> {
    bytes: &'a [u8; FRAME_HEAD_LEN],
}

/// Zeroes a frame head's bytes past [`FRAME_FIELDS_LEN`] with plain stores:
/// `fill` becomes a call of `memset`, one more frame on the walk's stack.
fn clear_beyond_fields(buffer: &mut [u8; FRAME_HEAD_LEN]) {
    const WORDS: usize = (FRAME_HEAD_LEN - FRAME_FIELDS_LEN) / 8;
    let words = buffer[FRAME_FIELDS_LEN..].as_mut_ptr().cast::<u64>();
    for word in 0..WORDS {
        // SAFETY: `word` < WORDS keeps every write within `buffer`; unaligned writes are allowed.
        unsafe { core::ptr::write_volatile(words.add(word), 0) };
    }
}

/// Bytes that hold every field a walk reads of a 3.11+ frame (`owner` ends
/// at 71 in 3.13, at 75 in 3.14 and 3.15): read instead where the full head is not readable, a frame
/// within `FRAME_HEAD_LEN` of the end of its mapping. (A 3.8–3.10 frame is
/// a heap object larger than `FRAME_HEAD_LEN`: its head is always readable.)
const FRAME_FIELDS_LEN: usize = 80;

impl<'a> FrameHead<'a> {
    fn read(buffer: &'a mut [u8; FRAME_HEAD_LEN], frame: u64) -> Option<Self> {
        // SAFETY: bpf_probe_read_user_buf checks the address.
        if unsafe { bpf_probe_read_user_buf(frame as *const u8, buffer) }.is_err() {
            // SAFETY: as above.
            unsafe { bpf_probe_read_user_buf(frame as *const u8, &mut buffer[..FRAME_FIELDS_LEN]) }.ok()?;
            clear_beyond_fields(buffer);
        }
        Some(Self { bytes: buffer })
    }

    fn u64_at(&self, offset: u32) -> Option<u64> {
        self.at::<8>(offset).map(u64::from_ne_bytes)
    }

    fn u32_at(&self, offset: u32) -> Option<u32> {
        self.at::<4>(offset).map(u32::from_ne_bytes)
    }

    fn u8_at(&self, offset: u32) -> Option<u8> {
        self.at::<1>(offset).map(|[byte]| byte)
    }

    /// The `N` bytes at `offset`. User space only sends layouts whose
    /// fields lie within the head; the offset is masked right before the
    /// access all the same, in the form every verifier tracks (6.1 forgets
    /// a bound checked earlier once the value was spilled to the stack, and
    /// a comparison lets the compiler index with the unmasked value).
    fn at<const N: usize>(&self, offset: u32) -> Option<[u8; N]> {
        let start = offset as usize & (FRAME_HEAD_LEN - 1);
        if start > FRAME_HEAD_LEN - N {
            return None;
        }
        let mut value = [0; N];
        value.copy_from_slice(&self.bytes[start..start + N]);
        Some(value)
    }
}
