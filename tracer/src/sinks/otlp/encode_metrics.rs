//! The metrics of `metrics::aggregate` and pytrace's own figures (`Stats`) as an OTLP
//! export request: one resource per process with its histograms (and the
//! cost as a sum), pytrace's own instruments under its own resource.
//! Cumulative since pytrace started: a collector that missed an export gets
//! the totals with the next one. Pure: metrics in, an export request out.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use pytrace_core::model::{AttrValue, Resource};

use super::encode_spans as encode;
use crate::sinks::span_metrics::{Instrument, Metrics, Series};
use crate::stats::{InstrumentKind, Stats};

/// The export request: every series since `start_unix_ns` up to
/// `now_unix_ns`, per process, and pytrace's own figures under `own_resource`.
pub fn request(
    metrics: &Metrics,
    stats: &Stats,
    own_resource: &Resource,
    start_unix_ns: u64,
    now_unix_ns: u64,
) -> ExportMetricsServiceRequest {
    let mut resource_metrics = Vec::new();
    for resource in metrics.resources() {
        let of_process: Vec<Series<'_>> =
            metrics.series().filter(|s| std::sync::Arc::ptr_eq(s.resource, resource)).collect();
        let encoded: Vec<Metric> = Instrument::ALL
            .iter()
            .filter_map(|instrument| {
                let series: Vec<&Series<'_>> = of_process.iter().filter(|s| s.instrument == *instrument).collect();
                (!series.is_empty()).then(|| instrument_metric(*instrument, &series, start_unix_ns, now_unix_ns))
            })
            .collect();
        if !encoded.is_empty() {
            resource_metrics.push(resource_metrics_of(resource, encoded));
        }
    }
    let own = stats.instruments().into_iter().map(|metric| {
        let points = metric
            .points
            .iter()
            .map(|(labels, value)| NumberDataPoint {
                attributes: labels.iter().map(|(k, v)| encode::key_value(k, &AttrValue::from(v.as_str()))).collect(),
                start_time_unix_nano: start_unix_ns,
                time_unix_nano: now_unix_ns,
                value: Some(number_data_point::Value::AsInt(i64::try_from(*value).unwrap_or(i64::MAX))),
                ..Default::default()
            })
            .collect();
        let data = match metric.kind {
            InstrumentKind::Counter => metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            InstrumentKind::Gauge => metric::Data::Gauge(Gauge { data_points: points }),
        };
        Metric {
            name: metric.name.into(),
            description: metric.description.into(),
            unit: metric.unit.into(),
            data: Some(data),
            ..Default::default()
        }
    });
    resource_metrics.push(resource_metrics_of(own_resource, own.collect()));
    ExportMetricsServiceRequest { resource_metrics }
}

/// One instrument's series of one process: a histogram, or (cost) a sum.
fn instrument_metric(instrument: Instrument, series: &[&Series<'_>], start: u64, now: u64) -> Metric {
    let attributes = |s: &Series<'_>| -> Vec<KeyValue> {
        s.attributes.iter().map(|(key, value)| encode::key_value(key, value)).collect()
    };
    let data = if instrument.is_histogram() {
        metric::Data::Histogram(opentelemetry_proto::tonic::metrics::v1::Histogram {
            data_points: series
                .iter()
                .map(|s| HistogramDataPoint {
                    attributes: attributes(s),
                    start_time_unix_nano: start,
                    time_unix_nano: now,
                    count: s.histogram.count,
                    sum: Some(s.histogram.sum),
                    bucket_counts: s.histogram.counts.clone(),
                    explicit_bounds: instrument.buckets().to_vec(),
                    min: Some(s.histogram.min),
                    max: Some(s.histogram.max),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })
    } else {
        metric::Data::Sum(Sum {
            data_points: series
                .iter()
                .map(|s| NumberDataPoint {
                    attributes: attributes(s),
                    start_time_unix_nano: start,
                    time_unix_nano: now,
                    value: Some(number_data_point::Value::AsDouble(s.histogram.sum)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })
    };
    Metric {
        name: instrument.name().into(),
        description: instrument.description().into(),
        unit: instrument.unit().into(),
        data: Some(data),
        ..Default::default()
    }
}

fn resource_metrics_of(resource: &Resource, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(encode::resource(resource)),
        scope_metrics: vec![ScopeMetrics { scope: Some(encode::scope()), metrics, ..Default::default() }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pytrace_core::model::Span;
    use pytrace_core::model::semconv as sc;

    use super::*;
    use crate::sinks::span_metrics::{HTTP_SECONDS_BUCKETS, TOKEN_BUCKETS};

    fn llm_span(resource: &Arc<Resource>, input: i64, output: i64, seconds: f64) -> Span {
        let mut span = Span::sample_llm_call(resource.clone(), input, 0.001, seconds);
        span.attributes.set(sc::GEN_AI_USAGE_OUTPUT_TOKENS, output);
        span.attributes.set(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, 0.05);
        span
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
        let request = request(&metrics, &Stats::default(), &Resource::default(), 1, 2);
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
        let process = &request.resource_metrics[0].scope_metrics[0].metrics;
        let cost = process.iter().find(|m| m.name == "pytrace.gen_ai.client.cost").unwrap();
        match &cost.data {
            Some(metric::Data::Sum(sum)) => {
                assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsDouble(0.002)));
            }
            other => panic!("cost is {other:?}"),
        }
    }
}
