//! The user-space limits that keep pytrace's memory bounded whatever the
//! traffic, and how often each was reached. Every cap here drops or forgets
//! something; the counts reach the summary, `/metrics` and OTLP, so nothing
//! is lost silently. (The kernel maps' limits are counted apart, in
//! `probes::ledger`; summary and metric tables count their `(other)` rows.)

/// How often each limit was reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LimitCounters {
    /// Connections forgotten after [`crate::tracker::IDLE_TIMEOUT_NS`]
    /// without traffic (their close was never seen).
    pub connections_idle_evicted: u64,
    /// Connections forgotten because [`crate::tracker::MAX_CONNECTIONS`]
    /// were tracked: the least recently active go first.
    pub connections_full_evicted: u64,
    /// Requests reported incomplete because too many awaited responses on
    /// one connection.
    pub exchanges_evicted: u64,
    /// Body reads whose arrival time was not kept (a body read in more than
    /// `http::body::MAX_ARRIVALS` pieces; only early arrivals time the first token).
    pub body_arrivals_dropped: u64,
    /// Times a process's cache of Python code objects was emptied to stay
    /// within its byte budget.
    pub code_cache_resets: u64,
}

impl LimitCounters {
    /// Each limit by name, for reports and metrics.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("connections_idle_evicted", self.connections_idle_evicted),
            ("connections_full_evicted", self.connections_full_evicted),
            ("exchanges_evicted", self.exchanges_evicted),
            ("body_arrivals_dropped", self.body_arrivals_dropped),
            ("code_cache_resets", self.code_cache_resets),
        ]
    }

    pub fn any(&self) -> bool {
        self.named().iter().any(|(_, count)| *count > 0)
    }
}
