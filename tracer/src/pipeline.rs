//! The engine as the agent runs it: each kernel record goes into
//! `pytrace_core::engine::Engine` with the time it is handled; the spans
//! that come out are taken by the session for its sinks
//! ([`Pipeline::take_spans`]). The engine asks the system through the
//! `ProcessFacts` it is given (`/proc`: `targets::inspect::facts`) and
//! draws ids from the kernel's random generator; events the agent makes
//! itself (seeded sockets, exits, ticks) carry the monotonic clock's time.

use std::sync::Arc;

use pytrace_core::correlate::serving::ServingCounters;
use pytrace_core::engine::{Engine, EngineCounters, Feedback, ProcessFacts};
use pytrace_core::events::Event;
use pytrace_core::llm::{content::ContentPolicy, pricing::PriceTable};
use pytrace_core::model::{Clock, Resource, Span};
use pytrace_core::python::layout::Layout;
use pytrace_core::python::memory::ProcessMemory;
use pytrace_core::python::patterns::FunctionPattern;

use crate::clock::monotonic_now;
use crate::ids::KernelRandom;

pub struct Pipeline {
    engine: Engine,
}

impl Pipeline {
    /// The engine asks the system what `facts` answers (`/proc`, in the agent).
    pub fn new(clock: Clock, prices: PriceTable, content: Option<ContentPolicy>, facts: Box<dyn ProcessFacts>) -> Self {
        Self { engine: Engine::new(clock, prices, content, Box::new(KernelRandom), facts) }
    }

    /// Library code also lives under these prefixes (`--library-path`).
    pub fn with_library_paths(mut self, paths: Vec<String>) -> Self {
        self.engine = self.engine.with_library_paths(paths);
        self
    }

    /// Calls of functions matching these patterns become spans (`--trace-function`).
    pub fn with_traced_functions(mut self, patterns: Vec<FunctionPattern>) -> Self {
        self.engine = self.engine.with_traced_functions(patterns);
        self
    }

    pub fn traces_functions(&self) -> bool {
        self.engine.traces_functions()
    }

    /// Python context is on for `pid`: its stacks can be resolved.
    pub fn add_python_process(&mut self, pid: u32, memory: ProcessMemory, layout: Layout) {
        self.engine.add_python_process(pid, memory, layout);
    }

    /// `pid` runs another program now: what was known of its code no longer holds.
    pub fn forget_program(&mut self, pid: u32) {
        self.engine.forget_program(pid);
    }

    /// What the engine learnt that the kernel or the user must hear about.
    pub fn take_feedback(&mut self) -> Feedback {
        self.engine.take_feedback()
    }

    /// Registers the resource describing a traced process.
    pub fn add_process(&mut self, pid: u32, resource: Arc<Resource>) {
        self.engine.add_process(pid, resource);
    }

    pub fn connection_count(&self) -> usize {
        self.engine.connection_count()
    }

    /// Handles one raw ring-buffer record, drained at monotonic time `now_ns`
    /// (read once per batch by the caller, not per record).
    pub fn record(&mut self, bytes: &[u8], now_ns: u64) {
        self.engine.record(bytes, now_ns);
    }

    pub fn event(&mut self, event: &Event) {
        self.engine.event(event, monotonic_now());
    }

    /// The process exited: its in-flight exchanges and calls become incomplete spans.
    pub fn process_exited(&mut self, pid: u32) {
        self.engine.process_exited(pid, monotonic_now());
    }

    /// Time passes: spans that waited long enough go out, idle connections are forgotten.
    pub fn tick(&mut self) {
        self.engine.tick(monotonic_now());
    }

    /// Tracing ends: flush everything in flight.
    pub fn finish(&mut self) {
        self.engine.finish(monotonic_now());
    }

    /// How calls were placed under served requests.
    pub fn serving_counters(&self) -> ServingCounters {
        self.engine.serving_counters()
    }

    /// What the engine counted (events, limits reached).
    pub fn engine_counters(&self) -> EngineCounters {
        self.engine.counters()
    }

    /// The spans finished since the last call, for the sinks.
    pub fn take_spans(&mut self) -> Vec<Span> {
        self.engine.take_spans()
    }
}
