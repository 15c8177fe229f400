//! The engine's one entry point: ring-buffer records in, spans out —
//! decode, reassemble, pair, resolve stacks, correlate, build. It makes no
//! system call of its own: the time comes with each call (`now_ns`,
//! monotonic), identifiers from an injected [`IdSource`], and what only the
//! system knows of a process (is it one, its main thread's name, its
//! memory) from injected [`ProcessFacts`]. Spans wait in the engine until
//! the caller takes them ([`Engine::take_spans`]); what the caller must act
//! on comes back as [`Feedback`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::build::http::build_span;
use crate::build::llm::{Priced, enrich};
use crate::correlate::function::{CallStart, FinishedCall, FunctionCalls, function_span};
use crate::correlate::serving::{Origin, ServedRequests};
use crate::events::{self, Event, RawStack};
use crate::http::Exchange;
use crate::llm::{self, content::ContentPolicy, pricing::PriceTable};
use crate::model::Clock;
use crate::model::{Resource, Span, SpanKind, semconv as sc};
use crate::python::asyncio::Concurrency;
use crate::python::frame::Frame;
use crate::python::memory::ProcessMemory;
use crate::python::stacks::StackTable;
use crate::python::symbolize::{CallStack, Symbolizer};
use crate::tracker::Tracker;
use tracer_common::KnownStackKey;

use crate::correlate::serving::ServingCounters;
use crate::limits::LimitCounters;
use crate::model::IdSource;
use crate::threads::ThreadNames;

/// What only the system knows of a traced process, asked by the engine
/// (the agent answers from `/proc`; a replay of a recording, from nothing).
pub trait ProcessFacts {
    /// Whether `pid` is a process (a fork event reports new threads too).
    fn is_process(&self, pid: u32) -> bool;
    /// The OS name of `pid`'s main thread.
    fn main_thread_name(&self, pid: u32) -> Option<String>;
    /// `pid`'s memory, to resolve its Python stacks with.
    fn memory(&self, pid: u32) -> Option<ProcessMemory>;
}

/// What the engine counted: records in, records it could not read, and how
/// often each of its limits was reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineCounters {
    pub events_received: u64,
    pub events_undecodable: u64,
    pub limits: LimitCounters,
}

/// A traced process's life event the caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// A new process or thread, already traced by the kernel.
    Forked(u32),
    /// A process now runs another program.
    Exec(u32),
    /// A process mapped a file executable: its memory map changed.
    Mapped(u32),
}

/// What the engine learnt that the kernel or the user must hear about,
/// or that changes which processes are traced.
#[derive(Debug, Default)]
pub struct Feedback {
    /// Code objects found to be traced functions, or not (`FUNCTION_CODES`).
    pub verdicts: Vec<crate::correlate::function::CodeVerdict>,
    /// Stacks resolved whole for the first time (`KNOWN_STACKS`).
    pub known_stacks: Vec<KnownStackKey>,
    /// Forks and execs of traced processes.
    pub lifecycle: Vec<Lifecycle>,
    /// Messages for the user (e.g. a model without a price).
    pub warnings: Vec<String>,
}

pub struct Engine {
    tracker: Tracker<Arc<CallStack>>,
    clock: Clock,
    /// The monotonic time of the call being handled.
    now_ns: u64,
    ids: Box<dyn IdSource>,
    facts: Box<dyn ProcessFacts>,
    prices: PriceTable,
    content: Option<ContentPolicy>,
    resources: HashMap<u32, Arc<Resource>>,
    exchanges: Vec<Exchange<Arc<CallStack>>>,
    unpriced_models: HashSet<String>,
    /// Resolves captured Python stacks, for processes with Python context.
    symbolizer: Symbolizer,
    stacks: StackTable,
    /// Stacks resolved whole for the first time, for the kernel's `KNOWN_STACKS`.
    resolved_stacks: Vec<KnownStackKey>,
    /// Calls of the functions chosen with `--trace-function`.
    functions: FunctionCalls,
    /// Requests the traced processes serve, and the calls made for them.
    served: ServedRequests,
    threads: ThreadNames,
    /// Extra path prefixes of library code (`--library-path`).
    library_paths: Vec<String>,
    /// Messages for the user (e.g. a model without a price).
    warnings: Vec<String>,
    /// Forks and execs of traced processes (`pytrace run`).
    lifecycle: Vec<Lifecycle>,
    /// Finished spans, until the caller takes them.
    spans: Vec<Span>,
    counters: EngineCounters,
}

