//! Kernel side of pytrace's TLS capture.
//!
//! Uprobes on OpenSSL's `SSL_read`/`SSL_write` family remember each call's
//! arguments at entry; one shared uretprobe reads how many bytes the call moved
//! and copies that plaintext, in chunks of at most `CHUNK_CAPACITY` bytes, into
//! a ring buffer. Copying at return serves both directions: a write's buffer is
//! still valid and a read's buffer is filled. A uprobe on `SSL_free` reports the
//! connection's end. Every program first checks that the caller is a traced
//! process, so other users of the same library pay only the uprobe itself.
//! Nothing is logged from here: failures are counted in the per-CPU `STATS`
//! array, which user space reports.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user, bpf_probe_read_user_buf,
    },
    macros::{map, uprobe, uretprobe},
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{
    CHUNK_CAPACITY, DEFAULT_CAPTURE_LIMIT, Direction, EVENT_HEADER_LEN, EventBuffer, EventHeader,
    EventKind, FLAG_LAST_CHUNK, FLAG_TRUNCATED, MAX_CAPTURE_LIMIT, MAX_CHUNKS_PER_CALL, STAT_COUNT,
    SslCall, Stat,
};

/// Bytes captured per call; set by user space at load time (`--capture-limit`).
#[unsafe(no_mangle)]
static CAPTURE_LIMIT: u32 = DEFAULT_CAPTURE_LIMIT;

/// Events to user space.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Process ids (tgid) being traced; the value is unused.
#[map]
static TARGET_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(4096, 0);

/// Calls between entry and return, keyed by pid_tgid (a thread is in at most
/// one SSL call at a time).
#[map]
static ACTIVE_CALLS: LruHashMap<u64, SslCall> = LruHashMap::with_max_entries(16384, 0);

/// Counters indexed by `tracer_common::Stat`.
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

/// Scratch space to assemble one event (too large for the 512-byte stack).
#[map]
static SCRATCH: PerCpuArray<EventBuffer> = PerCpuArray::with_max_entries(1, 0);

fn count(stat: Stat, by: u64) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU value owned by this CPU for the program's duration.
        unsafe { *counter += by };
    }
}

/// The caller's pid_tgid and pid when it is a traced process; counts the hit.
fn traced_pid() -> Option<(u64, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    // SAFETY: the value is only tested for presence.
    unsafe { TARGET_PIDS.get(&pid) }?;
    count(Stat::ProbeHits, 1);
    Some((pid_tgid, pid))
}

fn remember_call(ctx: &ProbeContext, direction: Direction, has_len_out: bool) {
    let Some((pid_tgid, _)) = traced_pid() else {
        return;
    };
    let ssl: u64 = ctx.arg(0).unwrap_or(0);
    let buf: u64 = ctx.arg(1).unwrap_or(0);
    let len_out: u64 = if has_len_out {
        ctx.arg(3).unwrap_or(0)
    } else {
        0
    };
    let call = SslCall {
        ssl,
        buf,
        len_out,
        start_ns: unsafe { bpf_ktime_get_ns() },
        direction: direction as u32,
        _pad: 0,
    };
    let _ = ACTIVE_CALLS.insert(&pid_tgid, &call, 0);
}

// int SSL_write(SSL *ssl, const void *buf, int num);
#[uprobe]
pub fn ssl_write(ctx: ProbeContext) -> u32 {
    remember_call(&ctx, Direction::Egress, false);
    0
}

// int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written);
#[uprobe]
pub fn ssl_write_ex(ctx: ProbeContext) -> u32 {
    remember_call(&ctx, Direction::Egress, true);
    0
}

// int SSL_read(SSL *ssl, void *buf, int num);
#[uprobe]
pub fn ssl_read(ctx: ProbeContext) -> u32 {
    remember_call(&ctx, Direction::Ingress, false);
    0
}

// int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes);
#[uprobe]
pub fn ssl_read_ex(ctx: ProbeContext) -> u32 {
    remember_call(&ctx, Direction::Ingress, true);
    0
}

