//! Helpers every program uses: the traced-process check, counters, and
//! copying a call's bytes into ring-buffer events chunk by chunk.

use aya_ebpf::cty::c_void;
use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_loop, bpf_probe_read_user, bpf_probe_read_user_buf};
use tracer_common::{
    CHUNK_CAPACITY, EVENT_HEADER_LEN, EventBuffer, EventHeader, FLAG_LAST_CHUNK, FLAG_TRUNCATED, MAX_CAPTURE_LIMIT,
    MAX_CHUNKS_PER_CALL, Stat, TAIL_CAPACITY, TAIL_CHUNKS,
};

use crate::maps::{CAPTURE_LIMIT, EVENTS, OPAQUE, SCRATCH, STATS, TARGET_PIDS};

/// Most `iovec`s of one `writev`/`sendmsg`-style call that are captured.
pub const MAX_IOVECS: u64 = 16;
/// Chunks captured per `iovec` (128 KiB). Bytes past it are counted as
/// truncated and reach user space as a gap.
const MAX_CHUNKS_PER_IOVEC: usize = 8;

pub fn count(stat: Stat, by: u64) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU value owned by this CPU for the program's duration.
        unsafe { *counter += by };
    }
}

/// The caller's pid_tgid and pid when it is a traced process; counts the
/// hit under `hits` (`UprobeHits` or `TracepointHits`).
pub fn traced_pid(hits: Stat) -> Option<(u64, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    // SAFETY: the value is only tested for presence.
    unsafe { TARGET_PIDS.get(&pid) }?;
    count(hits, 1);
    Some((pid_tgid, pid))
}

/// `value`, passed through memory so that the verifier no longer links it to
/// the values it came from. In a `bpf_loop` callback, a count or offset
/// carried from one iteration to the next becomes "precise" once the
/// verifier decides a comparison with it or derives a bound from it; then no
/// two iterations look alike to it and it verifies every one (for a stack
/// walk, 20× the work at load: about a second of start-up).
#[inline(always)]
pub fn opaque(value: u64) -> u64 {
    let Some(slot) = OPAQUE.get_ptr_mut(0) else { return 0 };
    // SAFETY: per-CPU value, exclusively ours while this program runs.
    unsafe {
        core::ptr::write_volatile(slot, value);
        core::ptr::read_volatile(slot)
    }
}

/// Where a call's bytes are: one buffer, or an array of `iovec`s.
#[derive(Clone, Copy)]
pub enum Source {
    Buffer(u64),
    Iovecs { array: u64, count: u64 },
}

/// Copies up to the capture limit of the `header.call_len` bytes at `source`
/// into events carrying `header`; of a larger single-buffer call, its last
/// [`TAIL_CAPACITY`] bytes as well (a gap lies between head and tail).
///
/// The header is written once into the per-CPU scratch event, where each
/// chunk only changes its offset, length and flags: the walks' state, which
/// `bpf_loop` needs on the stack, stays small (the verifier allows 512
/// bytes for a program and every callback it runs, together).
pub fn emit_chunks(header: &EventHeader, source: Source) {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    unsafe { (*scratch).header = *header };
    // SAFETY: read of a constant patched by the loader.
    let limit = unsafe { core::ptr::read_volatile(&CAPTURE_LIMIT) }.min(MAX_CAPTURE_LIMIT) as u64;
    let call_len = header.call_len;
    let (captured, flags) = if call_len > limit {
        count(Stat::CallsTruncated, 1);
        (limit, header.flags | FLAG_TRUNCATED)
    } else {
        (call_len, header.flags)
    };
    match source {
        Source::Buffer(buf) => emit_buffer(buf, call_len, captured, limit, flags),
        Source::Iovecs { array, count } => emit_iovecs(array, count, call_len, captured, flags),
    }
}

