//! Which request a call belongs to: HTTP and LLM calls (and traced
//! functions) made while the process handles an incoming request become
//! children of that request's server span.
//!
//! A server request's span context is fixed when its head is first read
//! (adopting the caller's `traceparent`), so children can name it before it
//! ends. Who handles a request depends on the concurrency model, which the
//! call's Python stack tells:
//!
//! - **threads** (WSGI servers, `ThreadingHTTPServer`): the thread that read
//!   the request handles it until its response is written — a call on that
//!   thread in between is its child, decided at once;
//! - **asyncio** (ASGI, aiohttp): the event loop's thread reads every request;
//!   the handler runs in a task, whose outermost coroutine frame
//!   ([`crate::python::asyncio::task_root`]) is on the stack of both the handler's calls and the
//!   write of its response. A call in a task waits (held, with the calls of
//!   its trace) until a request in flight shows the same task root as its
//!   response is written, or until no request that could still claim it is
//!   left — then it stays a root, never a wrong child. Holding is bounded in
//!   time and in spans, and counted.
//!
//! Pure: events in, spans out; the caller supplies clock readings.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::events::ConnKey;
use crate::model::{IdSource, Span, SpanContext, SpanId, TraceId};
use crate::python::asyncio::Concurrency;
use crate::python::frame::Frame;
use crate::python::symbolize::CallStack;
use crate::tracker::ServerRequest;

/// Longest a call waits for the request it may belong to.
pub const MAX_HOLD_NS: u64 = 30_000_000_000;
/// Most calls waiting at once; beyond it the oldest trace is let go as a root.
pub const MAX_HELD_SPANS: usize = 10_000;
/// Requests remembered (in flight, or finished within [`FINISHED_GRACE_NS`]).
const MAX_REQUESTS: usize = 8_192;
/// How long a finished request still claims calls that started before its end.
const FINISHED_GRACE_NS: u64 = 5_000_000_000;
/// Traces whose placement is remembered for their later spans.
const MAX_PLACED_TRACES: usize = 65_536;
/// How often finished requests are looked at to be forgotten.
const SWEEP_INTERVAL_NS: u64 = 20_000_000;
/// How long a finished request's span waits for a late call of its handler
/// to name it (a streamed call's end can be seen after its relay's).
pub const NAMING_DELAY_NS: u64 = 250_000_000;

/// Where a span was made: enough to tell which request it belongs to.
#[derive(Clone, Debug)]
pub struct Origin {
    pub pid: u32,
    pub tid: u32,
    /// When the call started (monotonic ns).
    pub start_ns: u64,
    /// What its Python stack tells; `None` without Python context.
    pub concurrency: Option<Concurrency>,
    /// The outermost application frame of its task or thread: the handler,
    /// should the request's response be written by its framework.
    pub handler: Option<Frame>,
}

/// A request the process serves.
#[derive(Clone, Debug)]
struct Served {
    conn: ConnKey,
    /// The thread that read its head.
    tid: u32,
    start_ns: u64,
    end_ns: Option<u64>,
    context: SpanContext,
    /// The parent the caller's `traceparent` names.
    remote_parent: Option<SpanId>,
    /// Known once its response is written (`Thread` when no task is on the stack).
    concurrency: Option<Concurrency>,
    /// The stack that wrote its response.
    response_stack: Option<Arc<CallStack>>,
    /// The outermost application frame of its first nested call.
    handler: Option<Frame>,
    /// Method and route template: `POST /items/{id}`.
    route: String,
}

impl Served {
    /// Whether a call that started at `at` may belong to it.
    fn covers(&self, at: u64) -> bool {
        self.start_ns <= at && self.end_ns.is_none_or(|end| at <= end)
    }

    /// Whether a call of thread `tid` in `pid` starting at `at` is its own
    /// (not a request an asyncio task handles).
    fn served_by_thread(&self, pid: u32, tid: u32, at: u64) -> bool {
        self.conn.pid == pid
            && self.tid == tid
            && !matches!(self.concurrency, Some(Concurrency::Task(_)))
            && self.covers(at)
    }

    fn adopt_handler(&mut self, handler: Option<Frame>) {
        if self.handler.is_none() {
            self.handler = handler;
        }
    }
}

