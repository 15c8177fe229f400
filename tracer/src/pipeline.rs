//! From ring-buffer records to rendered spans: decode, reassemble, pair,
//! build, output. Synchronous and free of kernel I/O, so it is tested and
//! benchmarked by replaying recorded events.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::events::{self, Event};
use crate::http::Exchange;
use crate::output::Output;
use crate::span::http::build_span;
use crate::span::{Resource, Span};
use crate::tracker::Tracker;

pub struct Pipeline {
    tracker: Tracker,
    clock: Clock,
    resources: HashMap<u32, Arc<Resource>>,
    exchanges: Vec<Exchange>,
    pub output: Output,
}

impl Pipeline {
    pub fn new(clock: Clock, output: Output) -> Self {
        Self { tracker: Tracker::new(), clock, resources: HashMap::new(), exchanges: Vec::new(), output }
    }

    /// Registers the resource describing a traced process.
    pub fn add_process(&mut self, pid: u32, resource: Arc<Resource>) {
        self.resources.insert(pid, resource);
    }

    /// Handles one raw ring-buffer record.
    pub fn record(&mut self, bytes: &[u8]) {
        self.output.summary.counters.events_received += 1;
        match events::decode(bytes) {
            Ok(event) => self.event(&event),
            Err(error) => {
                self.output.summary.counters.events_undecodable += 1;
                tracing::debug!(%error, "undecodable event");
            }
        }
    }

    pub fn event(&mut self, event: &Event) {
        self.tracker.handle(event, &mut self.exchanges);
        self.emit();
    }

    /// The process exited: its in-flight exchanges become incomplete spans.
    pub fn process_exited(&mut self, pid: u32) {
        self.tracker.process_exited(pid, &mut self.exchanges);
        self.emit();
    }

    /// Tracing ends: flush everything in flight.
    pub fn finish(&mut self) {
        self.tracker.finish(&mut self.exchanges);
        self.emit();
    }

    pub fn connection_count(&self) -> usize {
        self.tracker.connection_count()
    }

    fn emit(&mut self) {
        for exchange in self.exchanges.drain(..) {
            let span = span_of(&exchange, self.clock, &mut self.resources);
            self.output.span(&span);
        }
    }
}

fn span_of(exchange: &Exchange, clock: Clock, resources: &mut HashMap<u32, Arc<Resource>>) -> Span {
    let pid = exchange.conn.pid;
    let resource = resources.entry(pid).or_insert_with(|| {
        let mut resource = Resource::default();
        resource.attributes.set(crate::span::semconv::PROCESS_PID, i64::from(pid));
        Arc::new(resource)
    });
    build_span(exchange, clock, resource.clone())
}
