//! What a tracing session saw, for the closing summary: counts from the
//! pipeline and the kernel, and per-endpoint latency figures.

use std::collections::BTreeMap;

use crate::span::{Span, Status, semconv as sc};

/// Counters reported when tracing ends.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub spans_emitted: u64,
    pub spans_incomplete: u64,
    pub events_received: u64,
    pub events_lost: u64,
    pub events_undecodable: u64,
    pub calls_truncated: u64,
    pub bytes_truncated: u64,
    pub read_errors: u64,
    /// Uprobe hits by the traced processes.
    pub uprobe_hits: u64,
    /// Syscall tracepoint hits by the traced processes.
    pub tracepoint_hits: u64,
}

/// Per (method, server) figures.
#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    pub calls: u64,
    pub errors: u64,
    pub durations_ns: Vec<u64>,
}

impl EndpointStats {
    /// The `q`-quantile (0..=1) of durations, nearest-rank.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let mut sorted = self.durations_ns.clone();
        sorted.sort_unstable();
        match sorted.len() {
            0 => 0,
            n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
        }
    }
}

#[derive(Default)]
pub struct Summary {
    pub counters: Counters,
    pub endpoints: BTreeMap<(String, String), EndpointStats>,
}

impl Summary {
    pub fn record(&mut self, span: &Span) {
        self.counters.spans_emitted += 1;
        if span.attributes.get(sc::PYTRACE_INCOMPLETE).is_some() {
            self.counters.spans_incomplete += 1;
        }
        let method = span.attributes.str(sc::HTTP_REQUEST_METHOD).unwrap_or("?").to_owned();
        let server = span.attributes.str(sc::SERVER_ADDRESS).unwrap_or("?").to_owned();
        let stats = self.endpoints.entry((method, server)).or_default();
        stats.calls += 1;
        if matches!(span.status, Status::Error { .. }) {
            stats.errors += 1;
        }
        stats.durations_ns.push(span.duration_ns());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let stats = EndpointStats { calls: 4, errors: 0, durations_ns: vec![40, 10, 30, 20] };
        assert_eq!(stats.quantile_ns(0.5), 20);
        assert_eq!(stats.quantile_ns(0.95), 40);
        assert_eq!(EndpointStats::default().quantile_ns(0.5), 0);
    }
}