/// Spans of one trace waiting for the request their task belongs to.
struct Held {
    pid: u32,
    task: u64,
    /// The earliest start among them.
    start_ns: u64,
    /// When the first was held (for [`MAX_HOLD_NS`]).
    since_ns: u64,
    handler: Option<Frame>,
    spans: Vec<Span>,
}

/// What is known of a server request when its span is built.
#[derive(Clone, Debug)]
pub struct ServedSpan {
    pub context: SpanContext,
    pub remote_parent: Option<SpanId>,
    pub response_stack: Option<Arc<CallStack>>,
    /// The handler, as its calls saw it.
    pub handler: Option<Frame>,
}

/// Counters for the summary: every limit counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServingCounters {
    /// Calls placed under a server request.
    pub nested: u64,
    /// Calls that waited for their request's response to be written.
    pub held: u64,
    /// Held calls that no request claimed: left as roots.
    pub unclaimed: u64,
    /// Held calls let go as roots for [`MAX_HOLD_NS`] or [`MAX_HELD_SPANS`].
    pub hold_limit_reached: u64,
    /// Requests forgotten before they finished ([`MAX_REQUESTS`]).
    pub requests_evicted: u64,
}

#[derive(Default)]
pub struct ServedRequests {
    requests: VecDeque<Served>,
    held: HashMap<TraceId, Held>,
    held_spans: usize,
    /// Traces already placed under a request: later spans of theirs follow.
    placed: HashMap<TraceId, (SpanContext, String)>,
    /// Finished requests' spans waiting for their handler's name: (request
    /// connection and start, span, until when).
    unnamed: Vec<(ConnKey, u64, Span, u64)>,
    /// Spans whose placement was decided, for the caller to output.
    ready: Vec<Span>,
    /// When finished requests were last forgotten.
    last_sweep_ns: u64,
    pub counters: ServingCounters,
}

impl ServedRequests {
    /// A request's head was read: its span context is fixed now, joining the
    /// caller's `traceparent` when there is one.
    pub fn started(&mut self, request: &ServerRequest, ids: &mut dyn IdSource) {
        if self.requests.len() >= MAX_REQUESTS {
            if self.requests.front().is_some_and(|oldest| oldest.end_ns.is_none()) {
                self.counters.requests_evicted += 1;
            }
            self.requests.pop_front();
        }
        let remote = request.traceparent.as_deref().and_then(crate::model::traceparent::parse);
        let trace_id = remote.map_or_else(|| TraceId::new(ids), |(trace, _)| trace);
        self.requests.push_back(Served {
            conn: request.conn,
            tid: request.tid,
            start_ns: request.start_ns,
            end_ns: None,
            context: SpanContext { trace_id, span_id: SpanId::new(ids) },
            remote_parent: remote.map(|(_, parent)| parent),
            concurrency: None,
            response_stack: None,
            handler: None,
            route: format!("{} {}", request.method, route_template(&request.target)),
        });
    }

    /// The process began writing a response on `conn`, with this stack: the
    /// oldest request there without a response yet is handled by its task
    /// (or thread). Spans held for that task are placed.
    pub fn response_written(&mut self, conn: ConnKey, stack: Arc<CallStack>) {
        let Some(index) = self.requests.iter().position(|s| s.conn == conn && s.concurrency.is_none()) else { return };
        let served = &mut self.requests[index];
        served.concurrency = Some(stack.concurrency);
        served.response_stack = Some(stack.clone());
        let Concurrency::Task(task) = stack.concurrency else { return };
        let (context, route, start, end) = (served.context, served.route.clone(), served.start_ns, served.end_ns);
        let claimed: Vec<TraceId> = self
            .held
            .iter()
            .filter(|(_, held)| {
                held.pid == conn.pid
                    && held.task == task
                    && start <= held.start_ns
                    && end.is_none_or(|e| held.start_ns <= e)
            })
            .map(|(trace, _)| *trace)
            .collect();
        for trace in claimed {
            let Some(held) = self.held.remove(&trace) else { continue };
            self.held_spans -= held.spans.len();
            self.requests[index].adopt_handler(held.handler);
            self.remember(trace, context, &route);
            for mut span in held.spans {
                nest(&mut span, context);
                self.counters.nested += 1;
                self.ready.push(span);
            }
        }
    }

