//! The measurements finished spans carry, as the OpenTelemetry conventions
//! define them — `gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
//! `gen_ai.client.operation.time_to_first_chunk` and
//! `http.client.request.duration`, explicit-bucket histograms with the
//! conventions' units and boundaries — plus the cost of LLM calls, summed.
//! Cumulative since pytrace started, one series per (instrument, process,
//! attributes). Pure: spans in, series out; `otlp::metrics` and
//! `metrics::prometheus` encode them.

use std::collections::BTreeMap;
use std::sync::Arc;

use pytrace_core::model::semconv as sc;
use pytrace_core::model::{AttrValue, Resource, Span, SpanKind};

pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
pub const GEN_AI_SECONDS_BUCKETS: &[f64] =
    &[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
pub const HTTP_SECONDS_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Instrument {
    TokenUsage,
    OperationDuration,
    TimeToFirstChunk,
    HttpClientDuration,
    /// US dollars spent on LLM calls (a counter: only its sum is used).
    Cost,
}

impl Instrument {
    pub const ALL: [Self; 5] =
        [Self::TokenUsage, Self::OperationDuration, Self::TimeToFirstChunk, Self::HttpClientDuration, Self::Cost];

    pub fn name(self) -> &'static str {
        match self {
            Self::TokenUsage => "gen_ai.client.token.usage",
            Self::OperationDuration => "gen_ai.client.operation.duration",
            Self::TimeToFirstChunk => "gen_ai.client.operation.time_to_first_chunk",
            Self::HttpClientDuration => "http.client.request.duration",
            Self::Cost => "pytrace.gen_ai.client.cost",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Self::TokenUsage => "{token}",
            Self::Cost => "USD",
            _ => "s",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::TokenUsage => "Number of input and output tokens used.",
            Self::OperationDuration => "GenAI operation duration.",
            Self::TimeToFirstChunk => "Time to receive the first chunk of a streaming response.",
            Self::HttpClientDuration => "Duration of HTTP client requests.",
            Self::Cost => "Cost of LLM calls in US dollars, from the price table.",
        }
    }

    /// Histogram boundaries; empty for the cost counter.
    pub fn buckets(self) -> &'static [f64] {
        match self {
            Self::TokenUsage => TOKEN_BUCKETS,
            Self::OperationDuration | Self::TimeToFirstChunk => GEN_AI_SECONDS_BUCKETS,
            Self::HttpClientDuration => HTTP_SECONDS_BUCKETS,
            Self::Cost => &[],
        }
    }

    pub fn is_histogram(self) -> bool {
        self != Self::Cost
    }
}

/// Span attributes copied onto GenAI measurements.
const GEN_AI_ATTRIBUTES: &[&str] = &[
    sc::GEN_AI_OPERATION_NAME,
    sc::GEN_AI_PROVIDER_NAME,
    sc::GEN_AI_REQUEST_MODEL,
    sc::GEN_AI_RESPONSE_MODEL,
    sc::SERVER_ADDRESS,
    sc::SERVER_PORT,
    // The served route whose request made the call: tokens and cost per endpoint.
    sc::PYTRACE_SERVER_ROUTE,
];
/// Span attributes copied onto HTTP client measurements.
const HTTP_ATTRIBUTES: &[&str] = &[
    sc::HTTP_REQUEST_METHOD,
    sc::HTTP_RESPONSE_STATUS_CODE,
    sc::SERVER_ADDRESS,
    sc::SERVER_PORT,
    sc::NETWORK_PROTOCOL_VERSION,
];

/// A measurement's attributes, in a fixed order.
pub type SeriesAttributes = Vec<(&'static str, AttrValue)>;

/// Cumulative explicit-bucket histogram: `counts[i]` values fell at or
/// below `buckets[i]` and above the bucket before; the last count is the overflow.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Histogram {
    fn record(&mut self, buckets: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len() + 1];
            (self.min, self.max) = (value, value);
        }
        let bucket = buckets.iter().position(|bound| value <= *bound).unwrap_or(buckets.len());
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds `other`'s counts (same boundaries) to these.
    pub fn merge(&mut self, other: &Self) {
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// One time series: instrument, the process's resource, the measurement's attributes.
type SeriesKey = (Instrument, usize, String);

/// One series as the encoders see it.
pub struct Series<'a> {
    pub instrument: Instrument,
    pub resource: &'a Arc<Resource>,
    pub attributes: &'a SeriesAttributes,
    pub histogram: &'a Histogram,
}

/// Series kept at most: attributes come from the traffic (hosts, models,
/// routes), so their combinations are capped as the OpenTelemetry SDK caps
/// them — measurements beyond go to one series per instrument and process
/// marked `otel.metric.overflow=true`, and are counted.
pub const MAX_SERIES: usize = 2_000;

/// The attribute of the overflow series.
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

#[derive(Default)]
pub struct Metrics {
    resources: Vec<Arc<Resource>>,
    series: BTreeMap<SeriesKey, (SeriesAttributes, Histogram)>,
    /// Measurements that went to an overflow series.
    overflowed: u64,
}

