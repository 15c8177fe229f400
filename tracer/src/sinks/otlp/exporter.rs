//! Delivery of spans and metrics to the collector.
//!
//! The pipeline side ([`OtlpSink`]) batches spans (512, or whatever is
//! pending when [`OtlpSink::flush`] is called) and hands each batch to the
//! delivery task over a bounded channel; when the channel is full — the
//! collector is slower than the traced programs — the batch goes to the
//! spooler task, which writes it to the spool, so tracing never waits on the
//! network or the disk (a batch that finds the spooler's queue full too is
//! dropped and counted). The delivery task sends
//! a batch at once while the collector is healthy and the spool empty;
//! otherwise, or when sending fails with a retryable error, the batch is
//! spooled. Spooled batches are re-sent oldest first, with exponential
//! backoff (1 s to 30 s) while the collector stays unreachable. A batch whose
//! delivery timed out may have arrived anyway: it is sent again, and the
//! collector may then see it twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message;
use pytrace_core::model::{Resource, Span};
use tokio::sync::{mpsc, oneshot};

use super::encode_spans as encode;
use super::spool::Spool;
use super::transport::{SendError, Transport, gunzip, gzip};
use crate::notices::notice;
use crate::sinks::SpanSink;
use crate::sinks::span_metrics::Metrics;
use crate::stats::{OtlpCounters, Stats};

/// Spans per export request.
pub const BATCH_SPANS: usize = 512;
/// Batches waiting for the delivery task before batches go to the spool.
const QUEUE_BATCHES: usize = 16;
/// Batches waiting for the spooler before batches are dropped.
const SPILL_BATCHES: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Delivery counters, shared by the sink, the delivery task and reports.
#[derive(Debug, Default)]
pub struct ExportCounters {
    pub exported: AtomicU64,
    pub failed: AtomicU64,
    pub spooled: AtomicU64,
    pub dropped: AtomicU64,
    pub metric_exports_failed: AtomicU64,
}

impl ExportCounters {
    fn add(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

enum Command {
    Spans { count: u32, request: ExportTraceServiceRequest },
    Metrics(ExportMetricsServiceRequest),
    Finish(oneshot::Sender<()>),
}

/// Spans are encoded as they come and sent in batches ([`OtlpSink::send_pending`]),
/// not at every flush of the terminal's output.
impl SpanSink for OtlpSink {
    fn span(&mut self, span: &Span) {
        self.pending.push((span.resource.clone(), encode::span(span)));
        if self.pending.len() >= BATCH_SPANS {
            self.send_pending();
        }
    }
}

/// The agent's end of OTLP export.
pub struct OtlpSink {
    pending: Vec<(Arc<Resource>, ProtoSpan)>,
    sender: mpsc::Sender<Command>,
    spill: Option<mpsc::Sender<(u32, ExportTraceServiceRequest)>>,
    spooler: Option<tokio::task::JoinHandle<()>>,
    spool: Arc<Mutex<Spool>>,
    pub counters: Arc<ExportCounters>,
}

impl OtlpSink {
    /// Starts the delivery task (on the current tokio runtime).
    pub fn start(traces: Transport, metrics: Transport, spool: Spool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
        let spool = Arc::new(Mutex::new(spool));
        let counters = Arc::new(ExportCounters::default());
        let delivery = Delivery { traces, metrics, spool: spool.clone(), counters: counters.clone(), healthy: true };
        tokio::spawn(delivery.run(receiver));
        let (spill, spilled) = mpsc::channel(SPILL_BATCHES);
        let spooler = tokio::spawn(spooler(spilled, spool.clone(), counters.clone()));
        Self { pending: Vec::new(), sender, spill: Some(spill), spooler: Some(spooler), spool, counters }
    }

    /// Hands the pending spans to the delivery task (or the spool): at
    /// least every second (`agent::export`), and whenever a batch is full.
    pub fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.pending);
        let count = u32::try_from(spans.len()).unwrap_or(u32::MAX);
        let request = encode::traces_request(&spans);
        if let Err(mpsc::error::TrySendError::Full(Command::Spans { request, .. })) =
            self.sender.try_send(Command::Spans { count, request })
            && self.spill.as_ref().is_none_or(|spill| spill.try_send((count, request)).is_err())
        {
            ExportCounters::add(&self.counters.dropped, u64::from(count));
        }
    }

