//! What the spans of a session add up to, for the closing summary: per
//! endpoint, model and served route, and a tally by kind (pytrace's own
//! counts are `crate::stats`).

use std::collections::BTreeMap;

use pytrace_core::correlate::serving::ServingCounters;
use pytrace_core::model::{AttrValue, Span, SpanKind, Status, semconv as sc};

/// The spans that went out, tallied as they pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanTally {
    pub emitted: u64,
    pub incomplete: u64,
    /// By kind: an HTTP or LLM call made, a request served, a traced function.
    pub client: u64,
    pub server: u64,
    pub internal: u64,
    /// LLM calls whose body could not be read (`pytrace.body.undecodable`).
    pub bodies_undecodable: u64,
    /// Calls counted in an `(other)` row: a summary table was full.
    pub summary_overflow: u64,
}

/// Per (method, server) figures.
#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    pub calls: u64,
    pub errors: u64,
    pub durations: Durations,
}

impl EndpointStats {
    /// The `q`-quantile (0..=1) of durations.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        self.durations.quantile_ns(q)
    }
}

/// Durations kept for their percentiles in bounded memory, however many
/// calls there are: a DDSketch (1 % relative accuracy, at most 2,048 bins)
/// rather than every value — a long-running agent's summary would
/// otherwise grow with every call.
#[derive(Clone)]
pub struct Durations(sketches_ddsketch::DDSketch);

impl std::fmt::Debug for Durations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Durations({} values)", self.0.count())
    }
}

impl Default for Durations {
    fn default() -> Self {
        Self(sketches_ddsketch::DDSketch::new(sketches_ddsketch::Config::defaults()))
    }
}

impl PartialEq for Durations {
    fn eq(&self, other: &Self) -> bool {
        self.0.count() == other.0.count() && self.0.sum() == other.0.sum()
    }
}

impl Durations {
    pub fn add(&mut self, ns: u64) {
        self.0.add(ns as f64);
    }

    pub fn is_empty(&self) -> bool {
        self.0.count() == 0
    }

    /// The `q`-quantile (0..=1), within 1 %; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        self.0.quantile(q).ok().flatten().map_or(0, |v| v.round().max(0.0) as u64)
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
    pub durations: Durations,
    #[serde(skip)]
    pub ttfts: Durations,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub ttft_p50_s: Option<f64>,
    pub ttft_p95_s: Option<f64>,
}

