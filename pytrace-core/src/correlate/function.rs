//! Function spans (`--trace-function`): which code objects are traced, the
//! traced calls in progress, and the internal spans they become.
//!
//! A call is identified by its frame's address while it runs. Its span's
//! parent is the innermost traced call found further out on the stack seen
//! when it started; an HTTP or LLM call whose stack holds a traced call's
//! frame becomes that call's child. Calls still running when tracing ends are
//! reported as incomplete.

use std::collections::HashMap;
use std::sync::Arc;

use crate::events::FunctionEnd;
use crate::model::semconv as sc;
use crate::model::{IdSource, Resource, Span, SpanContext, SpanId, SpanKind, Status, TraceId};
use crate::python::asyncio::Concurrency;
use crate::python::frame::Frame;
use crate::python::patterns::FunctionPattern;

use crate::model::Clock;

/// A decision for the kernel: calls of this code object are (not) traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeVerdict {
    pub pid: u32,
    pub code: u64,
    pub traced: bool,
}

#[derive(Clone, Debug)]
struct OpenCall {
    context: SpanContext,
    parent: Option<SpanId>,
    function: Frame,
    tid: u32,
    thread_name: Option<Arc<str>>,
    start_ns: u64,
    concurrency: Concurrency,
}

/// A call's start as reported by the kernel, its stack resolved.
#[derive(Clone, Copy, Debug)]
pub struct CallStart<'a> {
    pub pid: u32,
    pub tid: u32,
    pub thread_name: Option<&'a Arc<str>>,
    pub at_ns: u64,
    /// The stack, the called function's frame first.
    pub frames: &'a [Frame],
    /// The kernel asks whether this code object is traced.
    pub first_seen: bool,
    /// The names are qualified names (3.11+).
    pub qualified: bool,
    /// The served request this thread handles, for a call no traced call encloses.
    pub request: Option<SpanContext>,
    /// The thread, or asyncio task, it runs in.
    pub concurrency: Concurrency,
}

/// A traced call that ended (or was still running when tracing stopped).
#[derive(Clone, Debug)]
pub struct FinishedCall {
    pub pid: u32,
    call: OpenCall,
    end_ns: u64,
    end: CallEnd,
}

impl FinishedCall {
    pub fn tid(&self) -> u32 {
        self.call.tid
    }

    pub fn start_ns(&self) -> u64 {
        self.call.start_ns
    }