impl Engine {
    pub fn new(
        clock: Clock,
        prices: PriceTable,
        content: Option<ContentPolicy>,
        ids: Box<dyn IdSource>,
        facts: Box<dyn ProcessFacts>,
    ) -> Self {
        Self {
            tracker: Tracker::new(),
            clock,
            now_ns: 0,
            ids,
            facts,
            prices,
            content,
            resources: HashMap::new(),
            exchanges: Vec::new(),
            unpriced_models: HashSet::new(),
            symbolizer: Symbolizer::default(),
            stacks: StackTable::default(),
            resolved_stacks: Vec::new(),
            functions: FunctionCalls::default(),
            served: ServedRequests::default(),
            threads: ThreadNames::default(),
            library_paths: Vec::new(),
            warnings: Vec::new(),
            lifecycle: Vec::new(),
            spans: Vec::new(),
            counters: EngineCounters::default(),
        }
    }

    /// Library code also lives under these prefixes (`--library-path`).
    pub fn with_library_paths(mut self, paths: Vec<String>) -> Self {
        self.library_paths = paths;
        self
    }

    /// Calls of functions matching these patterns become spans (`--trace-function`).
    pub fn with_traced_functions(mut self, patterns: Vec<crate::python::patterns::FunctionPattern>) -> Self {
        self.functions = FunctionCalls::new(patterns);
        self
    }

    pub fn traces_functions(&self) -> bool {
        self.functions.is_enabled()
    }

    /// Python context is on for `pid`: its stacks can be resolved.
    pub fn add_python_process(&mut self, pid: u32, memory: ProcessMemory, layout: crate::python::layout::Layout) {
        self.symbolizer.add_process(pid, memory, layout);
    }

    /// `pid` runs another program now: what was known of its code no longer holds.
    pub fn forget_program(&mut self, pid: u32) {
        self.symbolizer.remove_process(pid);
    }