/// A single buffer: its first `captured` bytes, then (when the call was
/// larger than `limit`) its tail.
#[inline(never)]
fn emit_buffer(buf: u64, call_len: u64, captured: u64, limit: u64, flags: u32) {
    // Chunk offsets are 32-bit: a call past 4 GiB keeps its head only.
    let tail = if call_len > limit && call_len <= u32::MAX as u64 { (call_len - limit).min(TAIL_CAPACITY) } else { 0 };
    count(Stat::BytesTruncated, call_len - captured - tail);
    let head = ChunkWalk { base: buf, offset: 0, len: captured, last_at: captured + tail, flags, failed: 0 };
    if head.emit(MAX_CHUNKS_PER_CALL) && tail > 0 {
        let start = call_len - tail;
        let tail = ChunkWalk { base: buf + start, offset: start, len: tail, last_at: call_len, flags, failed: 0 };
        tail.emit(TAIL_CHUNKS);
    }
}

/// An array of `iovec`s: the first `captured` bytes across them.
#[inline(never)]
fn emit_iovecs(array: u64, count: u64, call_len: u64, captured: u64, flags: u32) {
    self::count(Stat::BytesTruncated, call_len - captured);
    let mut walk = IovecWalk { array, count, offset: 0, captured, flags };
    // SAFETY: `iovec_step` has the callback signature bpf_loop expects
    // and receives `walk`, which outlives the call.
    unsafe {
        bpf_loop(MAX_IOVECS as u32, iovec_step as *mut c_void, (&mut walk as *mut IovecWalk).cast::<c_void>(), 0)
    };
}

/// Bytes `offset .. offset + len` of a call, at `base`, to be sent in chunks
/// by `bpf_loop` (whose callback the verifier checks once: an unrolled loop
/// of 64 chunks followed by a tail's would exceed its budget). The chunk
/// reaching `last_at` is marked as the call's last. The chunks go out with
/// the header already in the scratch event, and `flags`.
#[repr(C)]
struct ChunkWalk {
    base: u64,
    offset: u64,
    len: u64,
    last_at: u64,
    flags: u32,
    /// Set by the callback when a chunk could not be read or sent.
    failed: u32,
}

impl ChunkWalk {
    /// Sends the bytes in at most `max_chunks` chunks; false if one failed.
    fn emit(mut self, max_chunks: usize) -> bool {
        // SAFETY: `chunk_step` has the callback signature bpf_loop expects
        // and receives `self`, which outlives the call.
        unsafe {
            bpf_loop(max_chunks as u32, chunk_step as *mut c_void, (&mut self as *mut ChunkWalk).cast::<c_void>(), 0)
        };
        self.failed == 0
    }
}

/// Chunk number `index` of a [`ChunkWalk`]. Returns 1 to stop the loop.
#[inline(never)]
extern "C" fn chunk_step(index: u64, context: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the `ChunkWalk` given to it.
    let walk = unsafe { &mut *context.cast::<ChunkWalk>() };
    let position = index * CHUNK_CAPACITY as u64;
    if position >= walk.len {
        return 1;
    }
    let chunk = (walk.len - position).min(CHUNK_CAPACITY as u64) as usize;
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return 1 };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    scratch.header.chunk_offset = (walk.offset + position) as u32;
    scratch.header.chunk_len = chunk as u32;
    let last = walk.offset + position + chunk as u64 >= walk.last_at;
    scratch.header.flags = if last { walk.flags | FLAG_LAST_CHUNK } else { walk.flags };
    if emit_chunk(scratch, walk.base + position, chunk).is_err() {
        walk.failed = 1;
        return 1;
    }
    0
}

/// State of an `iovec` walk driven by `bpf_loop`, whose callback the verifier
/// checks once rather than once per iteration of a nested loop.
#[repr(C)]
struct IovecWalk {
    array: u64,
    count: u64,
    /// Bytes of the call emitted or skipped so far.
    offset: u64,
    captured: u64,
    flags: u32,
}

/// One `iovec`: emit its bytes. Returns 1 to stop the loop.
#[inline(never)]
extern "C" fn iovec_step(index: u64, context: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the `IovecWalk` given to it.
    let walk = unsafe { &mut *context.cast::<IovecWalk>() };
    let offset = opaque(walk.offset);
    if index >= walk.count || offset >= walk.captured {
        return 1;
    }
    let Some((base, len)) = read_iovec(walk.array, index) else { return 1 };
    let take = len.min(walk.captured - offset);
    let emitted = take.min((MAX_CHUNKS_PER_IOVEC * CHUNK_CAPACITY) as u64);
    count(Stat::BytesTruncated, take - emitted);
    // A loop of its own for the chunks: unrolled here, older verifiers (6.1)
    // follow paths its bounds rule out and reject it.
    let chunks = ChunkWalk { base, offset, len: emitted, last_at: walk.captured, flags: walk.flags, failed: 0 };
    if !chunks.emit(MAX_CHUNKS_PER_IOVEC) {
        return 1;
    }
    walk.offset = offset + take;
    0
}

