//! `--trace-function`: the start and end of calls of chosen Python
//! functions. Attached only when the flag is given, because these probes fire
//! on every Python call of the traced process.
//!
//! Which code objects are chosen is decided in user space: the first time a
//! code object is seen, its start is reported and it is marked pending (its
//! calls keep being reported); user space resolves its name and marks it
//! traced or ignored in `FUNCTION_CODES`. After that, untraced calls cost one
//! map lookup.
//!
//! - 3.8–3.10: every call runs `_PyEval_EvalFrameDefault`; its entry gives
//!   the frame, its return (keyed by the entry's stack pointer) the end. A
//!   generator's every resume is such a call; the frame's state tells a
//!   suspension from the end.
//! - 3.11+: Python-to-Python calls do not enter a C function. A call starts
//!   where its frame executes `RESUME` (probes sit on that instruction's
//!   handlers inside the interpreter loop, read from its dispatch table), and
//!   ends when its frame is cleared (`_PyFrame_Clear` /
//!   `_PyFrame_ClearExceptCode`), on return and on exception alike — or,
//!   in builds without those symbols, at the return instructions' handlers.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{
    ActiveFunction, ActiveFunctionKey, CODE_IGNORED, CODE_PENDING, EventHeader, EventKind, FUNCTION_FIRST_SEEN,
    FUNCTION_RAISED, FUNCTION_SUSPENDED, FUNCTION_UNWOUND, FunctionCodeKey, KernelMap, PY_STATE_BYTE,
    PY_STATE_STACKTOP, PyLayout, Stat,
};

use crate::emit::{output, traced_pid};
use crate::map_changes::{remove, store};
use crate::maps::{ACTIVE_FUNCTIONS, FUNCTION_CODES};
use crate::python::{current_frame, layout_of, read_u64, send_stack, thread_state};

/// `owner` of a frame that lives on a thread's own stack (3.11+).
const FRAME_OWNED_BY_THREAD: u8 = 0;

// 3.8: _PyEval_EvalFrameDefault(PyFrameObject *f, int throwflag)
#[uprobe]
pub fn py_eval_frame_entry_38(ctx: ProbeContext) -> u32 {
    eval_frame_entry(&ctx, ctx.arg(0).unwrap_or(0))
}

// 3.9, 3.10: _PyEval_EvalFrameDefault(PyThreadState *tstate, PyFrameObject *f, int throwflag)
#[uprobe]
pub fn py_eval_frame_entry(ctx: ProbeContext) -> u32 {
    eval_frame_entry(&ctx, ctx.arg(1).unwrap_or(0))
}

#[inline(always)]
fn eval_frame_entry(ctx: &ProbeContext, frame: u64) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let Some(layout) = layout_of(pid) else { return 0 };
    let Some(code) = read_u64(frame + u64::from(layout.frame_code)) else { return 0 };
    let Some(flags) = worth_reporting(pid, code) else { return 0 };
    // SAFETY: the context's registers are readable by kprobe-type programs.
    let stack_pointer = unsafe { (*ctx.regs).rsp };
    start(layout, ActiveFunctionKey { owner: pid_tgid, address: stack_pointer }, frame, code, pid_tgid, flags);
    0
}

#[uretprobe]
pub fn py_eval_frame_return(ctx: RetProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    // SAFETY: as above. After `ret` the stack pointer is 8 above the entry's.
    let stack_pointer = unsafe { (*ctx.regs).rsp };
    let key = ActiveFunctionKey { owner: pid_tgid, address: stack_pointer.wrapping_sub(8) };
    let Some(layout) = layout_of(pid) else { return 0 };
    // SAFETY: the value is copied out at once.
    let Some(call) = (unsafe { ACTIVE_FUNCTIONS.get(&key) }).copied() else { return 0 };
    remove!(ACTIVE_FUNCTIONS, KernelMap::ActiveFunctions, &key);
    let returned: u64 = ctx.ret();
    let flags = if returned == 0 {
        FUNCTION_RAISED
    } else if suspended(layout, call.frame) {
        FUNCTION_SUSPENDED
    } else {
        0
    };
    end(&call, pid_tgid, flags);
    0
}

