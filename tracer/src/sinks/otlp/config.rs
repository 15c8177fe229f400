//! OTLP exporter settings: `--otlp-endpoint` and the standard
//! `OTEL_EXPORTER_OTLP_*` variables, resolved the way the OpenTelemetry
//! specification says (signal-specific variables win over the generic ones;
//! the generic endpoint gets `/v1/traces` or `/v1/metrics` appended for
//! HTTP, signal-specific endpoints are used as given). Pure: the
//! environment comes in as a lookup function, so it is tested without
//! touching the process's own.

use std::path::PathBuf;
use std::time::Duration;

use pytrace_core::otel_env;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn env_name(self) -> &'static str {
        match self {
            Self::Traces => "TRACES",
            Self::Metrics => "METRICS",
        }
    }

    fn http_path(self) -> &'static str {
        match self {
            Self::Traces => "v1/traces",
            Self::Metrics => "v1/metrics",
        }
    }
}

/// Where and how one signal is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// For HTTP, the full URL to POST to; for gRPC, the server's base URL.
    pub url: String,
    pub protocol: Protocol,
    /// Extra request headers (authentication): secrets, never printed.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub gzip: bool,
    /// A CA certificate file trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpConfig {
    pub traces: Destination,
    pub metrics: Destination,
    /// How often metrics are sent (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s).
    pub metric_interval: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpConfigError {
    #[error("{variable}: unknown OTLP protocol {value:?} (use grpc or http/protobuf)")]
    Protocol { variable: String, value: String },
    #[error("{variable}: {value:?} is not a number of milliseconds")]
    Number { variable: String, value: String },
    #[error("{variable}: unknown compression {value:?} (use gzip or none)")]
    Compression { variable: String, value: String },
    #[error("{variable}: {value:?} is not an http:// or https:// URL")]
    Url { variable: String, value: String },
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(60);

impl OtlpConfig {
    /// The configuration when OTLP export is asked for: `--otlp-endpoint`
    /// (`flag`) or one of the endpoint variables. `None` otherwise.
    pub fn resolve(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtlpConfigError> {
        let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let any_endpoint = flag.is_some()
            || [
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            ]
            .iter()
            .any(|name| env(name).is_some());
        if !any_endpoint {
            return Ok(None);
        }
        let destination = |signal: Signal| destination(signal, flag, &env);
        Ok(Some(Self {
            traces: destination(Signal::Traces)?,
            metrics: destination(Signal::Metrics)?,
            metric_interval: match env("OTEL_METRIC_EXPORT_INTERVAL") {
                Some(value) => millis("OTEL_METRIC_EXPORT_INTERVAL", &value)?,
                None => DEFAULT_METRIC_INTERVAL,
            },
        }))
    }
}

fn destination(
    signal: Signal,
    flag: Option<&str>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Destination, OtlpConfigError> {
    let specific = |what: &str| format!("OTEL_EXPORTER_OTLP_{}_{what}", signal.env_name());
    let generic = |what: &str| format!("OTEL_EXPORTER_OTLP_{what}");
    // The signal's own variable, else the generic one: (variable name, value).
    let setting = |what: &str| {
        env(&specific(what)).map(|v| (specific(what), v)).or_else(|| env(&generic(what)).map(|v| (generic(what), v)))
    };
    let protocol = match setting("PROTOCOL") {
        None => Protocol::Grpc,
        Some((_, value)) if value == "grpc" => Protocol::Grpc,
        Some((_, value)) if value == "http/protobuf" => Protocol::HttpProtobuf,
        Some((variable, value)) => return Err(OtlpConfigError::Protocol { variable, value }),
    };
    let (url, variable) = match (env(&specific("ENDPOINT")), flag, env(&generic("ENDPOINT"))) {
        (Some(url), _, _) => (url, specific("ENDPOINT")),
        (None, Some(base), _) => (with_signal_path(base, signal, protocol), "--otlp-endpoint".to_owned()),
        (None, None, Some(base)) => (with_signal_path(&base, signal, protocol), generic("ENDPOINT")),
        (None, None, None) => (default_endpoint(signal, protocol), "the default endpoint".to_owned()),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(OtlpConfigError::Url { variable, value: url });
    }
    let timeout = match setting("TIMEOUT") {
        Some((variable, value)) => millis(&variable, &value)?,
        None => DEFAULT_TIMEOUT,
    };
    let gzip = match setting("COMPRESSION") {
        None => false,
        Some((_, value)) if value == "gzip" => true,
        Some((_, value)) if value == "none" => false,
        Some((variable, value)) => return Err(OtlpConfigError::Compression { variable, value }),
    };
    let mut headers = setting("HEADERS").map(|(_, v)| otel_env::key_values(&v)).unwrap_or_default();
    headers.retain(|(key, _)| !key.is_empty());
    Ok(Destination { url, protocol, headers, timeout, gzip, ca_file: setting("CERTIFICATE").map(|(_, v)| v.into()) })
}

fn default_endpoint(signal: Signal, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => "http://localhost:4317".to_owned(),
        Protocol::HttpProtobuf => format!("http://localhost:4318/{}", signal.http_path()),
    }
}

/// A base endpoint with the signal's path appended (HTTP only; gRPC takes the base).
fn with_signal_path(base: &str, signal: Signal, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => base.to_owned(),
        Protocol::HttpProtobuf => format!("{}/{}", base.trim_end_matches('/'), signal.http_path()),
    }
}

fn millis(variable: &str, value: &str) -> Result<Duration, OtlpConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| OtlpConfigError::Number { variable: variable.to_owned(), value: value.to_owned() })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(flag: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        OtlpConfig::resolve(flag, |name| vars.get(name).cloned())
    }

    #[test]
    fn off_unless_an_endpoint_is_given() {
        assert_eq!(resolve(None, &[("OTEL_SERVICE_NAME", "x")]), Ok(None));
    }

    #[test]
    fn the_flag_is_a_base_endpoint() {
        let config = resolve(Some("http://collector:4317"), &[]).unwrap().unwrap();
        assert_eq!(config.traces.url, "http://collector:4317");
        assert_eq!(config.traces.protocol, Protocol::Grpc);
        assert_eq!(config.traces.timeout, Duration::from_secs(10));
        let http = resolve(Some("https://collector:4318/"), &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        let http = http.unwrap().unwrap();
        assert_eq!(http.traces.url, "https://collector:4318/v1/traces");
        assert_eq!(http.metrics.url, "https://collector:4318/v1/metrics");
    }

    #[test]
    fn signal_variables_win_and_are_used_as_given() {
        let config = resolve(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc, x-tenant = t1"),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.traces.url, "http://traces:9999/custom");
        assert_eq!(config.metrics.url, "http://base:4318/v1/metrics");
        assert_eq!(config.traces.timeout, Duration::from_millis(500));
        assert_eq!(config.metrics.timeout, Duration::from_millis(2500));
        assert!(config.traces.gzip);
        assert_eq!(
            config.traces.headers,
            [("authorization".into(), "Bearer abc".into()), ("x-tenant".into(), "t1".into())]
        );
        assert_eq!(config.traces.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.metric_interval, Duration::from_secs(1));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let error = resolve(Some("http://c:4317"), &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "OTEL_EXPORTER_OTLP_PROTOCOL: unknown OTLP protocol \"http/json\" (use grpc or http/protobuf)"
        );
        assert!(resolve(Some("http://c:4317"), &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]).is_err());
        assert!(resolve(Some("http://c:4317"), &[("OTEL_EXPORTER_OTLP_COMPRESSION", "br")]).is_err());
        assert!(resolve(Some("collector:4317"), &[]).is_err());
    }
}