    /// What the engine learnt since the last call that the kernel or the
    /// user must hear about, or that changes the traced set.
    pub fn take_feedback(&mut self) -> Feedback {
        Feedback {
            verdicts: self.functions.take_verdicts(),
            known_stacks: std::mem::take(&mut self.resolved_stacks),
            lifecycle: std::mem::take(&mut self.lifecycle),
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    /// Registers the resource describing a traced process.
    pub fn add_process(&mut self, pid: u32, resource: Arc<Resource>) {
        self.resources.insert(pid, resource);
    }

    /// The spans finished since the last call.
    pub fn take_spans(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.spans)
    }

    pub fn counters(&self) -> EngineCounters {
        self.counters
    }

    /// Requests served and how their calls were placed.
    pub fn serving_counters(&self) -> ServingCounters {
        self.served.counters
    }

    /// Handles one raw ring-buffer record, at monotonic time `now_ns`.
    pub fn record(&mut self, bytes: &[u8], now_ns: u64) {
        self.counters.events_received += 1;
        match events::decode(bytes) {
            Ok(event) => self.event(&event, now_ns),
            Err(_) => self.counters.events_undecodable += 1,
        }
    }

    /// Handles one decoded event, at monotonic time `now_ns`.
    pub fn event(&mut self, event: &Event, now_ns: u64) {
        self.now_ns = now_ns;
        match event {
            Event::PyStack { conn, stack } => {
                // Resolved now, while the process and its code objects are alive.
                let frames = self.resolve_stack(conn.pid, stack);
                let within = self.functions.enclosing(conn.pid, &frames);
                let facts = &self.facts;
                let thread_name =
                    self.threads.name(conn.pid, stack.tid, &stack.thread_name, |pid| facts.main_thread_name(pid));
                let concurrency = Concurrency::of(&frames);
                let frames = self.stacks.share(conn.pid, &frames);
                let stack = Arc::new(CallStack { tid: stack.tid, thread_name, frames, within, concurrency });
                if self.tracker.is_server(*conn) {
                    // The process is answering a request: which task or thread handles it.
                    self.served.response_written(*conn, stack);
                    self.flush_placed();
                } else {
                    if self.served.serves(conn.pid) {
                        self.served.call_starting(conn.pid, &stack, handler_frame(&stack, &self.library_paths));
                    }
                    self.tracker.offer_context(*conn, stack);
                }
            }
            Event::FunctionStart { pid, at_ns, stack, first_seen } => {
                let frames = self.resolve_stack(*pid, stack);
                let facts = &self.facts;
                let thread_name =
                    self.threads.name(*pid, stack.tid, &stack.thread_name, |pid| facts.main_thread_name(pid));
                let concurrency = Concurrency::of(&frames);
                let request = match concurrency {
                    Concurrency::Thread => self.served.thread_request(*pid, stack.tid, *at_ns),
                    Concurrency::Task(_) => None,
                };
                let start = CallStart {
                    request,
                    concurrency,
                    pid: *pid,
                    tid: stack.tid,
                    thread_name: thread_name.as_ref(),
                    at_ns: *at_ns,
                    frames: &frames,
                    first_seen: *first_seen,
                    qualified: self.symbolizer.has_qualified_names(*pid),
                };
                self.functions.started(start, self.ids.as_mut());
            }
            Event::FunctionEnd(end) => {
                if let Some(call) = self.functions.ended(end) {
                    self.emit_function(&call);
                }
            }
            Event::ProcessForked { parent, child } => {
                // A child of a process with Python context reads its own
                // memory, and its parent's for code made before the fork.
                if self.symbolizer.knows(*parent)
                    && self.facts.is_process(*child)
                    && let Some(memory) = self.facts.memory(*child)
                {
                    let parent_memory = self.facts.memory(*parent);
                    self.symbolizer.fork(*parent, *child, memory, parent_memory);
                }
                self.lifecycle.push(Lifecycle::Forked(*child));
            }
            Event::ProcessExec { pid } => self.lifecycle.push(Lifecycle::Exec(*pid)),
            Event::ProcessMapped { pid } => self.lifecycle.push(Lifecycle::Mapped(*pid)),
            _ => {
                self.tracker.handle(event, &mut self.exchanges);
                for request in self.tracker.take_server_requests() {
                    self.served.started(&request, self.ids.as_mut());
                }
                self.emit();
            }
        }
    }

    /// Resolves a stack; one seen whole for the first time is noted for the
    /// kernel's `KNOWN_STACKS`, so its next occurrences need no wake-up.
    fn resolve_stack(&mut self, pid: u32, stack: &RawStack) -> Vec<Frame> {
        let frames = self.symbolizer.resolve(pid, &stack.frames);
        if !stack.known && frames.len() == stack.frames.len() {
            self.resolved_stacks.push(stack.known_key(pid));
        }
        frames
    }

    /// The process exited: its in-flight exchanges and calls become incomplete spans.
    pub fn process_exited(&mut self, pid: u32, now_ns: u64) {
        self.now_ns = now_ns;
        self.tracker.process_exited(pid, &mut self.exchanges);
        self.emit();
        for call in self.functions.drain_running(Some(pid), self.now_ns) {
            self.emit_function(&call);
        }
        self.symbolizer.remove_process(pid);
        self.threads.remove_process(pid);
        self.flush_placed();
    }

    /// Tracing ends: flush everything in flight.
    pub fn finish(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        self.tracker.finish(&mut self.exchanges);
        self.emit();
        self.count_limits();
        for call in self.functions.drain_running(None, self.now_ns) {
            self.emit_function(&call);
        }
        for span in self.served.drain() {
            self.deliver_placed(span);
        }
    }

    fn emit_function(&mut self, call: &FinishedCall) {
        let resource = resource_of(call.pid, &mut self.resources);
        let span = function_span(call, self.clock, resource);
        let origin = Origin {
            pid: call.pid,
            tid: call.tid(),
            start_ns: call.start_ns(),
            concurrency: Some(call.concurrency()),
            handler: None,
        };
        self.served.place(span, origin, false, self.now_ns);
        self.flush_placed();
    }

    /// Time passes: spans that waited long enough for their request go
    /// out, connections idle too long are forgotten, limits are counted.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        self.tracker.forget_idle(now_ns, &mut self.exchanges);
        self.emit();
        self.count_limits();
    }

    /// Takes in how often the tracker's and the symbolizer's limits were reached.
    fn count_limits(&mut self) {
        let limits = &mut self.counters.limits;
        let tracker = self.tracker.limits;
        limits.connections_idle_evicted = tracker.connections_idle_evicted;
        limits.connections_full_evicted = tracker.connections_full_evicted;
        limits.code_cache_resets = self.symbolizer.cache_resets();
    }

    /// Outputs the spans whose place under a served request (or not) is decided.
    fn flush_placed(&mut self) {
        for span in self.served.take_ready(self.now_ns) {
            self.deliver_placed(span);
        }
    }

