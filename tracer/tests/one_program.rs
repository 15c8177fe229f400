//! The single-program tier, shaped like aya's integration tests: one kernel
//! program loaded from the object pytrace embeds, driven by this test
//! process, its maps and ring buffer read back — below the agent, so a
//! program's contract is checked on its own. Loading programs needs root,
//! as CI runs these tests; without it each test says so and returns.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::os::fd::AsRawFd;

use aya::Ebpf;
use aya::maps::{HashMap, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use pytrace_core::events::{ConnKey, Event, decode};
use tracer_common::{SOCKET_ID_BIT, SocketAddrs, SocketState, Stat, TLS_UNKNOWN, socket_key};

/// The kernel object with `program` (a syscall tracepoint) loaded and
/// attached, and this process among the traced ones; `None` without root.
fn with_tracepoint(program: &str) -> Option<(Ebpf, aya::programs::trace_point::TracePointLinkId)> {
    if !tracer::sys::is_root() {
        eprintln!("skipped: loading kernel programs needs root");
        return None;
    }
    tracer::privileges::ensure_tracing().unwrap();
    let mut ebpf = Ebpf::load(tracer::probes::kernel_object()).unwrap();
    let tracepoint: &mut TracePoint = ebpf.program_mut(program).unwrap().try_into().unwrap();
    tracepoint.load().unwrap();
    let link = tracepoint.attach("syscalls", program).unwrap();
    let mut traced: HashMap<_, u32, u8> = HashMap::try_from(ebpf.map_mut("TARGET_PIDS").unwrap()).unwrap();
    traced.insert(std::process::id(), 1, 0).unwrap();
    Some((ebpf, link))
}

#[test]
fn sys_enter_close_forgets_a_tracked_socket_and_reports_its_close() {
    let Some((mut ebpf, _link)) = with_tracepoint("sys_enter_close") else { return };
    let pid = std::process::id();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let key = socket_key(pid, listener.as_raw_fd() as u32);
    let conn_id = SOCKET_ID_BIT | 0x5eed;
    let state = SocketState { conn_id, addrs: SocketAddrs::default(), tls: TLS_UNKNOWN, _pad: 0 };
    {
        let mut sockets: HashMap<_, u64, SocketState> = HashMap::try_from(ebpf.map_mut("SOCKETS").unwrap()).unwrap();
        sockets.insert(key, state, 0).unwrap();
        assert!(sockets.get(&key, 0).is_ok());
    }

    drop(listener); // close(2) on the tracked descriptor

    let sockets: HashMap<_, u64, SocketState> = HashMap::try_from(ebpf.map("SOCKETS").unwrap()).unwrap();
    assert!(sockets.get(&key, 0).is_err(), "the closed socket is still tracked");
    let mut events = RingBuf::try_from(ebpf.map_mut("EVENTS").unwrap()).unwrap();
    let mut closes = Vec::new();
    while let Some(record) = events.next() {
        if let Ok(Event::Closed { conn, .. }) = decode(&record) {
            closes.push(conn);
        }
    }
    assert_eq!(closes, [ConnKey { pid, conn_id }], "one close event, for the tracked socket only");
    let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(ebpf.map("STATS").unwrap()).unwrap();
    let hits: u64 = stats.get(&(Stat::TracepointHits as u32), 0).unwrap().iter().sum();
    assert!(hits >= 1, "the program counted no hit of this process");
}

#[test]
fn sys_enter_close_ignores_processes_that_are_not_traced() {
    let Some((mut ebpf, _link)) = with_tracepoint("sys_enter_close") else { return };
    let mut traced: HashMap<_, u32, u8> = HashMap::try_from(ebpf.map_mut("TARGET_PIDS").unwrap()).unwrap();
    traced.remove(&std::process::id()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let key = socket_key(std::process::id(), listener.as_raw_fd() as u32);
    let state = SocketState { conn_id: SOCKET_ID_BIT | 7, addrs: SocketAddrs::default(), tls: TLS_UNKNOWN, _pad: 0 };
    let mut sockets: HashMap<_, u64, SocketState> = HashMap::try_from(ebpf.map_mut("SOCKETS").unwrap()).unwrap();
    sockets.insert(key, state, 0).unwrap();

    drop(listener);

    assert!(sockets.get(&key, 0).is_ok(), "an untraced process's close touched the map");
}