    /// The thread, or asyncio task, the call ran in.
    pub fn concurrency(&self) -> Concurrency {
        self.call.concurrency
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallEnd {
    Returned,
    Raised,
    /// Noticed when a new call reused its frame: it raised.
    Unwound,
    /// Still running when tracing stopped.
    Running,
}

#[derive(Default)]
pub struct FunctionCalls {
    patterns: Vec<FunctionPattern>,
    open: HashMap<(u32, u64), OpenCall>,
    /// Decisions made, per (pid, code object), until the kernel has them.
    decided: HashMap<(u32, u64), bool>,
    verdicts: Vec<CodeVerdict>,
}

/// Decisions remembered before the cache starts over (then re-decided by name).
const MAX_DECIDED: usize = 262_144;

impl FunctionCalls {
    pub fn new(patterns: Vec<FunctionPattern>) -> Self {
        Self { patterns, ..Self::default() }
    }

    pub fn is_enabled(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// A call started.
    pub fn started(&mut self, start: CallStart<'_>, ids: &mut dyn IdSource) {
        let pid = start.pid;
        let Some((function, outer)) = start.frames.split_first() else { return };
        if self.decided.len() > MAX_DECIDED {
            self.decided.clear();
        }
        let known = self.decided.get(&(pid, function.code)).copied();
        let traced = match known {
            Some(traced) if !start.first_seen => traced,
            _ => {
                let traced =
                    self.patterns.iter().any(|p| p.matches(&function.qualname, &function.file, start.qualified));
                self.decided.insert((pid, function.code), traced);
                if start.first_seen {
                    self.verdicts.push(CodeVerdict { pid, code: function.code, traced });
                }
                traced
            }
        };
        if !traced {
            return;
        }
        if self.open.get(&(pid, function.frame)).is_some_and(|call| call.function.code == function.code) {
            return; // a generator resuming (3.8–3.10)
        }
        let parent = self.enclosing(pid, outer).or(start.request);
        let call = OpenCall {
            context: SpanContext {
                trace_id: parent.map_or_else(|| TraceId::new(ids), |p| p.trace_id),
                span_id: SpanId::new(ids),
            },
            parent: parent.map(|p| p.span_id),
            function: function.clone(),
            tid: start.tid,
            thread_name: start.thread_name.cloned(),
            start_ns: start.at_ns,
            concurrency: start.concurrency,
        };
        self.open.insert((pid, function.frame), call);
    }

    /// A call ended or was suspended; returns it when it is finished.
    pub fn ended(&mut self, end: &FunctionEnd) -> Option<FinishedCall> {
        if end.suspended {
            return None;
        }
        let key = (end.pid, end.frame);
        if self.open.get(&key)?.function.code != end.code {
            return None;
        }
        let call = self.open.remove(&key)?;
        let how = if end.unwound {
            CallEnd::Unwound
        } else if end.raised {
            CallEnd::Raised
        } else {
            CallEnd::Returned
        };
        Some(FinishedCall { pid: end.pid, call, end_ns: end.end_ns, end: how })
    }

    /// The innermost traced call among `frames` (innermost first).
    pub fn enclosing(&self, pid: u32, frames: &[Frame]) -> Option<SpanContext> {
        frames.iter().find_map(|frame| {
            self.open.get(&(pid, frame.frame)).filter(|call| call.function.code == frame.code).map(|call| call.context)
        })
    }

    /// Code objects found to be traced since the last call.
    pub fn take_verdicts(&mut self) -> Vec<CodeVerdict> {
        std::mem::take(&mut self.verdicts)
    }

    /// Calls still running in `pid` (all processes when `None`), ended at `now_ns`.
    pub fn drain_running(&mut self, pid: Option<u32>, now_ns: u64) -> Vec<FinishedCall> {
        let keys: Vec<_> = self.open.keys().filter(|(p, _)| pid.is_none_or(|pid| *p == pid)).copied().collect();
        let mut calls: Vec<_> = keys
            .into_iter()
            .filter_map(|key| self.open.remove(&key).map(|call| (key.0, call)))
            .map(|(pid, call)| FinishedCall { pid, call, end_ns: now_ns, end: CallEnd::Running })
            .collect();
        calls.sort_by_key(|finished| finished.call.start_ns);
        calls
    }
}

/// The internal span of a finished call.
pub fn function_span(finished: &FinishedCall, clock: Clock, resource: Arc<Resource>) -> Span {
    let call = &finished.call;
    let mut span = Span {
        trace_id: call.context.trace_id,
        span_id: call.context.span_id,
        parent_span_id: call.parent,
        name: call.function.qualname.to_string(),
        kind: SpanKind::Internal,
        start_unix_nano: clock.to_unix(call.start_ns),
        end_unix_nano: clock.to_unix(finished.end_ns.max(call.start_ns)),
        status: Status::Unset,
        attributes: Default::default(),
        resource,
    };
    let a = &mut span.attributes;
    a.set(sc::CODE_FUNCTION_NAME, &*call.function.qualname);
    a.set(sc::CODE_FILE_PATH, &*call.function.file);
    if let Some(line) = call.function.line {
        a.set(sc::CODE_LINE_NUMBER, i64::from(line));
    }
    a.set(sc::THREAD_ID, i64::from(call.tid));
    if let Some(name) = &call.thread_name {
        a.set(sc::THREAD_NAME, name.to_string());
    }
    match finished.end {
        CallEnd::Returned => {}
        CallEnd::Raised => span.status = Status::Error { message: Some("the function raised an exception".into()) },
        CallEnd::Unwound => {
            span.status = Status::Error { message: Some("the function raised an exception".into()) };
            a.set(sc::PYTRACE_FUNCTION_END_INFERRED, true);
        }
        CallEnd::Running => {
            a.set(sc::PYTRACE_INCOMPLETE, true);
            a.set(sc::PYTRACE_INCOMPLETE_REASON, "the call was still running when tracing stopped");
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TestIds;

    const PID: u32 = 7;

    fn frame(qualname: &str, code: u64, frame: u64) -> Frame {
        Frame { qualname: qualname.into(), file: "/srv/myapp/agent.py".into(), line: Some(3), code, frame }
    }

    fn end(frame: u64, code: u64, end_ns: u64) -> FunctionEnd {
        FunctionEnd { pid: PID, tid: 1, frame, code, end_ns, suspended: false, unwound: false, raised: false }
    }

    fn start(at_ns: u64, frames: &[Frame], first_seen: bool, qualified: bool) -> CallStart<'_> {
        CallStart {
            pid: PID,
            tid: 1,
            thread_name: None,
            at_ns,
            frames,
            first_seen,
            qualified,
            request: None,
            concurrency: Concurrency::Thread,
        }
    }

    fn tracing(pattern: &str) -> FunctionCalls {
        FunctionCalls::new(vec![pattern.parse().unwrap()])
    }

    #[test]
    fn matching_code_is_traced_and_reported_to_the_kernel_once() {
        let mut calls = tracing("myapp.agent:Agent.*");
        let main = frame("main", 0x10, 0x100);
        let step = frame("Agent.step", 0x20, 0x200);
        calls.started(start(5, std::slice::from_ref(&main), true, true), &mut TestIds);
        calls.started(start(6, &[step.clone(), main.clone()], true, true), &mut TestIds);
        assert_eq!(
            calls.take_verdicts(),
            [CodeVerdict { pid: PID, code: 0x10, traced: false }, CodeVerdict { pid: PID, code: 0x20, traced: true }]
        );
        calls.started(start(8, &[frame("Agent.step", 0x20, 0x300), main], false, true), &mut TestIds);
        assert!(calls.take_verdicts().is_empty());
        assert!(calls.ended(&end(0x100, 0x10, 9)).is_none(), "main is not traced");
        let finished = calls.ended(&end(0x200, 0x20, 10)).unwrap();
        let span = function_span(&finished, Clock::with_offset(0), Default::default());
        assert_eq!(span.name, "Agent.step");
        assert_eq!(span.kind, SpanKind::Internal);
        assert_eq!(span.duration_ns(), 4);
        assert_eq!(span.parent_span_id, None);
    }

    #[test]
    fn nested_calls_and_requests_become_children() {
        let mut calls = tracing("myapp.agent:*");
        let run = frame("Agent.run", 0x10, 0x100);
        let step = frame("Agent.step", 0x20, 0x200);
        calls.started(start(1, std::slice::from_ref(&run), true, true), &mut TestIds);
        calls.started(start(2, &[step.clone(), run.clone()], true, true), &mut TestIds);
        let http_stack = [frame("send", 0x99, 0x900), step.clone(), run.clone()];
        let within = calls.enclosing(PID, &http_stack).unwrap();
        let step_span =
            function_span(&calls.ended(&end(0x200, 0x20, 3)).unwrap(), Clock::with_offset(0), Default::default());
        let run_span =
            function_span(&calls.ended(&end(0x100, 0x10, 4)).unwrap(), Clock::with_offset(0), Default::default());
        assert_eq!(within.span_id, step_span.span_id);
        assert_eq!(step_span.parent_span_id, Some(run_span.span_id));
        assert_eq!(step_span.trace_id, run_span.trace_id);
        assert_eq!(calls.enclosing(PID, &http_stack), None, "both calls ended");
    }

    #[test]
    fn a_reused_frame_address_with_other_code_is_not_the_call() {
        let mut calls = tracing("myapp.agent:*");
        calls.started(start(1, &[frame("step", 0x20, 0x200)], true, true), &mut TestIds);
        assert_eq!(calls.enclosing(PID, &[frame("other", 0x30, 0x200)]), None);
        assert!(calls.ended(&end(0x200, 0x30, 2)).is_none());
    }

    #[test]
    fn generators_end_when_they_finish_not_when_they_yield() {
        let mut calls = tracing("myapp.agent:*");
        let stream = frame("stream", 0x20, 0x200);
        calls.started(start(1, std::slice::from_ref(&stream), true, false), &mut TestIds);
        assert!(calls.ended(&FunctionEnd { suspended: true, ..end(0x200, 0x20, 2) }).is_none());
        calls.started(start(3, std::slice::from_ref(&stream), false, false), &mut TestIds);
        let finished = calls.ended(&end(0x200, 0x20, 4)).unwrap();
        assert_eq!(function_span(&finished, Clock::with_offset(0), Default::default()).duration_ns(), 3);
    }

    #[test]
    fn raised_and_running_calls_are_marked() {
        let mut calls = tracing("myapp.agent:*");
        calls.started(start(1, &[frame("fails", 0x20, 0x200)], true, true), &mut TestIds);
        calls.started(start(1, &[frame("runs", 0x30, 0x300)], true, true), &mut TestIds);
        let raised = calls.ended(&FunctionEnd { raised: true, ..end(0x200, 0x20, 2) }).unwrap();
        assert!(matches!(
            function_span(&raised, Clock::with_offset(0), Default::default()).status,
            Status::Error { .. }
        ));
        let running = calls.drain_running(Some(PID), 9);
        assert_eq!(running.len(), 1);
        let span = function_span(&running[0], Clock::with_offset(0), Default::default());
        assert_eq!(span.attributes.bool(sc::PYTRACE_INCOMPLETE), Some(true));
    }

    #[test]
    fn calls_reported_before_the_kernel_has_the_verdict_are_kept() {
        let mut calls = tracing("myapp.agent:*");
        calls.started(start(1, &[frame("step", 0x20, 0x200)], true, true), &mut TestIds);
        let _ = calls.ended(&end(0x200, 0x20, 2));
        // The second call arrives while the kernel still has the code pending.
        calls.started(start(3, &[frame("step", 0x20, 0x200)], false, true), &mut TestIds);
        assert!(calls.ended(&end(0x200, 0x20, 4)).is_some());
    }

    #[test]
    fn untraced_functions_are_left_alone() {
        let mut calls = tracing("myapp.tools:*");
        calls.started(start(1, &[frame("Agent.step", 0x20, 0x200)], true, true), &mut TestIds);
        assert_eq!(calls.take_verdicts(), [CodeVerdict { pid: PID, code: 0x20, traced: false }]);
        calls.started(start(2, &[frame("Agent.step", 0x20, 0x200)], false, true), &mut TestIds);
        assert!(calls.ended(&end(0x200, 0x20, 3)).is_none(), "a pending code's later calls are not traced either");
    }
}