/// 3.11+: on the `RESUME` instruction handlers (a call starting, or a
/// generator resuming).
#[uprobe]
pub fn py_resume(_ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let Some(layout) = layout_of(pid) else { return 0 };
    let Some(tstate) = thread_state(layout, pid_tgid) else { return 0 };
    let Some(frame) = current_frame(layout, tstate) else { return 0 };
    let Some(code) = read_u64(frame + u64::from(layout.frame_code)) else { return 0 };
    let code = code & !3;
    let Some(flags) = worth_reporting(pid, code) else { return 0 };
    let key = ActiveFunctionKey { owner: u64::from(pid) << 32, address: frame };
    // SAFETY: the value is copied out at once.
    if let Some(previous) = unsafe { ACTIVE_FUNCTIONS.get(&key) }.copied() {
        // SAFETY: bpf_probe_read_user checks the address.
        let owner = unsafe { bpf_probe_read_user((frame + u64::from(layout.frame_owner)) as *const u8) }.unwrap_or(0);
        if owner != FRAME_OWNED_BY_THREAD {
            return 0; // a generator resuming: its call goes on
        }
        // A new call in the same slot of the thread's stack: the earlier one
        // left without its frame being cleared where pytrace saw it.
        end(&previous, pid_tgid, FUNCTION_UNWOUND);
    }
    start(layout, key, frame, code, pid_tgid, flags);
    0
}

/// 3.11+: `_PyFrame_Clear(frame)` / `_PyFrame_ClearExceptCode(frame)`, run
/// when a frame is done, whether it returned or raised.
#[uprobe]
pub fn py_frame_clear(ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let frame: u64 = ctx.arg(0).unwrap_or(0);
    let key = ActiveFunctionKey { owner: u64::from(pid) << 32, address: frame };
    // SAFETY: the value is copied out at once.
    let Some(call) = (unsafe { ACTIVE_FUNCTIONS.get(&key) }).copied() else { return 0 };
    remove!(ACTIVE_FUNCTIONS, KernelMap::ActiveFunctions, &key);
    end(&call, pid_tgid, 0);
    0
}

/// 3.11+ builds without symbols: on the return instructions' handlers,
/// where the returning frame is still the thread's current one.
#[uprobe]
pub fn py_return(_ctx: ProbeContext) -> u32 {
    let Some((pid_tgid, pid)) = traced_pid(Stat::UprobeHits) else { return 0 };
    let Some(layout) = layout_of(pid) else { return 0 };
    let Some(tstate) = thread_state(layout, pid_tgid) else { return 0 };
    let Some(frame) = current_frame(layout, tstate) else { return 0 };
    let key = ActiveFunctionKey { owner: u64::from(pid) << 32, address: frame };
    // SAFETY: the value is copied out at once.
    let Some(call) = (unsafe { ACTIVE_FUNCTIONS.get(&key) }).copied() else { return 0 };
    remove!(ACTIVE_FUNCTIONS, KernelMap::ActiveFunctions, &key);
    end(&call, pid_tgid, 0);
    0
}

/// Whether a call of `code` is reported, with the start event's flags:
/// traced code, code never seen before (then pending until user space
/// decides), or pending code.
fn worth_reporting(pid: u32, code: u64) -> Option<u32> {
    let key = FunctionCodeKey { pid: u64::from(pid), code };
    // SAFETY: the value is copied out at once.
    match unsafe { FUNCTION_CODES.get(&key) }.copied() {
        Some(CODE_IGNORED) => None,
        Some(_) => Some(0),
        None => {
            store!(FUNCTION_CODES, KernelMap::FunctionCodes, &key, &CODE_PENDING);
            Some(FUNCTION_FIRST_SEEN)
        }
    }
}

#[inline(always)]
fn start(layout: &PyLayout, key: ActiveFunctionKey, frame: u64, code: u64, pid_tgid: u64, flags: u32) {
    // SAFETY: a helper without preconditions.
    let start_ns = unsafe { bpf_ktime_get_ns() };
    store!(ACTIVE_FUNCTIONS, KernelMap::ActiveFunctions, &key, &ActiveFunction { frame, code, start_ns });
    send_stack(EventKind::FunctionStart, layout, frame, pid_tgid, frame, flags);
}

fn end(call: &ActiveFunction, pid_tgid: u64, flags: u32) {
    // SAFETY: a helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let header = EventHeader {
        kind: EventKind::FunctionEnd as u32,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        conn_id: call.frame,
        call_start_ns: call.start_ns,
        call_end_ns: now,
        call_len: call.code,
        flags,
        ..EventHeader::default()
    };
    let _ = output(&header, core::mem::size_of::<EventHeader>());
}

/// 3.8–3.10: whether the frame that just left the interpreter loop was a
/// generator's that yielded (it will resume) rather than one that finished.
fn suspended(layout: &PyLayout, frame: u64) -> bool {
    let field = frame + u64::from(layout.frame_state);
    match layout.frame_state_kind {
        PY_STATE_STACKTOP => read_u64(field).is_some_and(|top| top != 0),
        // SAFETY: bpf_probe_read_user checks the address.
        PY_STATE_BYTE => unsafe { bpf_probe_read_user(field as *const i8) }.is_ok_and(|state| state == -1),
        _ => false,
    }
}
