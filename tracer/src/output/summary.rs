//! What a tracing session saw, for the closing summary: counts from the
//! pipeline and the kernel, and per-endpoint latency figures.

use std::collections::BTreeMap;

use crate::probes::{MapUsage, ProgramRunTime};
use crate::span::serving::ServingCounters;
use crate::span::{AttrValue, Span, SpanKind, Status, semconv as sc};

/// Counters reported when tracing ends.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub spans_emitted: u64,
    pub spans_incomplete: u64,
    /// Spans by kind: an HTTP or LLM call made, a request served, a traced function.
    pub spans_client: u64,
    pub spans_server: u64,
    pub spans_internal: u64,
    /// LLM calls whose body could not be read (`pytrace.body.undecodable`).
    pub bodies_undecodable: u64,
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
    /// Runs and time in each kernel program (`--program-stats`), host-wide.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kernel_programs: BTreeMap<String, ProgramRunTime>,
    /// Use and limits of the kernel maps holding per-process state.
    pub kernel_maps: Vec<MapUsage>,
    /// OTLP delivery, when exporting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpCounters>,
}

/// What became of the spans sent over OTLP.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpCounters {
    /// Accepted by the collector (including spans from the spool).
    pub spans_exported: u64,
    /// Refused by the collector for good.
    pub spans_failed: u64,
    /// Written to the spool while the collector was unreachable.
    pub spans_spooled: u64,
    /// Dropped from a full spool.
    pub spans_dropped: u64,
    /// Still in the spool at exit, for the next run to send.
    pub spans_waiting: u64,
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
        quantile(&self.durations_ns, q)
    }
}

/// Per (provider, model) figures for LLM calls.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelStats {
    pub provider: String,
    pub model: String,
    pub calls: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Some of the token counts are estimates.
    pub tokens_estimated: bool,
    /// USD; `None` when the model has no price.
    pub cost: Option<f64>,
    #[serde(skip)]
    pub durations_ns: Vec<u64>,
    #[serde(skip)]
    pub ttfts_ns: Vec<u64>,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub ttft_p50_s: Option<f64>,
    pub ttft_p95_s: Option<f64>,
}

impl ModelStats {
    /// Fills the quantile fields from the samples.
    fn settle(&mut self) {
        self.latency_p50_s = quantile(&self.durations_ns, 0.5) as f64 / 1e9;
        self.latency_p95_s = quantile(&self.durations_ns, 0.95) as f64 / 1e9;
        let ttft = |q| (!self.ttfts_ns.is_empty()).then(|| quantile(&self.ttfts_ns, q) as f64 / 1e9);
        self.ttft_p50_s = ttft(0.5);
        self.ttft_p95_s = ttft(0.95);
    }
}

/// The `q`-quantile (0..=1) of `samples`, nearest-rank; 0 when empty.
pub fn quantile(samples: &[u64], q: f64) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => 0,
        n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

/// Per served route (`POST /ask`): what its requests cost in LLM calls.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RouteStats {
    pub route: String,
    pub requests: u64,
    pub llm_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// USD; `None` while no call of it had a price.
    pub cost: Option<f64>,
}

impl RouteStats {
    /// Cost per request, when known.
    pub fn cost_per_request(&self) -> Option<f64> {
        self.cost.filter(|_| self.requests > 0).map(|cost| cost / self.requests as f64)
    }
}

#[derive(Clone, Default)]
pub struct Summary {
    pub counters: Counters,
    pub endpoints: BTreeMap<(String, String), EndpointStats>,
    pub models: BTreeMap<(String, String), ModelStats>,
    /// Per served route, by `METHOD /route`.
    pub routes: BTreeMap<String, RouteStats>,
    /// How calls were placed under served requests.
    pub serving: ServingCounters,
}

impl Summary {
    /// Per-model figures with their quantiles computed.
    pub fn model_stats(&self) -> Vec<ModelStats> {
        self.models
            .values()
            .cloned()
            .map(|mut m| {
                m.settle();
                m
            })
            .collect()
    }

    pub fn record(&mut self, span: &Span) {
        self.record_model(span);
        self.record_route(span);
        self.counters.spans_emitted += 1;
        match span.kind {
            SpanKind::Client => self.counters.spans_client += 1,
            SpanKind::Server => self.counters.spans_server += 1,
            SpanKind::Internal => self.counters.spans_internal += 1,
        }
        if span.attributes.get(sc::PYTRACE_INCOMPLETE).is_some() {
            self.counters.spans_incomplete += 1;
        }
        if span.attributes.get(sc::PYTRACE_BODY_UNDECODABLE).is_some() {
            self.counters.bodies_undecodable += 1;
        }
        let Some(method) = span.attributes.str(sc::HTTP_REQUEST_METHOD).map(str::to_owned) else {
            return; // a function span: no endpoint
        };
        let server = span.attributes.str(sc::SERVER_ADDRESS).unwrap_or("?").to_owned();
        let stats = self.endpoints.entry((method, server)).or_default();
        stats.calls += 1;
        if matches!(span.status, Status::Error { .. }) {
            stats.errors += 1;
        }
        stats.durations_ns.push(span.duration_ns());
    }

