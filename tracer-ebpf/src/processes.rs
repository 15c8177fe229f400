//! `pytrace run` and `pytrace node`: a traced process's children join the
//! traced set the moment they are forked — in the kernel, before the child
//! runs — and user space hears of each fork and exec to set up the rest
//! (resources, libraries, Python context). `node` also hears of every other
//! process's exec, to find new Python processes. Attached only when
//! following children — but for `sys_enter_mmap`, which tells user space
//! when a traced process loads a library, in every mode.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{EventHeader, EventKind, KernelMap, Stat};

use crate::emit::{count, output_urgent, traced_pid};
use crate::map_changes::store;
use crate::maps::{FORK_CHILD_PID_OFFSET, PY_LAYOUTS, TARGET_PIDS, WATCH_ALL_EXECS};
use crate::sockets::arg;

// sched:sched_process_fork, run by the parent.
#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, _)) = traced_pid(Stat::TracepointHits) else { return 0 };
    // SAFETY: a constant patched by the loader from the tracepoint's format file.
    let offset = unsafe { core::ptr::read_volatile(&FORK_CHILD_PID_OFFSET) } as usize;
    // SAFETY: the offset of `child_pid` in this kernel's record.
    let Ok(child) = (unsafe { ctx.read_at::<i32>(offset & 0xff) }) else { return 0 };
    let child = child as u32;
    // A new thread also forks; user space drops it when its thread group is already traced.
    store!(TARGET_PIDS, KernelMap::TracedProcesses, &child, &1);
    // A forked interpreter has its parent's layout: its stacks are captured
    // from its first request on.
    let parent = (pid_tgid >> 32) as u32;
    // SAFETY: the value is copied out at once.
    if let Some(layout) = unsafe { PY_LAYOUTS.get(&parent) }.copied() {
        store!(PY_LAYOUTS, KernelMap::PythonLayouts, &child, &layout);
    }
    notify(EventKind::ProcessForked, pid_tgid, child);
    0
}

// sched:sched_process_exec, run by the process that just replaced its image.
#[tracepoint]
pub fn sched_process_exec(_ctx: TracePointContext) -> u32 {
    // SAFETY: a constant patched by the loader.
    if unsafe { core::ptr::read_volatile(&WATCH_ALL_EXECS) } != 0 {
        count(Stat::TracepointHits, 1);
        let pid_tgid = bpf_get_current_pid_tgid();
        notify(EventKind::ProcessExec, pid_tgid, (pid_tgid >> 32) as u32);
        return 0;
    }
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    notify(EventKind::ProcessExec, pid_tgid, pid);
    0
}

/// `PROT_EXEC` in `mmap`'s `prot`.
const PROT_EXEC: u64 = 4;

// void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
// A traced process mapping a file executable — the dynamic loader placing
// a library's code — tells user space to look at its memory map again,
// instead of user space re-reading every process's map on a timer.
#[tracepoint]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::TracepointHits) else { return 0 };
    let (prot, fd) = (arg(&ctx, 2), arg(&ctx, 4) as i32);
    if prot & PROT_EXEC != 0 && fd >= 0 {
        notify(EventKind::ProcessMapped, pid_tgid, pid);
    }
    0
}

fn notify(kind: EventKind, pid_tgid: u64, subject: u32) {
    // SAFETY: a helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let header = EventHeader {
        kind: kind as u32,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        conn_id: u64::from(subject),
        call_start_ns: now,
        call_end_ns: now,
        ..EventHeader::default()
    };
    let _ = output_urgent(&header, core::mem::size_of::<EventHeader>());
}
