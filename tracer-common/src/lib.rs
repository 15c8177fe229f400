//! The binary contract between pytrace's kernel programs and its user space.
//!
//! Everything that crosses the kernel/user boundary is defined here, once: the
//! ring-buffer event header, the map value types and the indices of the
//! statistics counters. Types are `#[repr(C)]`, hold only integers and byte
//! arrays, carry explicit padding and have their sizes asserted at compile
//! time, so both sides agree on every byte without hand-kept copies. User
//! space never transmutes these bytes: it checks lengths and reads fields
//! (see `tracer::events`).
#![no_std]

/// Payload bytes carried by one ring-buffer event. A call that moved more
/// bytes is split into several events (chunks) of at most this size.
pub const CHUNK_CAPACITY: usize = 16 * 1024;

/// Upper bound on chunks per call, whatever the configured capture limit:
/// bounds the kernel loop (`MAX_CHUNKS_PER_CALL * CHUNK_CAPACITY` = 1 MiB).
pub const MAX_CHUNKS_PER_CALL: usize = 64;

/// Default number of bytes captured per SSL call: large enough for long
/// prompts. Bytes beyond it are counted as truncated, not copied.
pub const DEFAULT_CAPTURE_LIMIT: u32 = 256 * 1024;

/// Largest capture limit the kernel loop can honour.
pub const MAX_CAPTURE_LIMIT: u32 = (MAX_CHUNKS_PER_CALL * CHUNK_CAPACITY) as u32;

/// Chunks copied from the end of a single-buffer call larger than the
/// capture limit (32 KiB): a request body's last members (the openai SDK
/// writes `model`, `stream`, `tools` after `messages`) survive a prompt of
/// any size. The bytes between head and tail are a gap, counted as truncated.
pub const TAIL_CHUNKS: usize = 2;
pub const TAIL_CAPACITY: u64 = (TAIL_CHUNKS * CHUNK_CAPACITY) as u64;