    /// A served request counts for its route; an LLM call made while
    /// serving one counts its tokens and cost there.
    fn record_route(&mut self, span: &Span) {
        let a = &span.attributes;
        let route = if span.kind == SpanKind::Server {
            let (Some(method), Some(route)) = (a.str(sc::HTTP_REQUEST_METHOD), a.str(sc::HTTP_ROUTE)) else { return };
            format!("{method} {route}")
        } else if a.get(sc::GEN_AI_PROVIDER_NAME).is_some()
            && let Some(route) = a.str(sc::PYTRACE_SERVER_ROUTE)
        {
            route.to_owned()
        } else {
            return;
        };
        let stats = self.routes.entry(route.clone()).or_insert_with(|| RouteStats { route, ..RouteStats::default() });
        if span.kind == SpanKind::Server {
            stats.requests += 1;
            return;
        }
        stats.llm_calls += 1;
        stats.input_tokens += a.int(sc::GEN_AI_USAGE_INPUT_TOKENS).unwrap_or(0) as u64;
        stats.output_tokens += a.int(sc::GEN_AI_USAGE_OUTPUT_TOKENS).unwrap_or(0) as u64;
        if let Some(AttrValue::F64(cost)) = a.get(sc::GEN_AI_USAGE_COST) {
            *stats.cost.get_or_insert(0.0) += cost;
        }
    }

    /// Routes whose requests made LLM calls.
    pub fn spending_routes(&self) -> impl Iterator<Item = &RouteStats> {
        self.routes.values().filter(|r| r.llm_calls > 0)
    }

    fn record_model(&mut self, span: &Span) {
        let a = &span.attributes;
        let Some(provider) = a.str(sc::GEN_AI_PROVIDER_NAME) else { return };
        let model = a.str(sc::GEN_AI_REQUEST_MODEL).or_else(|| a.str(sc::GEN_AI_RESPONSE_MODEL)).unwrap_or("?");
        let key = (provider.to_owned(), model.to_owned());
        let stats = self.models.entry(key).or_insert_with(|| ModelStats {
            provider: provider.to_owned(),
            model: model.to_owned(),
            ..ModelStats::default()
        });
        stats.calls += 1;
        if matches!(span.status, Status::Error { .. }) {
            stats.errors += 1;
        }
        stats.input_tokens += a.int(sc::GEN_AI_USAGE_INPUT_TOKENS).unwrap_or(0) as u64;
        stats.output_tokens += a.int(sc::GEN_AI_USAGE_OUTPUT_TOKENS).unwrap_or(0) as u64;
        stats.tokens_estimated |= a.get(sc::PYTRACE_USAGE_ESTIMATED).is_some();
        if let Some(AttrValue::F64(cost)) = a.get(sc::GEN_AI_USAGE_COST) {
            *stats.cost.get_or_insert(0.0) += cost;
        }
        stats.durations_ns.push(span.duration_ns());
        if let Some(AttrValue::F64(ttft)) = a.get(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
            stats.ttfts_ns.push((ttft * 1e9) as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_llm_spend_per_served_route() {
        let span = |kind, attributes: &[(&'static str, AttrValue)]| {
            let mut span = Span::placeholder();
            span.kind = kind;
            for (key, value) in attributes {
                span.attributes.set(key, value.clone());
            }
            span
        };
        let request = span(
            SpanKind::Server,
            &[
                (sc::HTTP_REQUEST_METHOD, AttrValue::Str("POST".into())),
                (sc::HTTP_ROUTE, AttrValue::Str("/ask".into())),
            ],
        );
        let call = span(
            SpanKind::Client,
            &[
                (sc::GEN_AI_PROVIDER_NAME, AttrValue::Str("openai".into())),
                (sc::PYTRACE_SERVER_ROUTE, AttrValue::Str("POST /ask".into())),
                (sc::GEN_AI_USAGE_INPUT_TOKENS, AttrValue::Int(10)),
                (sc::GEN_AI_USAGE_OUTPUT_TOKENS, AttrValue::Int(5)),
                (sc::GEN_AI_USAGE_COST, AttrValue::F64(0.002)),
            ],
        );
        let mut summary = Summary::default();
        for span in [&request, &request, &call, &call, &call] {
            summary.record(span);
        }
        let routes: Vec<&RouteStats> = summary.spending_routes().collect();
        assert_eq!(routes.len(), 1);
        let ask = routes[0];
        assert_eq!((ask.route.as_str(), ask.requests, ask.llm_calls, ask.input_tokens), ("POST /ask", 2, 3, 30));
        assert!((ask.cost_per_request().unwrap() - 0.003).abs() < 1e-12);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let stats = EndpointStats { calls: 4, errors: 0, durations_ns: vec![40, 10, 30, 20] };
        assert_eq!(stats.quantile_ns(0.5), 20);
        assert_eq!(stats.quantile_ns(0.95), 40);
        assert_eq!(EndpointStats::default().quantile_ns(0.5), 0);
    }
}