    /// Queues a metrics export.
    pub fn export_metrics(
        &mut self,
        metrics: &Metrics,
        stats: &Stats,
        own: &Resource,
        start_unix_ns: u64,
        now_unix_ns: u64,
    ) {
        let request = super::encode_metrics::request(metrics, stats, own, start_unix_ns, now_unix_ns);
        let _ = self.sender.try_send(Command::Metrics(request));
    }

    /// Flushes, then waits up to `timeout` for the delivery task to send
    /// what it can; what is left stays in the spool for the next run.
    pub async fn finish(&mut self, timeout: Duration) {
        self.send_pending();
        let deadline = tokio::time::Instant::now() + timeout;
        // The spooler ends once its queue is empty and closed.
        self.spill = None;
        if let Some(spooler) = self.spooler.take() {
            let _ = tokio::time::timeout_at(deadline, spooler).await;
        }
        let (done, finished) = oneshot::channel();
        if self.sender.send(Command::Finish(done)).await.is_ok() {
            let _ = tokio::time::timeout_at(deadline, finished).await;
        }
    }

    /// Spans waiting in the spool.
    pub fn spooled_now(&self) -> u64 {
        self.spool.lock().map_or(0, |spool| spool.spans())
    }

    /// What became of the spans handed to it so far.
    pub fn delivered(&self) -> OtlpCounters {
        OtlpCounters {
            spans_exported: ExportCounters::get(&self.counters.exported),
            spans_failed: ExportCounters::get(&self.counters.failed),
            spans_spooled: ExportCounters::get(&self.counters.spooled),
            spans_dropped: ExportCounters::get(&self.counters.dropped),
            spans_waiting: self.spooled_now(),
        }
    }
}

/// Writes the batches the delivery task had no room for to the spool, off
/// the tracing thread.
async fn spooler(
    mut spilled: mpsc::Receiver<(u32, ExportTraceServiceRequest)>,
    spool: Arc<Mutex<Spool>>,
    counters: Arc<ExportCounters>,
) {
    while let Some((count, request)) = spilled.recv().await {
        let (spool, counters) = (spool.clone(), counters.clone());
        let _ = tokio::task::spawn_blocking(move || spool_batch(&spool, &counters, count, &request)).await;
    }
}

fn spool_batch(spool: &Mutex<Spool>, counters: &ExportCounters, count: u32, request: &ExportTraceServiceRequest) {
    let payload = gzip(&request.encode_to_vec());
    let Ok(mut spool) = spool.lock() else { return };
    match spool.push(count, &payload) {
        Ok(dropped) => {
            ExportCounters::add(&counters.spooled, u64::from(count));
            ExportCounters::add(&counters.dropped, dropped);
        }
        Err(error) => {
            tracing::warn!(%error, "spooling spans failed; they are lost");
            ExportCounters::add(&counters.dropped, u64::from(count));
        }
    }
}

struct Delivery {
    traces: Transport,
    metrics: Transport,
    spool: Arc<Mutex<Spool>>,
    counters: Arc<ExportCounters>,
    healthy: bool,
}

impl Delivery {
    async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        let mut backoff = FIRST_BACKOFF;
        let mut retry_at = tokio::time::Instant::now();
        loop {
            let spool_waiting = !self.spool_is_empty();
            tokio::select! {
                command = receiver.recv() => match command {
                    Some(Command::Spans { count, request }) => self.deliver(count, request).await,
                    Some(Command::Metrics(request)) => self.deliver_metrics(request).await,
                    Some(Command::Finish(done)) => {
                        while let Ok(command) = receiver.try_recv() {
                            match command {
                                Command::Spans { count, request } => self.deliver(count, request).await,
                                Command::Metrics(request) => self.deliver_metrics(request).await,
                                Command::Finish(_) => {}
                            }
                        }
                        self.drain_spool().await;
                        let _ = done.send(());
                    }
                    None => return,
                },
                () = tokio::time::sleep_until(retry_at), if spool_waiting => {
                    if self.drain_spool().await {
                        backoff = FIRST_BACKOFF;
                    } else {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    retry_at = tokio::time::Instant::now() + backoff;
                }
            }
        }
    }

