//! Uprobes on OpenSSL: the plaintext of TLS connections, their end, and the
//! SNI host name the client asked for.
//!
//! Entry probes remember a call's arguments; one shared return probe reads
//! how many bytes the call moved and copies them. Copying at return serves
//! both directions: a write's buffer is still valid and a read's is filled.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user, bpf_probe_read_user_str_bytes},
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{Direction, EVENT_HEADER_LEN, EventHeader, EventKind, KernelMap, SslCall, Stat};

use crate::emit::{Source, count, emit_chunks, output, output_with, traced_pid};
use crate::map_changes::store;
use crate::maps::{ACTIVE_CALLS, SCRATCH};

/// `SSL_CTRL_SET_TLSEXT_HOSTNAME`: what `SSL_set_tlsext_host_name` passes to `SSL_ctrl`.
const SSL_CTRL_SET_TLSEXT_HOSTNAME: i32 = 55;
/// Longest SNI name captured (DNS names are at most 253 bytes).
const MAX_SERVER_NAME: usize = 256;

/// Entry of an SSL call: the Python stack when it starts an HTTP message,
/// and the call's arguments for its return.
#[inline(always)]
fn enter(ctx: &ProbeContext, direction: Direction, has_len_out: bool) {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return };
    let ssl: u64 = ctx.arg(0).unwrap_or(0);
    let buf: u64 = ctx.arg(1).unwrap_or(0);
    if direction == Direction::Egress && crate::python::starts_message(Source::Buffer(buf)) {
        crate::python::capture_stack(pid_tgid, pid, ssl);
    }
    let len_out = if has_len_out { ctx.arg(3).unwrap_or(0) } else { 0 };
    remember_call(pid_tgid, ssl, buf, len_out, direction);
}

/// Stores the call for its return. A function of its own, so that the
/// entry is not on the stack while the Python stack is walked.
#[inline(never)]
fn remember_call(pid_tgid: u64, ssl: u64, buf: u64, len_out: u64, direction: Direction) {
    // SAFETY: a helper without preconditions.
    let start_ns = unsafe { bpf_ktime_get_ns() };
    let call = SslCall { ssl, buf, len_out, start_ns, direction: direction as u32, active: 1 };
    store!(ACTIVE_CALLS, KernelMap::SslCalls, &pid_tgid, &call);
}

/// The calling thread's SSL call in flight, if any.
pub fn active_call(pid_tgid: u64) -> Option<SslCall> {
    // SAFETY: the entry is copied out at once.
    unsafe { ACTIVE_CALLS.get(&pid_tgid) }.copied().filter(|call| call.active != 0)
}

// int SSL_write(SSL *ssl, const void *buf, int num);
#[uprobe]
pub fn ssl_write(ctx: ProbeContext) -> u32 {
    enter(&ctx, Direction::Egress, false);
    0
}

// int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written);
#[uprobe]
pub fn ssl_write_ex(ctx: ProbeContext) -> u32 {
    enter(&ctx, Direction::Egress, true);
    0
}

// int SSL_read(SSL *ssl, void *buf, int num);
#[uprobe]
pub fn ssl_read(ctx: ProbeContext) -> u32 {
    enter(&ctx, Direction::Ingress, false);
    0
}

// int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes);
#[uprobe]
pub fn ssl_read_ex(ctx: ProbeContext) -> u32 {
    enter(&ctx, Direction::Ingress, true);
    0
}

/// Return of any of the four calls above: emit what the call moved.
#[uretprobe]
pub fn ssl_call_return(ctx: RetProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    // SAFETY (both blocks): map value pointer valid for this program run;
    // the call is copied out and marked ended before anything else touches it.
    let Some(slot) = ACTIVE_CALLS.get_ptr_mut(&pid_tgid).filter(|&slot| unsafe { (*slot).active } != 0) else {
        count(Stat::OrphanReturns, 1);
        return 0;
    };
    let call = unsafe { *slot };
    unsafe { (*slot).active = 0 };
    let moved = match moved_bytes(&call, ctx.ret()) {
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
        ..EventHeader::default()
    };
    emit_chunks(&header, Source::Buffer(call.buf));
    0
}

/// Bytes the call reported as moved: the return value of `SSL_read`/`SSL_write`,
/// or, for the `_ex` variants and the internal functions they call (which
/// return a positive value, 1, on success), the out-parameter.
fn moved_bytes(call: &SslCall, ret: i32) -> Option<u64> {
    if ret <= 0 {
        return None;
    }
    if call.len_out == 0 {
        return Some(ret as u64);
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

// void SSL_free(SSL *ssl);
#[uprobe]
pub fn ssl_free(ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
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
    output_with(header, ());
    0
}

// long SSL_ctrl(SSL *ssl, int cmd, long larg, void *parg);
#[uprobe]
pub fn ssl_ctrl(ctx: ProbeContext) -> u32 {
    let cmd: i32 = ctx.arg(1).unwrap_or(0);
    if cmd != SSL_CTRL_SET_TLSEXT_HOSTNAME {
        return 0;
    }
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let name: u64 = ctx.arg(3).unwrap_or(0);
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return 0 };
    // SAFETY: per-CPU scratch value, exclusively ours while this program runs.
    let scratch = unsafe { &mut *scratch };
    // SAFETY: bpf_probe_read_user_str_bytes checks the address and bounds.
    let Ok(bytes) = (unsafe { bpf_probe_read_user_str_bytes(name as *const u8, &mut scratch.data[..MAX_SERVER_NAME]) })
    else {
        count(Stat::ReadErrors, 1);
        return 0;
    };
    let len = bytes.len() & (MAX_SERVER_NAME - 1);
    let now = unsafe { bpf_ktime_get_ns() };
    scratch.header = EventHeader {
        kind: EventKind::TlsServerName as u32,
        pid,
        tid: pid_tgid as u32,
        conn_id: ctx.arg(0).unwrap_or(0),
        call_start_ns: now,
        call_end_ns: now,
        call_len: len as u64,
        chunk_len: len as u32,
        ..EventHeader::default()
    };
    let _ = output(&*scratch, EVENT_HEADER_LEN + len);
    0
}