    /// The request on `conn` that started at `start_ns` finished at
    /// `end_ns`: what its span needs.
    pub fn finished(&mut self, conn: ConnKey, start_ns: u64, end_ns: u64) -> Option<ServedSpan> {
        let served = self.requests.iter_mut().find(|s| s.conn == conn && s.start_ns == start_ns)?;
        served.end_ns = Some(end_ns);
        Some(ServedSpan {
            context: served.context,
            remote_parent: served.remote_parent,
            response_stack: served.response_stack.clone(),
            handler: served.handler.clone(),
        })
    }

    /// A call is starting (its request is being written) with this stack:
    /// the request in flight its task or thread serves learns its handler
    /// now — the call may end only after the request does (a relayed stream).
    pub fn call_starting(&mut self, pid: u32, stack: &CallStack, handler: Option<Frame>) {
        let owner = self.requests.iter_mut().rev().find(|s| {
            s.conn.pid == pid
                && s.end_ns.is_none()
                && match stack.concurrency {
                    Concurrency::Task(_) => s.concurrency == Some(stack.concurrency),
                    Concurrency::Thread => s.tid == stack.tid && !matches!(s.concurrency, Some(Concurrency::Task(_))),
                }
        });
        if let Some(owner) = owner {
            owner.adopt_handler(handler);
        }
    }

    /// A finished request's span whose response was not written from
    /// application code: named after its handler once a call of it tells
    /// (now, or within [`NAMING_DELAY_NS`]), then ready.
    pub fn name_after_handler(&mut self, span: Span, conn: ConnKey, start_ns: u64, now_ns: u64) {
        self.unnamed.push((conn, start_ns, span, now_ns + NAMING_DELAY_NS));
        self.name_finished(now_ns);
    }

    /// Names the waiting request spans whose handler is known, and lets go
    /// unnamed those whose wait is over.
    fn name_finished(&mut self, now_ns: u64) {
        for (conn, start_ns, mut span, until) in std::mem::take(&mut self.unnamed) {
            let served = self.requests.iter().find(|s| s.conn == conn && s.start_ns == start_ns);
            match served.and_then(|s| s.handler.as_ref()) {
                Some(handler) => crate::build::python::add_caller(&mut span, handler),
                None if now_ns < until => {
                    self.unnamed.push((conn, start_ns, span, until));
                    continue;
                }
                None => {}
            }
            self.ready.push(span);
        }
    }

    /// Whether process `pid` has a served request in flight (else its
    /// calls need no handler frame or placement work).
    pub fn serves(&self, pid: u32) -> bool {
        self.requests.iter().any(|s| s.conn.pid == pid && s.end_ns.is_none())
    }

    /// The request a traced function starting now on a thread of its own
    /// belongs to (asyncio tasks' functions are placed when they end).
    pub fn thread_request(&mut self, pid: u32, tid: u32, at_ns: u64) -> Option<SpanContext> {
        let served = self.requests.iter().rev().find(|s| s.served_by_thread(pid, tid, at_ns))?;
        let (context, route) = (served.context, served.route.clone());
        self.remember(context.trace_id, context, &route);
        Some(context)
    }

    /// Places a finished span (an HTTP or LLM call, or a traced function):
    /// under its request, as it is, or held until that can be told. Spans
    /// whose placement is decided come back from [`Self::take_ready`].
    /// `explicit`: the application set its parent itself (`traceparent`).
    pub fn place(&mut self, mut span: Span, origin: Origin, explicit: bool, now_ns: u64) {
        if explicit {
            self.ready.push(span);
            return;
        }
        if let Some((context, _)) = self.placed.get(&span.trace_id) {
            nest(&mut span, *context);
            self.counters.nested += 1;
            self.ready.push(span);
            return;
        }
        let owner = match origin.concurrency {
            Some(Concurrency::Task(task)) => self.requests.iter_mut().find(|s| {
                s.conn.pid == origin.pid && s.concurrency == Some(Concurrency::Task(task)) && s.covers(origin.start_ns)
            }),
            // A span inside a traced function already has its place (set when the function started).
            Some(Concurrency::Thread) if span.parent_span_id.is_none() => {
                self.requests.iter_mut().rev().find(|s| s.served_by_thread(origin.pid, origin.tid, origin.start_ns))
            }
            _ => None,
        };
        if let Some(owner) = owner {
            owner.adopt_handler(origin.handler);
            let (context, route) = (owner.context, owner.route.clone());
            self.remember(span.trace_id, context, &route);
            nest(&mut span, context);
            self.counters.nested += 1;
            self.ready.push(span);
        } else if let Some(Concurrency::Task(task)) = origin.concurrency
            && self.could_claim(origin.pid, origin.start_ns)
        {
            self.hold(span, origin, task, now_ns);
        } else {
            self.ready.push(span);
        }
    }

