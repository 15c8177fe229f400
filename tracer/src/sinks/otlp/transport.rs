//! Sending OTLP requests: gRPC (tonic, with the `opentelemetry-proto`
//! service clients) or HTTP/protobuf (reqwest), with the configured
//! headers, timeout, gzip and TLS (system roots plus an optional CA file).
//! Failures are sorted as the OTLP specification says: retryable
//! (unreachable, overloaded, timed out) or permanent (the collector refused
//! the data).

use std::io::Write;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::config::{Destination, Protocol};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read the OTLP CA certificate {path}: {source}")]
    CaFile { path: String, source: std::io::Error },
    #[error("OTLP endpoint {url}: {message}")]
    Setup { url: String, message: String },
}

/// Why a request was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: the collector is unreachable or busy.
    #[error("{0} (will retry)")]
    Retryable(String),
    /// The collector refused the data; sending it again would not help.
    #[error("{0}")]
    Permanent(String),
}

enum Client {
    Grpc(Channel),
    Http(reqwest::Client),
}

pub struct Transport {
    destination: Destination,
    client: Client,
}

impl Transport {
    pub fn new(destination: &Destination) -> Result<Self, TransportError> {
        let setup = |message: String| TransportError::Setup {
            url: pytrace_core::redact::endpoint_for_display(&destination.url),
            message,
        };
        let ca = match &destination.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|source| TransportError::CaFile { path: path.display().to_string(), source })?,
            ),
            None => None,
        };
        let client = match destination.protocol {
            Protocol::Grpc => {
                let mut endpoint = Endpoint::from_shared(destination.url.clone())
                    .map_err(|e| setup(e.to_string()))?
                    .timeout(destination.timeout)
                    .connect_timeout(destination.timeout);
                if destination.url.starts_with("https://") {
                    let mut tls = ClientTlsConfig::new().with_native_roots();
                    if let Some(pem) = &ca {
                        tls = tls.ca_certificate(Certificate::from_pem(pem));
                    }
                    endpoint = endpoint.tls_config(tls).map_err(|e| setup(e.to_string()))?;
                }
                Client::Grpc(endpoint.connect_lazy())
            }
            Protocol::HttpProtobuf => {
                let mut builder = reqwest::Client::builder().timeout(destination.timeout);
                if let Some(pem) = &ca {
                    let certificate = reqwest::Certificate::from_pem(pem).map_err(|e| setup(e.to_string()))?;
                    builder = builder.add_root_certificate(certificate);
                }
                Client::Http(builder.build().map_err(|e| setup(e.to_string()))?)
            }
        };
        Ok(Self { destination: destination.clone(), client })
    }

    pub fn url(&self) -> &str {
        &self.destination.url
    }

    /// Sends spans; on success, how many of them the collector rejected
    /// (its `partial_success`).
    pub async fn send_traces(&self, request: ExportTraceServiceRequest) -> Result<u64, SendError> {
        let response = match &self.client {
            Client::Grpc(channel) => {
                let mut client = TraceServiceClient::new(channel.clone());
                if self.destination.gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                client.export(self.grpc_request(request)).await.map_err(grpc_error)?.into_inner()
            }
            Client::Http(client) => {
                let body = self.post(client, request.encode_to_vec()).await?;
                // An empty or unreadable body is a full success.
                ExportTraceServiceResponse::decode(&*body).unwrap_or_default()
            }
        };
        Ok(rejected_spans(response))
    }

    pub async fn send_metrics(&self, request: ExportMetricsServiceRequest) -> Result<(), SendError> {
        match &self.client {
            Client::Grpc(channel) => {
                let mut client = MetricsServiceClient::new(channel.clone());
                if self.destination.gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                client.export(self.grpc_request(request)).await.map(drop).map_err(grpc_error)
            }
            Client::Http(client) => self.post(client, request.encode_to_vec()).await.map(drop),
        }
    }

    fn grpc_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for (key, value) in &self.destination.headers {
            if let (Ok(key), Ok(value)) =
                (MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes()), MetadataValue::try_from(value.as_str()))
            {
                request.metadata_mut().insert(key, value);
            }
        }
        request
    }

    /// POSTs a request; the response body on success.
    async fn post(&self, client: &reqwest::Client, body: Vec<u8>) -> Result<bytes::Bytes, SendError> {
        let mut request =
            client.post(&self.destination.url).header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
        for (key, value) in &self.destination.headers {
            request = request.header(key.as_str(), value.as_str());
        }
        let body = if self.destination.gzip {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
            gzip(&body)
        } else {
            body
        };
        let response = request.body(body).send().await.map_err(|e| SendError::Retryable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            // A body that cannot be read leaves the export a success.
            return Ok(response.bytes().await.unwrap_or_default());
        }
        let message = format!("the collector answered HTTP {status}");
        match status.as_u16() {
            429 | 502 | 503 | 504 => Err(SendError::Retryable(message)),
            _ => Err(SendError::Permanent(message)),
        }
    }
}

/// Spans the collector says it rejected, with its reason in the log.
fn rejected_spans(response: ExportTraceServiceResponse) -> u64 {
    let Some(partial) = response.partial_success else { return 0 };
    let rejected = u64::try_from(partial.rejected_spans).unwrap_or(0);
    if rejected > 0 || !partial.error_message.is_empty() {
        tracing::warn!(rejected, message = %partial.error_message, "the collector accepted the spans in part");
    }
    rejected
}

/// The error and its causes in one line (reqwest's own message stops at "error sending request").
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn grpc_error(status: tonic::Status) -> SendError {
    use tonic::Code;
    let message = format!("the collector answered gRPC {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss
        // tonic reports some transport failures (a connection reset) as Unknown.
        | Code::Unknown => SendError::Retryable(message),
        _ => SendError::Permanent(message),
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

pub fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).ok()?;
    Some(out)
}
