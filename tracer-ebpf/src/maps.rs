//! The maps and load-time constants shared by all programs.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use tracer_common::{
    ActiveFunction, ActiveFunctionKey, DEFAULT_CAPTURE_LIMIT, EventBuffer, FunctionCodeKey, KERNEL_MAP_COUNT,
    KernelMap, KnownStackKey, MAP_CHANGE_KINDS, PendingSocketCall, PyLayout, STAT_COUNT, SocketCall, SocketState,
    SslCall, StackBuffer,
};

/// Bytes captured per call; set by user space at load time (`--capture-limit`).
#[unsafe(no_mangle)]
pub static CAPTURE_LIMIT: u32 = DEFAULT_CAPTURE_LIMIT;

/// Where `child_pid` is in a `sched:sched_process_fork` record (it moved
/// between kernel versions); set by user space from the format file.
#[unsafe(no_mangle)]
pub static FORK_CHILD_PID_OFFSET: u32 = 20;

/// `pytrace node`: report every process's exec, not only the traced ones'
/// (1), so user space can start tracing new Python processes; set at load time.
#[unsafe(no_mangle)]
pub static WATCH_ALL_EXECS: u32 = 0;

/// Events to user space. Its pages count twice in pytrace's RSS (the
/// kernel maps the data area twice for wrap-around reads), so it is sized
/// for bursts between two collections, not for minutes of backlog.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);

/// Process ids (tgid) being traced; the value is unused.
#[map]
pub static TARGET_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(KernelMap::TracedProcesses.capacity(), 0);

/// Each thread's SSL call, keyed by pid_tgid (a thread is in at most one SSL
/// call at a time); `SslCall::active` tells whether it is in flight.
#[map]
pub static ACTIVE_CALLS: LruHashMap<u64, SslCall> = LruHashMap::with_max_entries(KernelMap::SslCalls.capacity(), 0);

/// TCP sockets of traced processes, keyed by `socket_key(pid, fd)`.
#[map]
pub static SOCKETS: LruHashMap<u64, SocketState> = LruHashMap::with_max_entries(KernelMap::Sockets.capacity(), 0);

/// Socket data syscalls between entry and exit, keyed by pid_tgid.
#[map]
pub static ACTIVE_SOCKET_CALLS: LruHashMap<u64, SocketCall> =
    LruHashMap::with_max_entries(KernelMap::SocketCalls.capacity(), 0);

/// `socket`/`accept` arguments between entry and exit, keyed by pid_tgid.
#[map]
pub static PENDING_SOCKET_CALLS: LruHashMap<u64, PendingSocketCall> =
    LruHashMap::with_max_entries(KernelMap::PendingSocketCalls.capacity(), 0);

/// Counters indexed by `tracer_common::Stat`.
#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

/// Entries added, removed and refused per [`KernelMap`] (`map_changes`).
#[map]
pub static MAP_CHANGES: PerCpuArray<u64> = PerCpuArray::with_max_entries(KERNEL_MAP_COUNT as u32 * MAP_CHANGE_KINDS, 0);

/// One number passed through memory to hide its origin from the verifier
/// (`emit::opaque`).
#[map]
pub static OPAQUE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Scratch space to assemble one event (too large for the 512-byte stack).
#[map]
pub static SCRATCH: PerCpuArray<EventBuffer> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU counters for socket ids.
#[map]
pub static NEXT_SOCKET_ID: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// CPython frame layout per traced process (absent: no Python context).
#[map]
pub static PY_LAYOUTS: HashMap<u32, PyLayout> = HashMap::with_max_entries(KernelMap::PythonLayouts.capacity(), 0);

/// `PyThreadState*` per thread (pid_tgid), from `PyEval_RestoreThread` and
/// from the thread list read at attach.
#[map]
pub static THREAD_STATES: LruHashMap<u64, u64> = LruHashMap::with_max_entries(KernelMap::ThreadStates.capacity(), 0);

/// Scratch space to assemble a stack event.
#[map]
pub static STACK_SCRATCH: PerCpuArray<StackBuffer> = PerCpuArray::with_max_entries(1, 0);

/// Stacks whose code objects user space has read (set by user space): a
/// stack found here is sent with the next batch, any other at once, before
/// its process can exit and take its code objects with it.
#[map]
pub static KNOWN_STACKS: LruHashMap<KnownStackKey, u8> =
    LruHashMap::with_max_entries(KernelMap::KnownStacks.capacity(), 0);

/// Bytes read at once from the start of each frame a stack walk visits.
pub const FRAME_HEAD_LEN: usize = tracer_common::PY_FRAME_HEAD_LEN;

/// Scratch space for one frame's first bytes during a stack walk.
#[map]
pub static FRAME_HEAD: PerCpuArray<[u8; FRAME_HEAD_LEN]> = PerCpuArray::with_max_entries(1, 0);

/// Bytes of a thread's frame stack (3.11+) read at once during a walk.
pub const FRAME_WINDOW_LEN: usize = 8192;

/// Room for `FRAME_WINDOW_LEN` bytes, and slack so that a frame's head at
/// any offset below `FRAME_WINDOW_LEN` stays within the value.
#[repr(C)]
pub struct FrameWindow {
    pub bytes: [u8; FRAME_WINDOW_LEN + FRAME_HEAD_LEN],
}

/// Scratch space for the stretch of frame stack a walk reads at once.
#[map]
pub static FRAME_WINDOW: PerCpuArray<FrameWindow> = PerCpuArray::with_max_entries(1, 0);

/// `--trace-function`: per (pid, code object), `CODE_TRACED` or
/// `CODE_IGNORED`; absent for code not seen yet.
#[map]
pub static FUNCTION_CODES: LruHashMap<FunctionCodeKey, u8> =
    LruHashMap::with_max_entries(KernelMap::FunctionCodes.capacity(), 0);

/// `--trace-function`: calls in progress (see `ActiveFunctionKey`).
#[map]
pub static ACTIVE_FUNCTIONS: LruHashMap<ActiveFunctionKey, ActiveFunction> =
    LruHashMap::with_max_entries(KernelMap::ActiveFunctions.capacity(), 0);
