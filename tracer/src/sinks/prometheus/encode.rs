//! `/metrics`: the span-derived metrics and pytrace's health in the
//! Prometheus text format (0.0.4) or OpenMetrics, as the scraper asks,
//! encoded with `prometheus-client`.
//!
//! Names follow the OpenTelemetry-to-Prometheus conventions: dots become
//! underscores, the unit becomes a suffix (`s` → `_seconds`, `By` →
//! `_bytes`, annotations such as `{token}` are dropped; `USD` → `_usd`),
//! counters end in `_total`; attributes become labels the same way. Each
//! series also names the traced service and where it runs, from the
//! process's resource ([`RESOURCE_LABELS`]: `service_name`,
//! `k8s_cluster_name`, `k8s_node_name`, `k8s_namespace_name`,
//! `k8s_workload_name`, each only where known); `job` and `instance` stay
//! the scraper's, so no `honor_labels` is needed. The processes of one
//! service in one workload are summed into one series, so `/metrics` does
//! not grow with every process that comes and goes (and the series of all
//! services together are capped, the rest counted into one overflow series).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use pytrace_core::model::AttrValue;
use pytrace_core::model::semconv as sc;

use crate::sinks::span_metrics::{Histogram, Metrics};
use crate::stats::{InstrumentKind, Stats};

/// What the session shares with the endpoint.
#[derive(Clone, Default)]
pub struct Shared {
    pub metrics: Arc<Mutex<Metrics>>,
    pub stats: Arc<Mutex<Stats>>,
}

/// The content types `/metrics` answers with.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The exposition in the format an `Accept` header asks for (OpenMetrics
/// when it names it, else the Prometheus text format), with its content type.
pub fn exposition(shared: &Shared, accept: &str) -> (String, &'static str) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(shared.clone())));
    let mut text = String::new();
    if accept.contains("application/openmetrics-text") {
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        (text, OPENMETRICS)
    } else {
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        (text, PROMETHEUS_TEXT)
    }
}

struct Snapshot(Shared);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Ok(metrics) = self.0.metrics.lock() {
            encode_span_metrics(&metrics, &mut encoder)?;
        }
        let stats = self.0.stats.lock().map(|s| s.clone()).unwrap_or_default();
        for metric in stats.instruments() {
            let (name, unit) = prometheus_name(metric.name, metric.unit);
            let kind = match metric.kind {
                InstrumentKind::Counter => MetricType::Counter,
                InstrumentKind::Gauge => MetricType::Gauge,
            };
            let mut family = encoder.encode_descriptor(&name, metric.description, unit.as_ref(), kind)?;
            for (labels, value) in &metric.points {
                let labels: Vec<(String, String)> =
                    labels.iter().map(|(key, value)| (label_name(key), value.clone())).collect();
                let mut point = family.encode_family(&labels)?;
                match metric.kind {
                    InstrumentKind::Counter => point.encode_counter::<NoLabelSet, u64, f64>(value, None)?,
                    InstrumentKind::Gauge => point.encode_gauge(&(i64::try_from(*value).unwrap_or(i64::MAX)))?,
                }
            }
        }
        Ok(())
    }
}

/// Labels of one series: where the traced service runs, then the measurement's attributes.
type Labels = Vec<(String, String)>;

/// The labels every span-derived series takes from the traced process's
/// resource: each label and the resource attributes it is read from, the
/// first present one winning (a pod's workload is its Deployment,
/// StatefulSet, DaemonSet, CronJob or Job, else its ReplicaSet).
pub const RESOURCE_LABELS: &[(&str, &[&str])] = &[
    ("service_name", &[sc::SERVICE_NAME]),
    ("k8s_cluster_name", &[sc::K8S_CLUSTER_NAME]),
    ("k8s_node_name", &[sc::K8S_NODE_NAME]),
    ("k8s_namespace_name", &[sc::K8S_NAMESPACE_NAME]),
    (
        "k8s_workload_name",
        &[
            sc::K8S_DEPLOYMENT_NAME,
            sc::K8S_STATEFULSET_NAME,
            sc::K8S_DAEMONSET_NAME,
            sc::K8S_CRONJOB_NAME,
            sc::K8S_JOB_NAME,
            sc::K8S_REPLICASET_NAME,
        ],
    ),
];

fn resource_labels(resource: &pytrace_core::model::Resource) -> Labels {
    RESOURCE_LABELS
        .iter()
        .filter_map(|(label, attributes)| {
            let value = attributes.iter().find_map(|attribute| match resource.attributes.get(attribute) {
                Some(AttrValue::Str(value)) if !value.is_empty() => Some(value.clone()),
                _ => None,
            })?;
            Some(((*label).to_owned(), value))
        })
        .collect()
}

fn encode_span_metrics(metrics: &Metrics, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let mut by_instrument: BTreeMap<_, BTreeMap<Labels, Histogram>> = BTreeMap::new();
    for series in metrics.series() {
        let mut labels = resource_labels(series.resource);
        labels.extend(series.attributes.iter().map(|(key, value)| (label_name(key), label_value(value))));
        by_instrument.entry(series.instrument).or_default().entry(labels).or_default().merge(series.histogram);
    }
    for (instrument, series) in by_instrument {
        let (name, unit) = prometheus_name(instrument.name(), instrument.unit());
        let kind = if instrument.is_histogram() { MetricType::Histogram } else { MetricType::Counter };
        let mut family = encoder.encode_descriptor(&name, instrument.description(), unit.as_ref(), kind)?;
        for (labels, histogram) in &series {
            let mut point = family.encode_family(labels)?;
            if instrument.is_histogram() {
                let buckets: Vec<(f64, u64)> = instrument
                    .buckets()
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(histogram.counts.iter().copied())
                    .collect();
                point.encode_histogram::<NoLabelSet>(histogram.sum, histogram.count, &buckets, None)?;
            } else {
                point.encode_counter::<NoLabelSet, f64, f64>(&histogram.sum, None)?;
            }
        }
    }
    Ok(())
}