/// Declares [`EventKind`] once: the enum, its conversion from the header's
/// `u32`, its names and the list of every kind are generated from the one
/// list of variants, not kept in step by hand.
macro_rules! event_kinds {
    ($($(#[doc = $doc:literal])* $name:ident = $value:literal,)*) => {
        /// What an event reports. Stored as `u32` in [`EventHeader::kind`].
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EventKind {
            $($(#[doc = $doc])* $name = $value,)*
        }

        impl EventKind {
            /// Every kind, in the order of their numbers.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$name),*];

            /// The kind's name, as the documentation's ABI table gives it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(EventKind::$name => stringify!($name),)*
                }
            }
        }

        impl TryFrom<u32> for EventKind {
            type Error = u32;
            fn try_from(value: u32) -> Result<Self, u32> {
                match value {
                    $($value => Ok(EventKind::$name),)*
                    other => Err(other),
                }
            }
        }
    };
}

event_kinds! {
    /// Plaintext moved by one SSL read or write call (one chunk of it).
    TlsData = 1,
    /// The connection (`SSL*`) was freed: no more data will follow.
    TlsClosed = 2,
    /// Bytes moved by one plaintext socket syscall (one chunk of them).
    PlainData = 3,
    /// A plaintext socket was closed.
    PlainClosed = 4,
    /// A TCP socket's addresses became known (connect, accept, or seen at
    /// attach); payload: [`SocketAddrs`]. `conn_id` is the socket's id.
    SocketInfo = 5,
    /// The TLS connection `conn_id` (an `SSL*`) runs over the socket whose
    /// addresses follow; payload: [`SocketAddrs`].
    TlsSocket = 6,
    /// The client set this SNI host name on `SSL*` `conn_id`; payload: the name.
    TlsServerName = 7,
    /// The Python stack of the thread starting a request on `conn_id`;
    /// payload: the thread's name (`THREAD_NAME_LEN` bytes), then
    /// `call_len` [`PyFrame`]s, innermost first.
    PyStack = 8,
    /// A call of a Python function started (or, on 3.8–3.10, a generator
    /// resumed), for `--trace-function`; `conn_id` is the frame's address,
    /// payload: as `PyStack`, the function's own frame first.
    FunctionStart = 9,
    /// A call of a Python function ended; `conn_id` is the frame's address,
    /// `call_len` the code object, `flags` `FUNCTION_*` bits.
    FunctionEnd = 10,
    /// `pytrace run`: traced process `pid` forked; `conn_id` is the child's
    /// pid (or a new thread's id), already added to the traced set.
    ProcessForked = 11,
    /// `pytrace run`: traced process `pid` executed a new program.
    ProcessExec = 12,
    /// Traced process `pid` mapped a file executable (a library loaded with
    /// `dlopen`, say): its memory map is worth another look.
    ProcessMapped = 13,
}

/// `AF_INET` and `AF_INET6`, as stored in [`SocketAddrs::family`].
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Which end of a TCP connection the traced process is.
pub const ROLE_CLIENT: u16 = 0;
pub const ROLE_SERVER: u16 = 1;

/// A TCP socket's endpoints. IPv4 addresses occupy the first 4 bytes of the
/// 16-byte arrays; ports are in host byte order; zero means unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketAddrs {
    pub family: u16,
    pub peer_port: u16,
    pub local_port: u16,
    /// `ROLE_CLIENT` or `ROLE_SERVER`.
    pub role: u16,
    pub peer_addr: [u8; 16],
    pub local_addr: [u8; 16],
}
pub const SOCKET_ADDRS_LEN: usize = core::mem::size_of::<SocketAddrs>();
const _: () = assert!(SOCKET_ADDRS_LEN == 40);

/// A tracked TCP socket of a traced process (value of the `SOCKETS` map,
/// keyed by `pid << 32 | fd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketState {
    /// Connection id for events: bit 63 set, so it never equals an `SSL*`.
    pub conn_id: u64,
    pub addrs: SocketAddrs,
    /// `TLS_UNKNOWN`, `TLS_SEEN` or `TLS_LINKED`: once the socket is known
    /// to carry TLS its bytes are not captured.
    pub tls: u32,
    pub _pad: u32,
}

/// `SocketState::tls`: no sign of TLS yet.
pub const TLS_UNKNOWN: u32 = 0;
/// Its bytes look like TLS records.
pub const TLS_SEEN: u32 = 1;
/// Used from inside an SSL call, and that `SSL*` reported as running over it.
pub const TLS_LINKED: u32 = 2;
const _: () = assert!(core::mem::size_of::<SocketState>() == 56);

/// Bit set in every socket connection id (never set in a user-space pointer).
pub const SOCKET_ID_BIT: u64 = 1 << 63;
/// Also set in ids of sockets pytrace found at attach time.
pub const SEEDED_SOCKET_ID_BIT: u64 = 1 << 62;

/// Key of the `SOCKETS` map.
pub const fn socket_key(pid: u32, fd: u32) -> u64 {
    ((pid as u64) << 32) | fd as u64
}

/// A socket syscall between entry and exit (keyed by pid_tgid).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketCall {
    pub conn_id: u64,
    /// The buffer, or the `iovec` array when `iov_count` is non-zero.
    pub buf: u64,
    pub iov_count: u64,
    pub start_ns: u64,
    pub fd: u32,
    /// A [`Direction`].
    pub direction: u32,
}
const _: () = assert!(core::mem::size_of::<SocketCall>() == 40);

/// Arguments of `socket`, `connect` and `accept` kept from entry to exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingSocketCall {
    /// `socket`: family; `accept`: the listening fd.
    pub arg0: u64,
    /// `socket`: type; `accept`: the peer `sockaddr *`.
    pub arg1: u64,
}

/// Which way the bytes went, seen from the traced process.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Written by the process (a request, for an HTTP client).
    Egress = 0,
    /// Read by the process (a response, for an HTTP client).
    Ingress = 1,
}

