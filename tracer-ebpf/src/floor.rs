//! The benchmark floor (`pytrace attach --bare-probes`): programs that only
//! check whether the caller is traced and count the hit, attached where the
//! real ones go, to measure what the probes cost before any work is done.

use aya_ebpf::{
    macros::{tracepoint, uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext, TracePointContext},
};
use tracer_common::Stat;

use crate::emit::traced_pid;

#[uprobe]
pub fn floor_uprobe(_ctx: ProbeContext) -> u32 {
    let _ = traced_pid(Stat::UprobeHits);
    0
}

#[uretprobe]
pub fn floor_uretprobe(_ctx: RetProbeContext) -> u32 {
    let _ = traced_pid(Stat::UprobeHits);
    0
}

#[tracepoint]
pub fn floor_tracepoint(_ctx: TracePointContext) -> u32 {
    let _ = traced_pid(Stat::TracepointHits);
    0
}