    /// The server request (method and route) a trace was placed under.
    pub fn route_of(&self, trace: TraceId) -> Option<&str> {
        self.placed.get(&trace).map(|(_, route)| route.as_str())
    }

    /// Spans whose placement is decided: placed, or let go as roots because
    /// no request can claim them any more, or a limit was reached.
    pub fn take_ready(&mut self, now_ns: u64) -> Vec<Span> {
        // Forgetting looks at every request: not on every event.
        if now_ns.saturating_sub(self.last_sweep_ns) >= SWEEP_INTERVAL_NS {
            self.last_sweep_ns = now_ns;
            self.forget_finished(now_ns);
        }
        if self.held.is_empty() && self.unnamed.is_empty() {
            return std::mem::take(&mut self.ready);
        }
        self.name_finished(now_ns);
        let expired: Vec<(TraceId, bool)> = self
            .held
            .iter()
            .filter_map(|(trace, held)| {
                let timed_out = now_ns.saturating_sub(held.since_ns) > MAX_HOLD_NS;
                (timed_out || !self.could_claim(held.pid, held.start_ns)).then_some((*trace, timed_out))
            })
            .collect();
        for (trace, timed_out) in expired {
            self.release(trace, timed_out);
        }
        std::mem::take(&mut self.ready)
    }

    /// Tracing ends: every held span goes out as it is.
    pub fn drain(&mut self) -> Vec<Span> {
        self.name_finished(u64::MAX);
        let traces: Vec<TraceId> = self.held.keys().copied().collect();
        for trace in traces {
            self.release(trace, false);
        }
        std::mem::take(&mut self.ready)
    }

    /// Whether a request in flight at `at_ns` in `pid` has not yet shown
    /// which task handles it.
    fn could_claim(&self, pid: u32, at_ns: u64) -> bool {
        self.requests.iter().any(|s| s.conn.pid == pid && s.concurrency.is_none() && s.covers(at_ns))
    }

    fn hold(&mut self, span: Span, origin: Origin, task: u64, now_ns: u64) {
        if self.held_spans >= MAX_HELD_SPANS
            && let Some(oldest) = self.held.iter().min_by_key(|(_, h)| h.since_ns).map(|(trace, _)| *trace)
        {
            self.release(oldest, true);
        }
        self.counters.held += 1;
        self.held_spans += 1;
        let held = self.held.entry(span.trace_id).or_insert(Held {
            pid: origin.pid,
            task,
            start_ns: origin.start_ns,
            since_ns: now_ns,
            handler: None,
            spans: Vec::new(),
        });
        held.start_ns = held.start_ns.min(origin.start_ns);
        if held.handler.is_none() {
            held.handler = origin.handler;
        }
        held.spans.push(span);
    }

    /// Lets a held trace go as it is.
    fn release(&mut self, trace: TraceId, limit: bool) {
        let Some(held) = self.held.remove(&trace) else { return };
        self.held_spans -= held.spans.len();
        let count = held.spans.len() as u64;
        if limit {
            self.counters.hold_limit_reached += count;
        } else {
            self.counters.unclaimed += count;
        }
        self.ready.extend(held.spans);
    }

    /// Remembers that trace `original` now lives in the request's trace
    /// (both ids lead to it: spans still to come carry the first, spans
    /// already placed the second).
    fn remember(&mut self, original: TraceId, context: SpanContext, route: &str) {
        if self.placed.len() + 2 > MAX_PLACED_TRACES {
            self.placed.clear();
        }
        self.placed.insert(original, (context, route.to_owned()));
        self.placed.insert(context.trace_id, (context, route.to_owned()));
    }