    /// Says once per outage that spans now go to the spool.
    fn mark_unreachable(&mut self, reason: &str) {
        if self.healthy {
            let spool = self.spool.lock().map(|s| s.path().display().to_string()).unwrap_or_default();
            notice!(
                "OTLP: cannot deliver to {}: {reason}; keeping spans in {spool}",
                pytrace_core::redact::endpoint_for_display(self.traces.url())
            );
        }
        self.healthy = false;
    }

    fn spool_is_empty(&self) -> bool {
        self.spool.lock().map_or(true, |spool| spool.is_empty())
    }

    async fn deliver(&mut self, count: u32, request: ExportTraceServiceRequest) {
        if !self.healthy || !self.spool_is_empty() {
            spool_batch(&self.spool, &self.counters, count, &request);
            return;
        }
        match self.traces.send_traces(request.clone()).await {
            Ok(rejected) => self.delivered(u64::from(count), rejected),
            Err(SendError::Retryable(reason)) => {
                self.mark_unreachable(&reason);
                spool_batch(&self.spool, &self.counters, count, &request);
            }
            Err(SendError::Permanent(reason)) => {
                tracing::warn!(%reason, "the collector refused {count} spans");
                ExportCounters::add(&self.counters.failed, u64::from(count));
            }
        }
    }

    /// The collector took `count` spans and rejected `rejected` of them.
    fn delivered(&self, count: u64, rejected: u64) {
        let rejected = rejected.min(count);
        ExportCounters::add(&self.counters.exported, count - rejected);
        ExportCounters::add(&self.counters.failed, rejected);
    }

    async fn deliver_metrics(&mut self, request: ExportMetricsServiceRequest) {
        if let Err(error) = self.metrics.send_metrics(request).await {
            tracing::debug!(%error, "metrics export failed; the next export carries the totals");
            ExportCounters::add(&self.counters.metric_exports_failed, 1);
        }
    }

    /// Sends spooled batches, oldest first, until the spool is empty (true)
    /// or the collector fails (false).
    async fn drain_spool(&mut self) -> bool {
        loop {
            let oldest = match self.spool.lock() {
                Ok(mut spool) => spool.oldest(),
                Err(_) => return false,
            };
            let batch = match oldest {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    if !self.healthy {
                        notice!(
                            "OTLP: the collector at {} is back; the spool is sent",
                            pytrace_core::redact::endpoint_for_display(self.traces.url())
                        );
                        self.healthy = true;
                    }
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading the spool failed");
                    return false;
                }
            };
            let request = gunzip(&batch.payload).and_then(|bytes| ExportTraceServiceRequest::decode(&*bytes).ok());
            let outcome = match request {
                Some(request) => self.traces.send_traces(request).await,
                None => Err(SendError::Permanent("a spooled batch is unreadable".into())),
            };
            match outcome {
                Ok(rejected) => self.delivered(u64::from(batch.spans), rejected),
                Err(SendError::Retryable(reason)) => {
                    self.mark_unreachable(&reason);
                    return false;
                }
                Err(SendError::Permanent(reason)) => {
                    tracing::warn!(%reason, "the collector refused {} spooled spans", batch.spans);
                    ExportCounters::add(&self.counters.failed, u64::from(batch.spans));
                }
            }
            if let Ok(mut spool) = self.spool.lock()
                && let Err(error) = spool.remove(batch.key)
            {
                tracing::warn!(%error, "removing a delivered batch from the spool failed");
                return false;
            }
        }
    }
}