impl TryFrom<u32> for Direction {
    type Error = u32;
    fn try_from(value: u32) -> Result<Self, u32> {
        match value {
            0 => Ok(Self::Egress),
            1 => Ok(Self::Ingress),
            other => Err(other),
        }
    }
}

/// Flag: the call moved more bytes than the capture limit; the bytes past
/// the capture limit were not copied, except the call's last
/// [`TAIL_CAPACITY`] bytes when it used one buffer.
pub const FLAG_TRUNCATED: u32 = 1;
/// Flag: this is the last chunk emitted for the call.
pub const FLAG_LAST_CHUNK: u32 = 2;

/// The fixed part of every ring-buffer event; `chunk_len` payload bytes follow
/// it directly.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`].
    pub kind: u32,
    /// Process id (tgid) of the caller.
    pub pid: u32,
    /// Thread id of the caller.
    pub tid: u32,
    /// A [`Direction`].
    pub direction: u32,
    /// Connection id: the address of the `SSL` object in the caller.
    pub conn_id: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when the call was entered.
    pub call_start_ns: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when the call returned.
    pub call_end_ns: u64,
    /// Bytes the call reported as moved (its return value / out-parameter).
    pub call_len: u64,
    /// Offset of this chunk's first byte within the call's buffer.
    pub chunk_offset: u32,
    /// Payload bytes following this header.
    pub chunk_len: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
}

/// Size of [`EventHeader`] on the wire.
pub const EVENT_HEADER_LEN: usize = core::mem::size_of::<EventHeader>();
const _: () = assert!(EVENT_HEADER_LEN == 64);

/// A header followed by room for one full chunk: the per-CPU scratch value
/// the kernel assembles events in before copying them to the ring buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EventBuffer {
    pub header: EventHeader,
    pub data: [u8; CHUNK_CAPACITY],
}
const _: () = assert!(core::mem::size_of::<EventBuffer>() == EVENT_HEADER_LEN + CHUNK_CAPACITY);

/// An SSL call in flight, remembered from entry to return (keyed by pid_tgid).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SslCall {
    /// The `SSL*` argument.
    pub ssl: u64,
    /// The buffer argument.
    pub buf: u64,
    /// `size_t *` out-parameter of the `_ex` variants; 0 for `SSL_read`/`SSL_write`.
    pub len_out: u64,
    /// `CLOCK_MONOTONIC` nanoseconds at entry.
    pub start_ns: u64,
    /// A [`Direction`].
    pub direction: u32,
    /// 1 from entry to return. The entry stays in the map after the return
    /// and the thread's next call overwrites it in place: a look-up, where
    /// deleting and re-inserting costs an allocation in the LRU map.
    pub active: u32,
}
const _: () = assert!(core::mem::size_of::<SslCall>() == 40);

/// Frames captured per Python stack.
pub const MAX_PY_FRAMES: usize = 64;

/// Bytes the kernel reads at once from the start of each frame a stack walk
/// visits: every frame field of a [`PyLayout`] must lie within them (user
/// space refuses a layout whose fields do not).
pub const PY_FRAME_HEAD_LEN: usize = 128;