impl ModelStats {
    /// Fills the quantile fields from the samples.
    fn settle(&mut self) {
        self.latency_p50_s = self.durations.quantile_ns(0.5) as f64 / 1e9;
        self.latency_p95_s = self.durations.quantile_ns(0.95) as f64 / 1e9;
        let ttft = |q| (!self.ttfts.is_empty()).then(|| self.ttfts.quantile_ns(q) as f64 / 1e9);
        self.ttft_p50_s = ttft(0.5);
        self.ttft_p95_s = ttft(0.95);
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
    pub spans: SpanTally,
    pub endpoints: BTreeMap<(String, String), EndpointStats>,
    pub models: BTreeMap<(String, String), ModelStats>,
    /// Per served route, by `METHOD /route`.
    pub routes: BTreeMap<String, RouteStats>,
    /// How calls were placed under served requests.
    pub serving: ServingCounters,
}

/// Rows each summary table keeps (endpoints, models, routes): hosts, model
/// names and routes come from the traffic, so a hostile or unruly one must
/// not grow them without end. Beyond, calls add up in one `(other)` row,
/// and each is counted (`summary_overflow`).
pub const MAX_SUMMARY_KEYS: usize = 1_000;

/// The row that takes the calls beyond [`MAX_SUMMARY_KEYS`].
pub const OTHER: &str = "(other)";

fn bounded_key<K: Ord, V>(table: &BTreeMap<K, V>, key: K, other: impl FnOnce() -> K, tally: &mut SpanTally) -> K {
    if table.len() < MAX_SUMMARY_KEYS || table.contains_key(&key) {
        return key;
    }
    tally.summary_overflow += 1;
    other()
}

impl super::SpanSink for Summary {
    fn span(&mut self, span: &Span) {
        self.record(span);
    }
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
        self.spans.emitted += 1;
        match span.kind {
            SpanKind::Client => self.spans.client += 1,
            SpanKind::Server => self.spans.server += 1,
            SpanKind::Internal => self.spans.internal += 1,
        }
        if span.attributes.get(sc::PYTRACE_INCOMPLETE).is_some() {
            self.spans.incomplete += 1;
        }
        if span.attributes.get(sc::PYTRACE_BODY_UNDECODABLE).is_some() {
            self.spans.bodies_undecodable += 1;
        }
        let Some(method) = span.attributes.str(sc::HTTP_REQUEST_METHOD).map(str::to_owned) else {
            return; // a function span: no endpoint
        };
        let server = span.attributes.str(sc::SERVER_ADDRESS).unwrap_or("?").to_owned();
        let key = bounded_key(&self.endpoints, (method, server), || (OTHER.into(), OTHER.into()), &mut self.spans);
        let stats = self.endpoints.entry(key).or_default();
        stats.calls += 1;
        if matches!(span.status, Status::Error { .. }) {
            stats.errors += 1;
        }
        stats.durations.add(span.duration_ns());
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
        let route = bounded_key(&self.routes, route, || OTHER.to_owned(), &mut self.spans);
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
        let key = bounded_key(
            &self.models,
            (provider.to_owned(), model.to_owned()),
            || (OTHER.into(), OTHER.into()),
            &mut self.spans,
        );
        let stats = self.models.entry(key.clone()).or_insert_with(|| ModelStats {
            provider: key.0,
            model: key.1,
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
        stats.durations.add(span.duration_ns());
        if let Some(AttrValue::F64(ttft)) = a.get(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
            stats.ttfts.add((ttft * 1e9) as u64);
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
    fn quantiles_come_from_the_sketch_within_its_accuracy() {
        let mut stats = EndpointStats::default();
        for ms in (1..=1000).rev() {
            stats.durations.add(ms * 1_000_000);
        }
        // Within the sketch's 1 % (and one rank).
        let near = |value: u64, expected: u64| value.abs_diff(expected) * 100 <= expected * 2;
        assert!(near(stats.quantile_ns(0.5), 500_000_000), "{}", stats.quantile_ns(0.5));
        assert!(near(stats.quantile_ns(0.95), 950_000_000), "{}", stats.quantile_ns(0.95));
        assert_eq!(EndpointStats::default().quantile_ns(0.5), 0);
    }

    #[test]
    fn tables_keep_a_bounded_number_of_rows() {
        let mut summary = Summary::default();
        for i in 0..MAX_SUMMARY_KEYS + 50 {
            let mut span = Span::placeholder();
            span.kind = SpanKind::Client;
            span.attributes.set(sc::HTTP_REQUEST_METHOD, "GET");
            span.attributes.set(sc::SERVER_ADDRESS, format!("host-{i}.example"));
            summary.record(&span);
        }
        assert_eq!(summary.endpoints.len(), MAX_SUMMARY_KEYS + 1, "the full table and one (other) row");
        assert_eq!(summary.endpoints[&(OTHER.to_owned(), OTHER.to_owned())].calls, 50);
        assert_eq!(summary.spans.summary_overflow, 50);
    }

    #[test]
    fn percentiles_take_bounded_memory_whatever_the_number_of_calls() {
        let mut durations = Durations::default();
        for i in 0..1_000_000_u64 {
            durations.add(1_000 + (i * 7919) % 10_000_000_000);
        }
        assert!(durations.0.length() <= 2_048, "bins: {}", durations.0.length());
        // The values are 1,000 + i × 7,919 for i < 1,000,000: the median is near i = 500,000.
        let p50 = durations.quantile_ns(0.5);
        assert!(p50.abs_diff(500_000 * 7_919) * 100 <= 500_000 * 7_919, "{p50}");
    }
}
