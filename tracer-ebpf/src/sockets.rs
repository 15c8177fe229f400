//! Syscall tracepoints: which file descriptors of the traced processes are
//! TCP sockets (and their peers), and the bytes of the plaintext ones.
//!
//! `socket`, `connect`, `accept`/`accept4` and `close` maintain the `SOCKETS`
//! map (user space adds the sockets that existed at attach). Data syscalls on
//! other descriptors — files, pipes, UDP — are ignored after one map
//! look-up. A socket written to from inside an SSL call, or whose bytes start
//! like a TLS record, carries TLS: its plaintext comes from the SSL probes,
//! so it is marked and never captured here; the first such write also ties
//! the `SSL*` to the socket's addresses.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    AF_INET, AF_INET6, Direction, EventHeader, EventKind, KernelMap, PendingSocketCall, ROLE_CLIENT, ROLE_SERVER,
    SOCKET_ID_BIT, SocketAddrs, SocketCall, SocketState, Stat, TLS_LINKED, TLS_SEEN, TLS_UNKNOWN, socket_key,
};

use crate::emit::{Source, count, emit_chunks, output_with, peek, traced_pid};
use crate::map_changes::{remove, store};
use crate::maps::{ACTIVE_SOCKET_CALLS, NEXT_SOCKET_ID, PENDING_SOCKET_CALLS, SOCKETS};
use crate::tls::active_call;

const SOCK_STREAM: u64 = 1;
/// `SOCK_NONBLOCK`/`SOCK_CLOEXEC` share the type argument; the type is the low bits.
const SOCK_TYPE_MASK: u64 = 0xf;

/// `syscalls:sys_enter_*` argument `n`, and `sys_exit_*`'s return value.
/// A direct load from the record (the verifier allows aligned reads of a
/// tracepoint's context) rather than `read_at`'s helper call per argument.
#[inline(always)]
pub fn arg(ctx: &TracePointContext, n: usize) -> u64 {
    // SAFETY: syscall tracepoint records hold 8-byte arguments from offset
    // 16, six of them: `n` < 6 at every call site.
    unsafe { ctx.as_ptr().cast::<u8>().add(16 + 8 * n).cast::<u64>().read() }
}
fn ret(ctx: &TracePointContext) -> i64 {
    arg(ctx, 0) as i64
}

fn new_socket_id() -> u64 {
    let cpu = u64::from(unsafe { bpf_get_smp_processor_id() });
    let counter = match NEXT_SOCKET_ID.get_ptr_mut(0) {
        // SAFETY: per-CPU value owned by this CPU for the program's duration.
        Some(next) => unsafe {
            *next += 1;
            *next
        },
        None => 0,
    };
    SOCKET_ID_BIT | (cpu << 40) | (counter & ((1 << 40) - 1))
}

fn event_header(kind: EventKind, pid_tgid: u64, conn_id: u64) -> EventHeader {
    let now = unsafe { bpf_ktime_get_ns() };
    EventHeader {
        kind: kind as u32,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        conn_id,
        call_start_ns: now,
        call_end_ns: now,
        ..EventHeader::default()
    }
}

/// Reads a `sockaddr_in`/`sockaddr_in6` as the peer of `addrs`.
fn read_peer(sockaddr: u64, addrs: &mut SocketAddrs) {
    if sockaddr == 0 {
        return;
    }
    // SAFETY: bpf_probe_read_user checks the address. Layout: family (u16),
    // port (big-endian u16), then IPv4 at 4 or (after flowinfo) IPv6 at 8.
    let Ok(head) = (unsafe { bpf_probe_read_user(sockaddr as *const [u8; 24]) }) else {
        count(Stat::ReadErrors, 1);
        return;
    };
    let family = u16::from_ne_bytes([head[0], head[1]]);
    addrs.family = family;
    addrs.peer_port = u16::from_be_bytes([head[2], head[3]]);
    if family == AF_INET {
        addrs.peer_addr[..4].copy_from_slice(&head[4..8]);
    } else if family == AF_INET6 {
        addrs.peer_addr.copy_from_slice(&head[8..24]);
    }
}

// int socket(int family, int type, int protocol);
#[tracepoint]
pub fn sys_enter_socket(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, _)) = traced_pid(Stat::TracepointHits) else { return 0 };
    let (family, kind) = (arg(&ctx, 0), arg(&ctx, 1));
    if (family == u64::from(AF_INET) || family == u64::from(AF_INET6)) && kind & SOCK_TYPE_MASK == SOCK_STREAM {
        store!(
            PENDING_SOCKET_CALLS,
            KernelMap::PendingSocketCalls,
            &pid_tgid,
            &PendingSocketCall { arg0: family, arg1: kind }
        );
    }
    0
}