/// How a CPython version lays out thread states and frames (value of the
/// `PY_LAYOUTS` map, keyed by pid). Offsets in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyLayout {
    /// `PY_FRAMES_OBJECTS` (3.8–3.10), `PY_FRAMES_VIA_CFRAME` (3.11–3.12)
    /// or `PY_FRAMES_DIRECT` (3.13+).
    pub frames: u32,
    /// `PyThreadState` → frame / `cframe` / `current_frame`.
    pub tstate_frame: u32,
    /// `_PyCFrame` → `current_frame` (3.11–3.12).
    pub cframe_current: u32,
    /// Frame → caller frame (`f_back` / `previous`).
    pub frame_back: u32,
    /// Frame → code object (`f_code` / `f_executable`).
    pub frame_code: u32,
    /// Frame → `f_lasti` (int, 3.8–3.10) or `prev_instr`/`instr_ptr` (pointer).
    pub frame_instr: u32,
    /// Frame → `owner` byte (3.11+).
    pub frame_owner: u32,
    /// Frames whose `owner` is this value or higher are not Python calls
    /// and are skipped (C-stack shims on 3.12–3.13, interpreter-owned entry
    /// and base frames on 3.14+); 0xff for none.
    pub owner_skip_from: u32,
    /// Thread state → `native_thread_id` (3.11+), else 0: then thread states
    /// are found by walking the interpreter's thread list, not by a probe.
    pub tstate_native_thread_id: u32,
    /// Thread state → next thread state.
    pub tstate_next: u32,
    /// Interpreter → first thread state.
    pub interp_threads_head: u32,
    /// Frame → the field telling a suspended generator frame from a
    /// finished one on 3.8–3.10 (`f_stacktop`, `f_state`), else 0.
    pub frame_state: u16,
    /// How to read `frame_state`: `PY_STATE_*`.
    pub frame_state_kind: u8,
    pub _pad: u8,
    /// Address of `_PyRuntime.interpreters.head` in the process.
    pub interpreters_head_address: u64,
    /// The process's PID namespace (device and inode of `/proc/PID/ns/pid`)
    /// when it is not pytrace's, else 0: the thread ids CPython records are
    /// that namespace's, so the kernel compares the thread's id there.
    pub pid_ns_dev: u64,
    pub pid_ns_ino: u64,
}
const _: () = assert!(core::mem::size_of::<PyLayout>() == 72);

pub const PY_FRAMES_OBJECTS: u32 = 1;
pub const PY_FRAMES_VIA_CFRAME: u32 = 2;
pub const PY_FRAMES_DIRECT: u32 = 3;

/// `frame_state` is a pointer, non-null while the generator is suspended (3.8–3.9 `f_stacktop`).
pub const PY_STATE_STACKTOP: u8 = 1;
/// `frame_state` is a signed byte, -1 while suspended (3.10 `f_state`).
pub const PY_STATE_BYTE: u8 = 2;

/// One captured frame: the code object, where it is executing (`f_lasti`,
/// or the instruction pointer), and the frame's own address (which call it
/// is, for `--trace-function`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyFrame {
    pub code: u64,
    pub instr: u64,
    pub frame: u64,
}
pub const PY_FRAME_LEN: usize = core::mem::size_of::<PyFrame>();

/// `FunctionEnd` flag: the frame was suspended (a generator yielded), not finished.
pub const FUNCTION_SUSPENDED: u32 = 1;
/// `FunctionEnd` flag: the frame was found reused by a new call, so the old
/// call ended unseen (it raised); the end time is when that was noticed.
pub const FUNCTION_UNWOUND: u32 = 2;
/// `FunctionEnd` flag (3.8–3.10): the call raised (returned NULL).
pub const FUNCTION_RAISED: u32 = 4;
/// `FunctionStart` flag: the first call of this code object pytrace saw;
/// user space decides whether it is traced.
pub const FUNCTION_FIRST_SEEN: u32 = 1;

/// `PyStack`/`FunctionStart` flag: user space has resolved a stack with
/// these code objects before (it is in `KNOWN_STACKS`), so the event can wait
/// for the next batch instead of waking pytrace at once.
pub const STACK_KNOWN: u32 = 1 << 8;

/// Key of the `KNOWN_STACKS` map: a process and the [`stack_hash`] of the
/// code objects of a stack user space has resolved.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KnownStackKey {
    pub pid: u64,
    pub hash: u64,
}

/// Start of a [`stack_hash`].
pub const STACK_HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds one code object's address into a stack hash (FNV-1a over 64-bit
/// words, rotated so high address bits reach the low ones). The kernel folds
/// as it walks; user space recomputes with [`stack_hash`].
pub const fn stack_hash_step(hash: u64, code: u64) -> u64 {
    (hash ^ code).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29)
}