/// Return of any of the four calls above: emit what the call moved.
#[uretprobe]
pub fn ssl_call_return(ctx: RetProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid() else {
        return 0;
    };
    // SAFETY: the entry is copied out before anything else touches the map.
    let Some(call) = (unsafe { ACTIVE_CALLS.get(&pid_tgid) }).copied() else {
        count(Stat::OrphanReturns, 1);
        return 0;
    };
    let _ = ACTIVE_CALLS.remove(&pid_tgid);
    let ret: i32 = ctx.ret();
    let moved = match moved_bytes(&call, ret) {
        Some(moved) if moved > 0 => moved,
        _ => return 0,
    };
    let header = EventHeader {
        kind: EventKind::TlsData as u32,
        pid,
        tid: pid_tgid as u32,
        direction: call.direction,
        conn_id: call.ssl,
        call_start_ns: call.start_ns,
        call_end_ns: unsafe { bpf_ktime_get_ns() },
        call_len: moved,
        chunk_offset: 0,
        chunk_len: 0,
        flags: 0,
        _pad: 0,
    };
    emit_chunks(header, call.buf);
    0
}

/// Bytes the call reported as moved: the return value of `SSL_read`/`SSL_write`,
/// or, for the `_ex` variants (which return 1 on success), the out-parameter.
fn moved_bytes(call: &SslCall, ret: i32) -> Option<u64> {
    if call.len_out == 0 {
        return (ret > 0).then_some(ret as u64);
    }
    if ret != 1 {
        return None;
    }
    // SAFETY: bpf_probe_read_user checks the address.
    match unsafe { bpf_probe_read_user(call.len_out as *const u64) } {
        Ok(len) => Some(len),
        Err(_) => {
            count(Stat::ReadErrors, 1);
            None
        }
    }
}

fn emit_chunks(mut header: EventHeader, buf: u64) {
    // SAFETY: read of a constant patched by the loader.
    let limit = unsafe { core::ptr::read_volatile(&CAPTURE_LIMIT) }.min(MAX_CAPTURE_LIMIT) as u64;
    let captured = if header.call_len > limit {
        header.flags |= FLAG_TRUNCATED;
        count(Stat::CallsTruncated, 1);
        count(Stat::BytesTruncated, header.call_len - limit);
        limit
    } else {
        header.call_len
    };
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    for index in 0..MAX_CHUNKS_PER_CALL {
        let offset = (index * CHUNK_CAPACITY) as u64;
        if offset >= captured {
            break;
        }
        let remaining = captured - offset;
        let len = if remaining > CHUNK_CAPACITY as u64 {
            CHUNK_CAPACITY
        } else {
            remaining as usize
        };
        header.chunk_offset = offset as u32;
        header.chunk_len = len as u32;
        if offset + len as u64 >= captured {
            header.flags |= FLAG_LAST_CHUNK;
        }
        scratch.header = header;
        if emit_chunk(scratch, buf + offset, len).is_err() {
            return;
        }
    }
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
    // SAFETY: EventBuffer is #[repr(C)] plain data; viewing its first
    // `EVENT_HEADER_LEN + len` bytes is in bounds.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (scratch as *const EventBuffer).cast::<u8>(),
            EVENT_HEADER_LEN + len,
        )
    };
    if EVENTS.output::<[u8]>(bytes, 0).is_err() {
        count(Stat::EventsLost, 1);
        return Err(());
    }
    Ok(())
}

// void SSL_free(SSL *ssl);
#[uprobe]
pub fn ssl_free(ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid() else {
        return 0;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    let header = EventHeader {
        kind: EventKind::TlsClosed as u32,
        pid,
        tid: pid_tgid as u32,
        conn_id: ctx.arg(0).unwrap_or(0),
        call_start_ns: now,
        call_end_ns: now,
        ..EventHeader::default()
    };
    // SAFETY: EventHeader is #[repr(C)] plain data.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (&header as *const EventHeader).cast::<u8>(),
            EVENT_HEADER_LEN,
        )
    };
    if EVENTS.output::<[u8]>(bytes, 0).is_err() {
        count(Stat::EventsLost, 1);
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