    fn deliver_placed(&mut self, mut span: Span) {
        if let Some(route) = self.served.route_of(span.trace_id) {
            span.attributes.set(sc::PYTRACE_SERVER_ROUTE, route.to_owned());
        }
        self.spans.push(span);
    }

    pub fn connection_count(&self) -> usize {
        self.tracker.connection_count()
    }

    fn emit(&mut self) {
        for exchange in std::mem::take(&mut self.exchanges) {
            let limits = &mut self.counters.limits;
            limits.body_arrivals_dropped +=
                exchange.request_body.arrivals_dropped + exchange.response_body.arrivals_dropped;
            if exchange.incomplete == Some(crate::http::Incomplete::Evicted) {
                limits.exchanges_evicted += 1;
            }
            let resource = resource_of(exchange.conn.pid, &mut self.resources);
            let mut span = build_span(&exchange, self.clock, resource, self.ids.as_mut());
            if span.kind == SpanKind::Server {
                self.emit_served(&exchange, span);
                continue;
            }
            // The application's own traceparent placed it.
            let explicit = span.parent_span_id.is_some();
            if let Some(stack) = &exchange.context {
                crate::build::python::add_code_attributes(&mut span, stack, &self.library_paths);
                // Inside a traced function, unless the application's own traceparent placed it.
                if let Some(within) = stack.within
                    && span.parent_span_id.is_none()
                {
                    span.trace_id = within.trace_id;
                    span.parent_span_id = Some(within.span_id);
                }
            }
            if let Some(call) = llm::analyze(&exchange) {
                let priced = enrich(&mut span, &call, exchange.start_ns, &self.prices);
                for (key, value) in self.content.iter().flat_map(|policy| policy.attributes(&call)) {
                    span.attributes.set(key, value);
                }
                if let Priced::UnknownModel(model) = priced
                    && self.unpriced_models.insert(model.clone())
                {
                    self.warnings.push(format!(
                        "no price is known for model {model:?} ({}); its calls get no cost. Add it with --prices FILE",
                        call.provider
                    ));
                }
            }
            let origin = Origin {
                pid: exchange.conn.pid,
                tid: exchange.tid,
                start_ns: exchange.start_ns,
                concurrency: exchange.context.as_ref().map(|stack| stack.concurrency),
                // The handler is only worth finding while the process serves a request.
                handler: exchange
                    .context
                    .as_ref()
                    .filter(|_| self.served.serves(exchange.conn.pid))
                    .and_then(|stack| handler_frame(stack, &self.library_paths)),
            };
            self.served.place(span, origin, explicit, self.now_ns);
        }
        self.flush_placed();
    }

    /// A served request's span: the identity fixed when its head was read,
    /// and the handler that wrote its response (its innermost application
    /// frame, when the response was written from application code).
    fn emit_served(&mut self, exchange: &Exchange<Arc<CallStack>>, mut span: Span) {
        span.attributes.set(sc::HTTP_ROUTE, crate::correlate::serving::route_template(&exchange.request.target));
        if let Some(served) = self.served.finished(exchange.conn, exchange.start_ns, exchange.end_ns) {
            span.trace_id = served.context.trace_id;
            span.span_id = served.context.span_id;
            span.parent_span_id = served.remote_parent;
            match &served.response_stack {
                // Written from the handler itself (`self.wfile.write` in a
                // BaseHTTPRequestHandler): the stack names it.
                Some(stack) if handler_frame(stack, &self.library_paths).is_some() => {
                    crate::build::python::add_code_attributes(&mut span, stack, &self.library_paths);
                }
                // Written by the framework after the handler returned: the
                // handler is the outermost application frame its calls saw.
                _ => {
                    let now = self.now_ns;
                    self.served.name_after_handler(span, exchange.conn, exchange.start_ns, now);
                    return;
                }
            }
        }
        self.spans.push(span);
    }
}

/// The outermost application frame of the task or thread `stack` ran in
/// (not the code that started the event loop).
fn handler_frame(stack: &CallStack, library_paths: &[String]) -> Option<Frame> {
    let frames = crate::python::asyncio::task_frames(&stack.frames);
    frames.iter().rev().find(|f| !crate::build::python::is_library(&f.file, library_paths)).cloned()
}

fn resource_of(pid: u32, resources: &mut HashMap<u32, Arc<Resource>>) -> Arc<Resource> {
    resources
        .entry(pid)
        .or_insert_with(|| {
            let mut resource = Resource::default();
            resource.attributes.set(crate::model::semconv::PROCESS_PID, i64::from(pid));
            Arc::new(resource)
        })
        .clone()
}
