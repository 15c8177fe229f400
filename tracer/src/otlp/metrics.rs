//! Metrics derived from the spans, as the OpenTelemetry conventions define
//! them — `gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
//! `gen_ai.client.operation.time_to_first_chunk` and
//! `http.client.request.duration`, explicit-bucket histograms with the
//! conventions' units and boundaries — plus pytrace's own health counters.
//! Cumulative since pytrace started: a collector that missed an export gets
//! the totals with the next one. Pure: spans in, an export request out.

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};

use super::encode;
use crate::span::semconv as sc;
use crate::span::{AttrValue, Resource, Span, SpanKind};

const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
const GEN_AI_SECONDS_BUCKETS: &[f64] =
    &[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const HTTP_SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Instrument {
    TokenUsage,
    OperationDuration,
    TimeToFirstChunk,
    HttpClientDuration,
}

impl Instrument {
    const ALL: [Self; 4] =
        [Self::TokenUsage, Self::OperationDuration, Self::TimeToFirstChunk, Self::HttpClientDuration];

    fn name(self) -> &'static str {
        match self {
            Self::TokenUsage => "gen_ai.client.token.usage",
            Self::OperationDuration => "gen_ai.client.operation.duration",
            Self::TimeToFirstChunk => "gen_ai.client.operation.time_to_first_chunk",
            Self::HttpClientDuration => "http.client.request.duration",
        }
    }

    fn unit(self) -> &'static str {
        if self == Self::TokenUsage { "{token}" } else { "s" }
    }

    fn description(self) -> &'static str {
        match self {
            Self::TokenUsage => "Number of input and output tokens used.",
            Self::OperationDuration => "GenAI operation duration.",
            Self::TimeToFirstChunk => "Time to receive the first chunk of a streaming response.",
            Self::HttpClientDuration => "Duration of HTTP client requests.",
        }
    }

    fn buckets(self) -> &'static [f64] {
        match self {
            Self::TokenUsage => TOKEN_BUCKETS,
            Self::OperationDuration | Self::TimeToFirstChunk => GEN_AI_SECONDS_BUCKETS,
            Self::HttpClientDuration => HTTP_SECONDS_BUCKETS,
        }
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

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
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
}

/// One time series: instrument, the process's resource, the measurement's attributes.
type SeriesKey = (Instrument, usize, String);

/// pytrace's own counters, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub events_received: u64,
    pub events_lost: u64,
    pub bytes_truncated: u64,
    pub spans_exported: u64,
    pub spans_failed: u64,
    pub spans_spooled: u64,
    pub spans_dropped: u64,
}

#[derive(Default)]
pub struct Metrics {
    resources: Vec<Arc<Resource>>,
    series: BTreeMap<SeriesKey, (Vec<KeyValue>, Histogram)>,
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

    fn observe(&mut self, instrument: Instrument, resource: usize, attributes: Vec<KeyValue>, value: f64) {
        let key = (instrument, resource, format!("{attributes:?}"));
        let (_, histogram) = self.series.entry(key).or_insert_with(|| (attributes, Histogram::default()));
        histogram.record(instrument.buckets(), value);
    }

    /// The export request: every series since `start_unix_ns` up to
    /// `now_unix_ns`, per process, and pytrace's health under `own_resource`.
    pub fn request(
        &self,
        health: &Health,
        own_resource: &Resource,
        start_unix_ns: u64,
        now_unix_ns: u64,
    ) -> ExportMetricsServiceRequest {
        let mut resource_metrics = Vec::new();
        for (index, resource) in self.resources.iter().enumerate() {
            let metrics: Vec<Metric> = Instrument::ALL
                .iter()
                .filter_map(|instrument| {
                    let points: Vec<HistogramDataPoint> = self
                        .series
                        .iter()
                        .filter(|((i, r, _), _)| i == instrument && *r == index)
                        .map(|(_, (attributes, histogram))| HistogramDataPoint {
                            attributes: attributes.clone(),
                            start_time_unix_nano: start_unix_ns,
                            time_unix_nano: now_unix_ns,
                            count: histogram.count,
                            sum: Some(histogram.sum),
                            bucket_counts: histogram.counts.clone(),
                            explicit_bounds: instrument.buckets().to_vec(),
                            min: Some(histogram.min),
                            max: Some(histogram.max),
                            ..Default::default()
                        })
                        .collect();
                    (!points.is_empty()).then(|| Metric {
                        name: instrument.name().into(),
                        description: instrument.description().into(),
                        unit: instrument.unit().into(),
                        data: Some(metric::Data::Histogram(opentelemetry_proto::tonic::metrics::v1::Histogram {
                            data_points: points,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        })),
                        ..Default::default()
                    })
                })
                .collect();
            if !metrics.is_empty() {
                resource_metrics.push(resource_metrics_of(resource, metrics));
            }
        }
        let counter = |name: &str, unit: &str, description: &str, value: u64| Metric {
            name: name.into(),
            description: description.into(),
            unit: unit.into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    start_time_unix_nano: start_unix_ns,
                    time_unix_nano: now_unix_ns,
                    value: Some(number_data_point::Value::AsInt(i64::try_from(value).unwrap_or(i64::MAX))),
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let own = vec![
            counter("pytrace.events.received", "{event}", "Kernel events received.", health.events_received),
            counter("pytrace.events.lost", "{event}", "Kernel events lost (ring buffer full).", health.events_lost),
            counter("pytrace.bytes.truncated", "By", "Bytes not captured (capture limit).", health.bytes_truncated),
            counter("pytrace.spans.exported", "{span}", "Spans the collector accepted.", health.spans_exported),
            counter("pytrace.spans.failed", "{span}", "Spans the collector rejected for good.", health.spans_failed),
            counter(
                "pytrace.spans.spooled",
                "{span}",
                "Spans written to the spool while the collector was unreachable.",
                health.spans_spooled,
            ),
            counter(
                "pytrace.spans.dropped",
                "{span}",
                "Spooled spans dropped because the spool was full.",
                health.spans_dropped,
            ),
        ];
        resource_metrics.push(resource_metrics_of(own_resource, own));
        ExportMetricsServiceRequest { resource_metrics }
    }
}

fn resource_metrics_of(resource: &Resource, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(encode::resource(resource)),
        scope_metrics: vec![ScopeMetrics { scope: Some(encode::scope()), metrics, ..Default::default() }],
        ..Default::default()
    }
}