/// `struct iovec { void *iov_base; size_t iov_len; }` number `index` of `array`.
fn read_iovec(array: u64, index: u64) -> Option<(u64, u64)> {
    // SAFETY: bpf_probe_read_user checks the address.
    match unsafe { bpf_probe_read_user((array + index * 16) as *const [u64; 2]) } {
        Ok([base, len]) => Some((base, len)),
        Err(_) => {
            count(Stat::ReadErrors, 1);
            None
        }
    }
}

/// The first `N` bytes at `source`, for recognising what a stream carries.
pub fn peek<const N: usize>(source: Source) -> Option<[u8; N]> {
    let address = match source {
        Source::Buffer(buf) => buf,
        Source::Iovecs { array, count } if count > 0 => read_iovec(array, 0)?.0,
        Source::Iovecs { .. } => return None,
    };
    // SAFETY: bpf_probe_read_user checks the address.
    unsafe { bpf_probe_read_user(address as *const [u8; N]) }.ok()
}

fn emit_chunk(scratch: &mut EventBuffer, src: u64, len: usize) -> Result<(), ()> {
    // Re-bound `len` in a form the verifier tracks through to the helpers.
    let len = len & (2 * CHUNK_CAPACITY - 1);
    if len == 0 || len > CHUNK_CAPACITY {
        return Err(());
    }
    // SAFETY: bpf_probe_read_user checks the source address; the destination
    // is the scratch buffer, `len` ≤ its size.
    if unsafe { bpf_probe_read_user_buf(src as *const u8, &mut scratch.data[..len]) }.is_err() {
        count(Stat::ReadErrors, 1);
        return Err(());
    }
    output::<EventBuffer>(scratch, EVENT_HEADER_LEN + len)
}

/// `bpf_ringbuf_output` flags and query: don't wake the reader, wake it
/// now, and how many bytes wait unread.
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

/// Unread bytes past which the reader is woken at once. Below it, user
/// space collects events on its own clock (`attach::DRAIN_INTERVAL`), so a
/// traced call does not pay for waking pytrace after every event.
const WAKEUP_BYTES: u64 = 512 * 1024;

/// Sends the first `len` bytes of the header-led record at `record`; the
/// reader is woken only once enough has accumulated.
#[inline(always)]
pub fn output<T>(record: &T, len: usize) -> Result<(), ()> {
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
    output_with_flags(record, len, flags)
}

/// Sends a record user space must act on at once: a process forked or ran
/// another program (its probes are due), or a Python stack with code
/// objects user space has not read yet (they must be read while they exist).
#[inline(always)]
pub fn output_urgent<T>(record: &T, len: usize) -> Result<(), ()> {
    output_with_flags(record, len, BPF_RB_FORCE_WAKEUP)
}

#[inline(always)]
fn output_with_flags<T>(record: &T, len: usize, flags: u64) -> Result<(), ()> {
    if len > core::mem::size_of::<T>() {
        return Err(());
    }
    // SAFETY: `record` is #[repr(C)] plain data at least `len` bytes long.
    let bytes = unsafe { core::slice::from_raw_parts((record as *const T).cast::<u8>(), len) };
    if EVENTS.output::<[u8]>(bytes, flags).is_err() {
        count(Stat::EventsLost, 1);
        return Err(());
    }
    Ok(())
}

/// Sends a header-only event, or a header followed by `payload`.
pub fn output_with<P: Copy>(header: EventHeader, payload: P) {
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Record<P> {
        header: EventHeader,
        payload: P,
    }
    let record = Record { header, payload };
    let _ = output(&record, core::mem::size_of::<Record<P>>());
}