    /// Drops requests finished more than [`FINISHED_GRACE_NS`] ago.
    fn forget_finished(&mut self, now_ns: u64) {
        self.requests.retain(|s| s.end_ns.is_none_or(|end| now_ns.saturating_sub(end) <= FINISHED_GRACE_NS));
    }
}

/// Puts `span` (and its trace) under the request `context`: a span without
/// a parent becomes the request's child; every span takes its trace.
fn nest(span: &mut Span, context: SpanContext) {
    span.trace_id = context.trace_id;
    if span.parent_span_id.is_none() {
        span.parent_span_id = Some(context.span_id);
    }
}

/// A low-cardinality template of a request's path, for `http.route` when
/// the framework's own route template cannot be read: segments that look
/// like identifiers (numbers, UUIDs, long hex or mixed tokens) become
/// `{id}` — `/items/{id}`.
pub fn route_template(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> =
        path.split('/').map(|segment| if looks_like_identifier(segment) { "{id}" } else { segment }).collect();
    segments.join("/")
}

fn looks_like_identifier(segment: &str) -> bool {
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    let hex = segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    !segment.is_empty()
        && (digits == segment.len()
            || (hex && segment.len() >= 8 && digits > 0)
            || (segment.len() >= 16 && digits * 4 >= segment.len()))
}

#[cfg(test)]
mod tests {
    use crate::model::{SpanKind, TestIds};
    use crate::python::asyncio::samples::task_stack;

    use super::*;

    fn span(name: &str) -> Span {
        let (trace_id, span_id) = (TraceId::new(&mut TestIds), SpanId::new(&mut TestIds));
        Span { trace_id, span_id, name: name.into(), kind: SpanKind::Client, ..Span::placeholder() }
    }

    fn stack(frames: Vec<Frame>) -> Arc<CallStack> {
        let concurrency = Concurrency::of(&frames);
        Arc::new(CallStack { tid: 7, thread_name: None, frames: frames.into(), within: None, concurrency })
    }

    const PID: u32 = 100;

    fn request(
        id: u64,
        tid: u32,
        start_ns: u64,
        remote: Option<&(TraceId, SpanId)>,
        method: &str,
        target: &str,
    ) -> ServerRequest {
        let traceparent = remote.map(|(trace, span)| {
            let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            format!("00-{}-{}-01", hex(&trace.0), hex(&span.0))
        });
        ServerRequest { conn: conn(id), tid, start_ns, method: method.into(), target: target.into(), traceparent }
    }
    fn conn(id: u64) -> ConnKey {
        ConnKey { pid: PID, conn_id: id }
    }