/// The measurement's attributes: `names` copied from the span, `error.type`
/// when the call failed, `gen_ai.token.type` for token counts.
fn series_attributes(
    span: &Span,
    names: &[&str],
    error: Option<&AttrValue>,
    token_type: Option<&str>,
) -> Vec<KeyValue> {
    let mut attributes: Vec<KeyValue> =
        names.iter().filter_map(|name| span.attributes.get(name).map(|v| encode::key_value(name, v))).collect();
    if let Some(error) = error {
        attributes.push(encode::key_value(sc::ERROR_TYPE, error));
    }
    if let Some(token_type) = token_type {
        attributes.push(encode::key_value("gen_ai.token.type", &AttrValue::from(token_type)));
    }
    if let Some(AttrValue::Str(url)) = span.attributes.get(sc::URL_FULL)
        && names == HTTP_ATTRIBUTES
    {
        let scheme = if url.starts_with("https://") { "https" } else { "http" };
        attributes.push(encode::key_value(sc::URL_SCHEME, &AttrValue::from(scheme)));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Attributes, SpanId, Status, TraceId};

    fn llm_span(resource: &Arc<Resource>, input: i64, output: i64, seconds: f64) -> Span {
        let mut a = Attributes::default();
        a.set(sc::HTTP_REQUEST_METHOD, "POST");
        a.set(sc::URL_FULL, "https://api.openai.com/v1/chat/completions");
        a.set(sc::SERVER_ADDRESS, "api.openai.com");
        a.set(sc::GEN_AI_OPERATION_NAME, "chat");
        a.set(sc::GEN_AI_PROVIDER_NAME, "openai");
        a.set(sc::GEN_AI_REQUEST_MODEL, "gpt-4o-mini");
        a.set(sc::GEN_AI_USAGE_INPUT_TOKENS, input);
        a.set(sc::GEN_AI_USAGE_OUTPUT_TOKENS, output);
        a.set(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, 0.05);
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            name: "chat gpt-4o-mini".into(),
            kind: SpanKind::Client,
            start_unix_nano: 0,
            end_unix_nano: (seconds * 1e9) as u64,
            status: Status::Unset,
            attributes: a,
            resource: resource.clone(),
        }
    }

    fn histogram<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> &'a [HistogramDataPoint] {
        let metric = request.resource_metrics[0].scope_metrics[0].metrics.iter().find(|m| m.name == name).unwrap();
        match &metric.data {
            Some(metric::Data::Histogram(h)) => &h.data_points,
            other => panic!("{name} is {other:?}"),
        }
    }

    #[test]
    fn llm_spans_feed_the_gen_ai_histograms() {
        let resource = Arc::new(Resource::default());
        let mut metrics = Metrics::default();
        metrics.record(&llm_span(&resource, 10, 300, 0.5));
        metrics.record(&llm_span(&resource, 20, 5, 3.0));
        let request = metrics.request(&Health::default(), &Resource::default(), 1, 2);
        let tokens = histogram(&request, "gen_ai.client.token.usage");
        assert_eq!(tokens.len(), 2, "input and output series");
        let input = tokens.iter().find(|p| format!("{:?}", p.attributes).contains("input")).unwrap();
        assert_eq!((input.count, input.sum, input.min, input.max), (2, Some(30.0), Some(10.0), Some(20.0)));
        assert_eq!(input.explicit_bounds, TOKEN_BUCKETS);
        assert_eq!(input.bucket_counts[2], 1, "10 falls in (4, 16]");
        assert_eq!(input.bucket_counts[3], 1, "20 falls in (16, 64]");
        let duration = &histogram(&request, "gen_ai.client.operation.duration")[0];
        assert_eq!((duration.count, duration.sum), (2, Some(3.5)));
        assert_eq!(histogram(&request, "gen_ai.client.operation.time_to_first_chunk")[0].count, 2);
        let http = &histogram(&request, "http.client.request.duration")[0];
        assert_eq!(http.explicit_bounds, HTTP_SECONDS_BUCKETS);
        assert!(format!("{:?}", http.attributes).contains("https"), "url.scheme");
        let own = request.resource_metrics.last().unwrap();
        assert!(own.scope_metrics[0].metrics.iter().any(|m| m.name == "pytrace.spans.spooled"));
    }
}