/// The hash of a stack's code objects, innermost first.
pub fn stack_hash(codes: impl IntoIterator<Item = u64>) -> u64 {
    codes.into_iter().fold(STACK_HASH_SEED, stack_hash_step)
}

/// Key of the `FUNCTION_CODES` map: is this code object a traced function?
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunctionCodeKey {
    pub pid: u64,
    pub code: u64,
}

/// `FUNCTION_CODES` values. Absent: not seen yet. Pending: seen, user space
/// has not decided yet (its calls are reported meanwhile, so none is missed).
pub const CODE_TRACED: u8 = 1;
pub const CODE_IGNORED: u8 = 2;
pub const CODE_PENDING: u8 = 3;
const _: () = assert!(core::mem::size_of::<FunctionCodeKey>() == 16);

/// Key of the `ACTIVE_FUNCTIONS` map: a traced call in progress. 3.8–3.10:
/// (pid_tgid, stack pointer at entry), matched by the return probe;
/// 3.11+: (pid << 32, frame address), matched when the frame is cleared.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActiveFunctionKey {
    pub owner: u64,
    pub address: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActiveFunction {
    pub frame: u64,
    pub code: u64,
    pub start_ns: u64,
}

/// A stack event as assembled in the kernel.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StackBuffer {
    pub header: EventHeader,
    /// The thread's name in the OS (`comm`) when the stack was taken: a
    /// thread may be gone by the time user space reads the event.
    pub thread_name: [u8; THREAD_NAME_LEN],
    pub frames: [PyFrame; MAX_PY_FRAMES],
}

/// Bytes of a thread's OS name (`TASK_COMM_LEN`), NUL-padded.
pub const THREAD_NAME_LEN: usize = 16;

/// Indices into the per-CPU `STATS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Events that did not fit in the ring buffer (user space too slow).
    EventsLost = 0,
    /// Calls whose buffer exceeded the capture limit.
    CallsTruncated = 1,
    /// Bytes not captured because of the capture limit.
    BytesTruncated = 2,
    /// Reads of the traced process's memory that failed (bytes lost).
    ReadErrors = 3,
    /// Returns that found no matching entry (entry missed or evicted).
    OrphanReturns = 4,
    /// Uprobe and uretprobe hits by traced processes (the cost driver).
    UprobeHits = 5,
    /// Syscall tracepoint hits by traced processes.
    TracepointHits = 6,
}

/// Number of [`Stat`] counters.
pub const STAT_COUNT: u32 = 7;

/// Names of the [`Stat`] counters, indexed by their value.
pub const STAT_NAMES: [&str; STAT_COUNT as usize] = [
    "events_lost",
    "calls_truncated",
    "bytes_truncated",
    "read_errors",
    "orphan_returns",
    "uprobe_hits",
    "tracepoint_hits",
];

/// The kernel maps that hold per-process or per-thread state. Each has an
/// explicit capacity, and the kernel counts, per map, the entries it added,
/// the entries it removed and the additions the map refused (full); user
/// space adds its own changes, sweeps out exited processes' entries and
/// derives how many entries the LRU maps evicted to make room
/// (`tracer/src/probes/maps.rs`, `ledger.rs`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelMap {
    /// Traced processes (`TARGET_PIDS`, keyed by pid); never evicts.
    TracedProcesses = 0,
    /// CPython layouts per process (`PY_LAYOUTS`, keyed by pid); never evicts.
    PythonLayouts = 1,
    /// TCP sockets (`SOCKETS`, keyed by pid and fd).
    Sockets = 2,
    /// `PyThreadState*` per thread (`THREAD_STATES`, keyed by pid_tgid).
    ThreadStates = 3,
    /// SSL calls per thread (`ACTIVE_CALLS`, keyed by pid_tgid).
    SslCalls = 4,
    /// Socket data syscalls in flight (`ACTIVE_SOCKET_CALLS`, pid_tgid).
    SocketCalls = 5,
    /// `socket`/`accept` calls in flight (`PENDING_SOCKET_CALLS`, pid_tgid).
    PendingSocketCalls = 6,
    /// Stacks user space has resolved (`KNOWN_STACKS`, pid and hash).
    KnownStacks = 7,
    /// `--trace-function` verdicts per code object (`FUNCTION_CODES`).
    FunctionCodes = 8,
    /// `--trace-function` calls in progress (`ACTIVE_FUNCTIONS`).
    ActiveFunctions = 9,
}