    #[test]
    fn a_call_on_the_request_s_thread_is_its_child_at_once() {
        let mut served = ServedRequests::default();
        served.started(&request(1, 11, 1_000, None, "POST", "/ask"), &mut TestIds);
        let origin =
            Origin { pid: PID, tid: 11, start_ns: 2_000, concurrency: Some(Concurrency::Thread), handler: None };
        let call = span("chat");
        let trace = call.trace_id;
        served.place(call, origin.clone(), false, 2_000);
        let ready = served.take_ready(2_000);
        let request = served.finished(conn(1), 1_000, 9_000).unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].parent_span_id, Some(request.context.span_id));
        assert_eq!(ready[0].trace_id, request.context.trace_id);
        assert_eq!(served.route_of(trace), Some("POST /ask"));
        // Another thread's call, or one after the response, is not.
        for origin in [Origin { tid: 12, ..origin.clone() }, Origin { start_ns: 10_000, ..origin }] {
            served.place(span("other"), origin, false, 10_000);
            assert_eq!(served.take_ready(10_000)[0].parent_span_id, None);
        }
    }

    #[test]
    fn a_task_s_calls_wait_for_the_response_that_names_their_task() {
        let mut served = ServedRequests::default();
        let remote = (TraceId::new(&mut TestIds), SpanId::new(&mut TestIds));
        served.started(&request(1, 5, 1_000, Some(&remote), "POST", "/ask"), &mut TestIds);
        served.started(&request(2, 5, 1_100, None, "POST", "/ask"), &mut TestIds);
        // Two requests in flight on one loop; a call from each task.
        let first = span("chat first");
        let second = span("chat second");
        served.place(
            first,
            Origin { pid: PID, tid: 5, start_ns: 2_000, concurrency: Some(Concurrency::Task(0xa)), handler: None },
            false,
            2_000,
        );
        served.place(
            second,
            Origin { pid: PID, tid: 5, start_ns: 2_100, concurrency: Some(Concurrency::Task(0xb)), handler: None },
            false,
            2_100,
        );
        assert!(served.take_ready(2_200).is_empty(), "held until a response names its task");
        // Request 2's response is written from task 0xb, then request 1's from 0xa.
        served.response_written(conn(2), stack(task_stack(0xb)));
        let ready = served.take_ready(3_000);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].name, "chat second");
        let two = served.finished(conn(2), 1_100, 3_500).unwrap();
        assert_eq!(ready[0].parent_span_id, Some(two.context.span_id));
        served.response_written(conn(1), stack(task_stack(0xa)));
        let ready = served.take_ready(4_000);
        let one = served.finished(conn(1), 1_000, 4_500).unwrap();
        assert_eq!(ready[0].parent_span_id, Some(one.context.span_id));
        assert_eq!(ready[0].trace_id, remote.0, "the caller's trace");
        assert_eq!(one.remote_parent, Some(remote.1));
        assert_eq!(served.counters.nested, 2);
    }

    #[test]
    fn a_background_task_stays_a_root() {
        let mut served = ServedRequests::default();
        served.started(&request(1, 5, 1_000, None, "POST", "/ask"), &mut TestIds);
        served.place(
            span("background"),
            Origin { pid: PID, tid: 5, start_ns: 2_000, concurrency: Some(Concurrency::Task(0xc)), handler: None },
            false,
            2_000,
        );
        served.response_written(conn(1), stack(task_stack(0xa)));
        served.finished(conn(1), 1_000, 3_000);
        let ready = served.take_ready(3_000);
        assert_eq!(ready.len(), 1, "no request can claim it any more");
        assert_eq!(ready[0].parent_span_id, None);
        assert_eq!(served.counters.unclaimed, 1);
        // A task's call with no request in flight at all goes out at once.
        served.place(
            span("later"),
            Origin { pid: PID, tid: 5, start_ns: 9_000, concurrency: Some(Concurrency::Task(0xd)), handler: None },
            false,
            9_000,
        );
        assert_eq!(served.take_ready(9_000).len(), 1);
    }

    #[test]
    fn holding_is_bounded_in_time() {
        let mut served = ServedRequests::default();
        served.started(&request(1, 5, 1_000, None, "GET", "/slow"), &mut TestIds);
        served.place(
            span("call"),
            Origin { pid: PID, tid: 5, start_ns: 2_000, concurrency: Some(Concurrency::Task(0xa)), handler: None },
            false,
            2_000,
        );
        assert!(served.take_ready(2_000 + MAX_HOLD_NS).is_empty());
        let ready = served.take_ready(2_001 + MAX_HOLD_NS);
        assert_eq!(ready.len(), 1);
        assert_eq!(served.counters.hold_limit_reached, 1);
    }

    #[test]
    fn later_spans_of_a_placed_trace_follow_it() {
        let mut served = ServedRequests::default();
        served.started(&request(1, 11, 1_000, None, "POST", "/ask"), &mut TestIds);
        let function = span("Agent.step");
        let mut child = span("chat");
        child.trace_id = function.trace_id;
        child.parent_span_id = Some(function.span_id);
        let origin =
            Origin { pid: PID, tid: 11, start_ns: 2_000, concurrency: Some(Concurrency::Thread), handler: None };
        served.place(function.clone(), origin.clone(), false, 2_000);
        served.place(child, Origin { tid: 99, ..origin }, false, 2_000);
        let ready = served.take_ready(2_000);
        let request = served.finished(conn(1), 1_000, 3_000).unwrap();
        assert_eq!(ready[1].trace_id, request.context.trace_id, "the function's child joins the request's trace");
        assert_eq!(ready[1].parent_span_id, Some(function.span_id), "and keeps its own parent");
    }

    #[test]
    fn routes_keep_their_shape_and_lose_identifiers() {
        assert_eq!(route_template("/items/42?x=1"), "/items/{id}");
        assert_eq!(route_template("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(route_template("/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301/files"), "/users/{id}/files");
        assert_eq!(route_template("/ask"), "/ask");
    }
}