impl Metrics {
    /// Takes the measurements a finished span carries.
    pub fn record(&mut self, span: &Span) {
        if span.kind != SpanKind::Client {
            return;
        }
        let resource = self.resource_index(&span.resource);
        let seconds = span.duration_ns() as f64 / 1e9;
        let error = span.attributes.get(sc::ERROR_TYPE);
        self.observe(
            Instrument::HttpClientDuration,
            resource,
            series_attributes(span, HTTP_ATTRIBUTES, error, None),
            seconds,
        );
        if span.attributes.get(sc::GEN_AI_OPERATION_NAME).is_none() {
            return;
        }
        let gen_ai = |token_type| series_attributes(span, GEN_AI_ATTRIBUTES, error, token_type);
        self.observe(Instrument::OperationDuration, resource, gen_ai(None), seconds);
        if let Some(AttrValue::F64(first_chunk)) = span.attributes.get(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
            self.observe(Instrument::TimeToFirstChunk, resource, gen_ai(None), *first_chunk);
        }
        for (attribute, token_type) in
            [(sc::GEN_AI_USAGE_INPUT_TOKENS, "input"), (sc::GEN_AI_USAGE_OUTPUT_TOKENS, "output")]
        {
            if let Some(tokens) = span.attributes.int(attribute) {
                self.observe(Instrument::TokenUsage, resource, gen_ai(Some(token_type)), tokens as f64);
            }
        }
        if let Some(AttrValue::F64(cost)) = span.attributes.get(sc::GEN_AI_USAGE_COST) {
            self.observe(Instrument::Cost, resource, gen_ai(None), *cost);
        }
    }

    /// Every series, by instrument, then process, then attributes.
    pub fn series(&self) -> impl Iterator<Item = Series<'_>> {
        self.series.iter().map(|((instrument, resource, _), (attributes, histogram))| Series {
            instrument: *instrument,
            resource: &self.resources[*resource],
            attributes,
            histogram,
        })
    }

    /// The processes measured, in the order first seen.
    pub fn resources(&self) -> &[Arc<Resource>] {
        &self.resources
    }

    fn resource_index(&mut self, resource: &Arc<Resource>) -> usize {
        match self.resources.iter().position(|r| Arc::ptr_eq(r, resource) || **r == **resource) {
            Some(index) => index,
            None => {
                self.resources.push(resource.clone());
                self.resources.len() - 1
            }
        }
    }

    /// Measurements that went to an overflow series so far.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    fn observe(&mut self, instrument: Instrument, resource: usize, attributes: SeriesAttributes, value: f64) {
        let mut key = (instrument, resource, format!("{attributes:?}"));
        let mut attributes = attributes;
        if self.series.len() >= MAX_SERIES && !self.series.contains_key(&key) {
            attributes = vec![(OVERFLOW_ATTRIBUTE, AttrValue::Bool(true))];
            key = (instrument, resource, format!("{attributes:?}"));
            self.overflowed += 1;
        }
        let (_, histogram) = self.series.entry(key).or_insert_with(|| (attributes, Histogram::default()));
        histogram.record(instrument.buckets(), value);
    }
}

/// The measurement's attributes: `names` copied from the span, `error.type`
/// when the call failed, `gen_ai.token.type` for token counts.
fn series_attributes(
    span: &Span,
    names: &[&'static str],
    error: Option<&AttrValue>,
    token_type: Option<&str>,
) -> SeriesAttributes {
    let mut attributes: SeriesAttributes =
        names.iter().filter_map(|name| span.attributes.get(name).map(|v| (*name, v.clone()))).collect();
    if let Some(error) = error {
        attributes.push((sc::ERROR_TYPE, error.clone()));
    }
    if let Some(token_type) = token_type {
        attributes.push(("gen_ai.token.type", AttrValue::from(token_type)));
    }
    if let Some(AttrValue::Str(url)) = span.attributes.get(sc::URL_FULL)
        && names == HTTP_ATTRIBUTES
    {
        let scheme = if url.starts_with("https://") { "https" } else { "http" };
        attributes.push((sc::URL_SCHEME, AttrValue::from(scheme)));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use pytrace_core::model::Span;

    use super::*;

    #[test]
    fn series_beyond_the_cap_go_to_one_overflow_series() {
        let mut metrics = Metrics::default();
        let resource = Arc::new(Resource::default());
        for i in 0..MAX_SERIES + 10 {
            let mut span = Span::placeholder();
            span.kind = SpanKind::Client;
            span.resource = resource.clone();
            span.attributes.set(sc::HTTP_REQUEST_METHOD, "GET");
            span.attributes.set(sc::SERVER_ADDRESS, format!("host-{i}"));
            metrics.record(&span);
        }
        assert_eq!(metrics.series().count(), MAX_SERIES + 1);
        assert_eq!(metrics.overflowed(), 10);
        let overflow = metrics.series().find(|s| s.attributes.iter().any(|(k, _)| *k == OVERFLOW_ATTRIBUTE)).unwrap();
        assert_eq!(overflow.histogram.count, 10);
    }
}