/// Number of [`KernelMap`]s.
pub const KERNEL_MAP_COUNT: usize = 10;

/// What reports call a [`KernelMap`], the map's name in the kernel object,
/// and its capacity in entries.
pub struct KernelMapInfo {
    pub name: &'static str,
    pub symbol: &'static str,
    pub capacity: u32,
}

const fn info(name: &'static str, symbol: &'static str, capacity: u32) -> KernelMapInfo {
    KernelMapInfo { name, symbol, capacity }
}

/// Each [`KernelMap`]'s description, indexed by its value.
pub const KERNEL_MAPS: [KernelMapInfo; KERNEL_MAP_COUNT] = [
    info("traced_processes", "TARGET_PIDS", 8192),
    info("python_layouts", "PY_LAYOUTS", 8192),
    info("sockets", "SOCKETS", 65536),
    info("thread_states", "THREAD_STATES", 65536),
    info("ssl_calls", "ACTIVE_CALLS", 16384),
    info("socket_calls", "ACTIVE_SOCKET_CALLS", 16384),
    info("pending_socket_calls", "PENDING_SOCKET_CALLS", 4096),
    info("known_stacks", "KNOWN_STACKS", 65536),
    info("function_codes", "FUNCTION_CODES", 262_144),
    info("active_functions", "ACTIVE_FUNCTIONS", 65536),
];

/// Every [`KernelMap`], in index order.
pub const ALL_KERNEL_MAPS: [KernelMap; KERNEL_MAP_COUNT] = [
    KernelMap::TracedProcesses,
    KernelMap::PythonLayouts,
    KernelMap::Sockets,
    KernelMap::ThreadStates,
    KernelMap::SslCalls,
    KernelMap::SocketCalls,
    KernelMap::PendingSocketCalls,
    KernelMap::KnownStacks,
    KernelMap::FunctionCodes,
    KernelMap::ActiveFunctions,
];

impl KernelMap {
    pub const fn info(self) -> &'static KernelMapInfo {
        &KERNEL_MAPS[self as usize]
    }

    /// The map's capacity in entries.
    pub const fn capacity(self) -> u32 {
        self.info().capacity
    }
}

/// Slots of the per-CPU `MAP_CHANGES` array: [`MAP_CHANGE_KINDS`] counters per [`KernelMap`].
pub const MAP_CHANGE_KINDS: u32 = 3;
/// An entry added (a key not present before).
pub const MAP_ADDED: u32 = 0;
/// An entry removed by a delete that found it.
pub const MAP_REMOVED: u32 = 1;
/// An addition the map refused (full, for maps that do not evict).
pub const MAP_REFUSED: u32 = 2;

/// Index of one counter in `MAP_CHANGES`.
pub const fn map_change_slot(map: KernelMap, kind: u32) -> u32 {
    map as u32 * MAP_CHANGE_KINDS + kind
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain-old-data: #[repr(C)], only integers, no implicit padding
    // (sizes asserted above), every bit pattern valid.
    unsafe impl aya::Pod for super::SslCall {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SocketState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PyLayout {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FunctionCodeKey {}
    // SAFETY: plain data, as above.
    unsafe impl aya::Pod for super::KnownStackKey {}
    // SAFETY: plain data, as above.
    unsafe impl aya::Pod for super::ActiveFunctionKey {}
    // SAFETY: plain data, as above.
    unsafe impl aya::Pod for super::ActiveFunction {}
    // SAFETY: plain data, as above.
    unsafe impl aya::Pod for super::SocketCall {}
    // SAFETY: plain data, as above.
    unsafe impl aya::Pod for super::PendingSocketCall {}
}