#[tracepoint]
pub fn sys_exit_socket(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    // SAFETY: copied out before the map changes.
    let Some(pending) = (unsafe { PENDING_SOCKET_CALLS.get(&pid_tgid) }).copied() else { return 0 };
    remove!(PENDING_SOCKET_CALLS, KernelMap::PendingSocketCalls, &pid_tgid);
    let fd = ret(&ctx);
    if fd >= 0 {
        let addrs = SocketAddrs { family: pending.arg0 as u16, role: ROLE_CLIENT, ..SocketAddrs::default() };
        let state = SocketState { conn_id: new_socket_id(), addrs, tls: TLS_UNKNOWN, _pad: 0 };
        store!(SOCKETS, KernelMap::Sockets, &socket_key(pid, fd as u32), &state);
    }
    0
}

// int connect(int fd, struct sockaddr *uservaddr, int addrlen);
#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    let Some(state) = SOCKETS.get_ptr_mut(&socket_key(pid, arg(&ctx, 0) as u32)) else { return 0 };
    // SAFETY: map value pointer valid for this program run.
    let state = unsafe { &mut *state };
    read_peer(arg(&ctx, 1), &mut state.addrs);
    output_with(event_header(EventKind::SocketInfo, pid_tgid, state.conn_id), state.addrs);
    0
}

// int accept4(int fd, struct sockaddr *upeer_sockaddr, int *upeer_addrlen, int flags);
#[tracepoint]
pub fn sys_enter_accept(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    let listening = arg(&ctx, 0);
    // SAFETY: only tested for presence.
    if unsafe { SOCKETS.get(&socket_key(pid, listening as u32)) }.is_some() {
        let pending = PendingSocketCall { arg0: listening, arg1: arg(&ctx, 1) };
        store!(PENDING_SOCKET_CALLS, KernelMap::PendingSocketCalls, &pid_tgid, &pending);
    }
    0
}

#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    // SAFETY: copied out before the map changes.
    let Some(pending) = (unsafe { PENDING_SOCKET_CALLS.get(&pid_tgid) }).copied() else { return 0 };
    remove!(PENDING_SOCKET_CALLS, KernelMap::PendingSocketCalls, &pid_tgid);
    let fd = ret(&ctx);
    if fd < 0 {
        return 0;
    }
    let mut addrs = SocketAddrs { role: ROLE_SERVER, ..SocketAddrs::default() };
    read_peer(pending.arg1, &mut addrs);
    let state = SocketState { conn_id: new_socket_id(), addrs, tls: TLS_UNKNOWN, _pad: 0 };
    store!(SOCKETS, KernelMap::Sockets, &socket_key(pid, fd as u32), &state);
    output_with(event_header(EventKind::SocketInfo, pid_tgid, state.conn_id), addrs);
    0
}

// int close(unsigned int fd);
#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    let key = socket_key(pid, arg(&ctx, 0) as u32);
    // SAFETY: copied out before the map changes.
    let Some(state) = (unsafe { SOCKETS.get(&key) }).copied() else { return 0 };
    remove!(SOCKETS, KernelMap::Sockets, &key);
    output_with(event_header(EventKind::PlainClosed, pid_tgid, state.conn_id), ());
    0
}

/// How a data syscall passes its bytes.
#[derive(Clone, Copy)]
enum Args {
    /// `(fd, buf, len, …)`: read, write, recvfrom, sendto.
    Buffer,
    /// `(fd, iov, iovcnt)`: readv, writev.
    Iovecs,
    /// `(fd, msghdr, flags)`: recvmsg, sendmsg.
    Message,
}

/// Entry of a data syscall of a traced process: the Python stack when it
/// starts an HTTP message on a plaintext socket.
#[inline(always)]
fn data_enter(ctx: &TracePointContext, args: Args, direction: Direction) {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return };
    let conn_id = note_data_call(ctx, args, direction, pid_tgid);
    if conn_id != 0 {
        crate::python::capture_stack(pid_tgid, pid, conn_id);
    }
}

/// Remembers a data call on a plaintext TCP socket for its exit (or ties a
/// socket to the TLS connection it carries); returns the connection when
/// the call starts an HTTP message, else 0 (socket ids are never 0). A
/// function of its own, so that what it builds is not on the stack while the
/// Python stack is walked; at most five arguments and no `Option` (BPF
/// passes nothing on the stack).
#[inline(never)]
fn note_data_call(ctx: &TracePointContext, args: Args, direction: Direction, pid_tgid: u64) -> u64 {
    note_data_call_inner(ctx, args, direction, pid_tgid).unwrap_or(0)
}