/// The Prometheus name of an OpenTelemetry instrument (without the unit
/// suffix and `_total`, which the encoder adds) and its unit.
pub fn prometheus_name(name: &str, unit: &str) -> (String, Option<Unit>) {
    let unit = match unit {
        "s" => Some(Unit::Seconds),
        "By" => Some(Unit::Bytes),
        "1" => Some(Unit::Ratios),
        "USD" => Some(Unit::Other("usd".to_owned())),
        annotation if annotation.starts_with('{') => None,
        other => Some(Unit::Other(label_name(other))),
    };
    (label_name(name), unit)
}

/// An attribute key as a Prometheus name: characters outside `[a-zA-Z0-9_]` become `_`.
fn label_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn label_value(value: &AttrValue) -> String {
    match value {
        AttrValue::Str(s) => s.clone(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::F64(f) => f.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::StrArray(items) => items.join(","),
        AttrValue::IntArray(items) => items.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
    }
}

#[cfg(test)]
mod tests {
    use pytrace_core::model::{Resource, Span};

    use super::*;

    fn llm_call(service: &str, input: i64, cost: f64) -> Span {
        llm_call_in(service, None, input, cost)
    }

    /// A call of `service`, in Kubernetes namespace and Deployment `place` when given.
    fn llm_call_in(service: &str, place: Option<(&str, &str)>, input: i64, cost: f64) -> Span {
        let mut resource = Resource::default();
        resource.attributes.set(sc::SERVICE_NAME, service);
        if let Some((namespace, deployment)) = place {
            resource.attributes.set(sc::K8S_CLUSTER_NAME, "prod-eu");
            resource.attributes.set(sc::K8S_NODE_NAME, "node-1");
            resource.attributes.set(sc::K8S_NAMESPACE_NAME, namespace);
            resource.attributes.set(sc::K8S_REPLICASET_NAME, format!("{deployment}-7d9f"));
            resource.attributes.set(sc::K8S_DEPLOYMENT_NAME, deployment);
        }
        Span::sample_llm_call(Arc::new(resource), input, cost, 0.3)
    }

    #[test]
    fn services_of_one_name_in_two_namespaces_stay_apart_and_job_is_the_scrapers() {
        let shared = Shared::default();
        {
            let mut metrics = shared.metrics.lock().unwrap();
            metrics.record(&llm_call_in("checkout", Some(("shop", "checkout")), 10, 0.5));
            metrics.record(&llm_call_in("checkout", Some(("staging", "checkout")), 20, 0.25));
        }
        let (text, _) = exposition(&shared, "text/plain");
        let sums: Vec<&str> = text.lines().filter(|l| l.starts_with("gen_ai_client_token_usage_sum{")).collect();
        let input_sums: Vec<&&str> = sums.iter().filter(|l| l.contains("gen_ai_token_type=\"input\"")).collect();
        assert_eq!(input_sums.len(), 2, "{text}");
        let shop = input_sums.iter().find(|l| l.contains("k8s_namespace_name=\"shop\"")).unwrap();
        for label in [
            "service_name=\"checkout\"",
            "k8s_cluster_name=\"prod-eu\"",
            "k8s_node_name=\"node-1\"",
            "k8s_workload_name=\"checkout\"",
        ] {
            assert!(shop.contains(label), "{label} in {shop}");
        }
        assert!(shop.ends_with(" 10.0"), "{shop}");
        assert!(!text.contains("job="), "job is the scraper's label: {text}");
    }

    #[test]
    fn names_follow_the_opentelemetry_to_prometheus_conventions() {
        let shared = Shared::default();
        {
            let mut metrics = shared.metrics.lock().unwrap();
            // Two processes of one service are one series; another service is its own.
            metrics.record(&llm_call("billing", 10, 0.5));
            metrics.record(&llm_call("billing", 20, 0.25));
            metrics.record(&llm_call("search", 5, 1.0));
        }
        shared.stats.lock().unwrap().events_received = 42;
        let (text, content_type) = exposition(&shared, "text/plain");
        assert_eq!(content_type, PROMETHEUS_TEXT);
        assert!(text.contains("# TYPE gen_ai_client_token_usage histogram"), "{text}");
        assert!(text.contains("# TYPE gen_ai_client_operation_duration_seconds histogram"), "{text}");
        assert!(text.contains("# TYPE http_client_request_duration_seconds histogram"), "{text}");
        let billing_input = text
            .lines()
            .find(|l| l.starts_with("gen_ai_client_token_usage_sum{") && l.contains("service_name=\"billing\""))
            .unwrap();
        assert!(billing_input.contains("gen_ai_token_type=\"input\"") && billing_input.ends_with(" 30.0"), "{text}");
        assert!(text.contains("gen_ai_client_token_usage_bucket{service_name=\"search\""), "{text}");
        assert!(text.contains("le=\"+Inf\""), "{text}");
        let cost = text
            .lines()
            .find(|l| l.starts_with("pytrace_gen_ai_client_cost_usd_total{service_name=\"billing\""))
            .unwrap();
        assert!(cost.ends_with(" 0.75"), "{cost}");
        assert!(text.contains("pytrace_events_received_total 42"), "{text}");
        assert!(text.contains("pytrace_spans_total{span_kind=\"client\"} 0"), "{text}");
        let (open, content_type) = exposition(&shared, "application/openmetrics-text;version=1.0.0");
        assert_eq!(content_type, OPENMETRICS);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