#[inline(always)]
fn note_data_call_inner(ctx: &TracePointContext, args: Args, direction: Direction, pid_tgid: u64) -> Option<u64> {
    let pid = (pid_tgid >> 32) as u32;
    let fd = arg(ctx, 0) as u32;
    let state = SOCKETS.get_ptr_mut(&socket_key(pid, fd))?;
    // SAFETY: map value pointer valid for this program run.
    let state = unsafe { &mut *state };
    // Inside an SSL call: this socket carries that TLS connection, reported
    // once. Checked before `tls`, which the handshake has usually set already.
    if state.tls != TLS_LINKED
        && let Some(ssl_call) = active_call(pid_tgid)
    {
        state.tls = TLS_LINKED;
        output_with(event_header(EventKind::TlsSocket, pid_tgid, ssl_call.ssl), state.addrs);
        return None;
    }
    if state.tls != TLS_UNKNOWN {
        return None;
    }
    let (buf, iov_count) = match args {
        Args::Buffer => (arg(ctx, 1), 0),
        Args::Iovecs => (arg(ctx, 1), arg(ctx, 2)),
        Args::Message => {
            // struct msghdr { void *msg_name; int msg_namelen; struct iovec *msg_iov; size_t msg_iovlen; … }
            // SAFETY: bpf_probe_read_user checks the address.
            let msg = unsafe { bpf_probe_read_user(arg(ctx, 1) as *const [u64; 4]) }.ok()?;
            (msg[2], msg[3])
        }
    };
    if matches!(args, Args::Iovecs | Args::Message) && iov_count == 0 {
        return None;
    }
    let source = if iov_count == 0 { Source::Buffer(buf) } else { Source::Iovecs { array: buf, count: iov_count } };
    let call = SocketCall {
        conn_id: state.conn_id,
        buf,
        iov_count,
        start_ns: unsafe { bpf_ktime_get_ns() },
        fd,
        direction: direction as u32,
    };
    store!(ACTIVE_SOCKET_CALLS, KernelMap::SocketCalls, &pid_tgid, &call);
    (direction == Direction::Egress && crate::python::starts_message(source)).then_some(call.conn_id)
}

/// TLS records begin with a content type 20–23 and protocol major version 3.
fn is_tls_record(head: [u8; 3]) -> bool {
    (20..=23).contains(&head[0]) && head[1] == 3 && head[2] <= 4
}

/// Exit of read, write, recvfrom and sendto.
#[tracepoint]
pub fn sys_exit_buffer_data(ctx: TracePointContext) -> u32 {
    data_exit(&ctx, |call| Source::Buffer(call.buf));
    0
}

/// Exit of readv, writev, recvmsg and sendmsg. A separate program from the
/// single-buffer one keeps each within the verifier's budget.
#[tracepoint]
pub fn sys_exit_iovec_data(ctx: TracePointContext) -> u32 {
    data_exit(&ctx, |call| Source::Iovecs { array: call.buf, count: call.iov_count });
    0
}

/// Emits what a data syscall moved on a plaintext socket.
#[inline(always)]
fn data_exit(ctx: &TracePointContext, source_of: impl Fn(&SocketCall) -> Source) {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return };
    // SAFETY: copied out before the map changes.
    let Some(call) = (unsafe { ACTIVE_SOCKET_CALLS.get(&pid_tgid) }).copied() else { return };
    remove!(ACTIVE_SOCKET_CALLS, KernelMap::SocketCalls, &pid_tgid);
    let moved = ret(ctx);
    if moved <= 0 {
        return;
    }
    let source = source_of(&call);
    if peek::<3>(source).is_some_and(is_tls_record) {
        if let Some(state) = SOCKETS.get_ptr_mut(&socket_key(pid, call.fd)) {
            // SAFETY: map value pointer valid for this program run.
            unsafe { (*state).tls = TLS_SEEN };
        }
        return;
    }
    let header = EventHeader {
        kind: EventKind::PlainData as u32,
        pid,
        tid: pid_tgid as u32,
        direction: call.direction,
        conn_id: call.conn_id,
        call_start_ns: call.start_ns,
        call_end_ns: unsafe { bpf_ktime_get_ns() },
        call_len: moved as u64,
        ..EventHeader::default()
    };
    emit_chunks(&header, source);
}

// ssize_t write(int fd, const void *buf, size_t count);
#[tracepoint]
pub fn sys_enter_write(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Buffer, Direction::Egress);
    0
}
// ssize_t sendto(int fd, const void *buf, size_t len, int flags, …);
#[tracepoint]
pub fn sys_enter_sendto(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Buffer, Direction::Egress);
    0
}
// ssize_t writev(int fd, const struct iovec *iov, int iovcnt);
#[tracepoint]
pub fn sys_enter_writev(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Iovecs, Direction::Egress);
    0
}
// ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);
#[tracepoint]
pub fn sys_enter_sendmsg(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Message, Direction::Egress);
    0
}
// ssize_t read(int fd, void *buf, size_t count);
#[tracepoint]
pub fn sys_enter_read(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Buffer, Direction::Ingress);
    0
}
// ssize_t recvfrom(int fd, void *buf, size_t len, int flags, …);
#[tracepoint]
pub fn sys_enter_recvfrom(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Buffer, Direction::Ingress);
    0
}
// ssize_t readv(int fd, const struct iovec *iov, int iovcnt);
#[tracepoint]
pub fn sys_enter_readv(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Iovecs, Direction::Ingress);
    0
}
// ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
#[tracepoint]
pub fn sys_enter_recvmsg(ctx: TracePointContext) -> u32 {
    data_enter(&ctx, Args::Message, Direction::Ingress);
    0
}
