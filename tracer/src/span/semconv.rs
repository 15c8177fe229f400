//! Every attribute name pytrace emits, in one table, so a semantic-convention
//! rename is one edit. OpenTelemetry names where a convention exists
//! (HTTP, URL, network, process, host, service, thread); `pytrace.*` where
//! none does.

// HTTP client spans.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const HTTP_REQUEST_BODY_SIZE: &str = "http.request.body.size";
pub const HTTP_RESPONSE_BODY_SIZE: &str = "http.response.body.size";
pub const URL_FULL: &str = "url.full";
pub const URL_PATH: &str = "url.path";
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
pub const ERROR_TYPE: &str = "error.type";
pub const THREAD_ID: &str = "thread.id";
pub const URL_SCHEME: &str = "url.scheme";
pub const URL_QUERY: &str = "url.query";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const NETWORK_TYPE: &str = "network.type";

// pytrace's own.
/// Seconds from the request's first byte written to the response's first byte read.
pub const PYTRACE_TIME_TO_FIRST_BYTE: &str = "pytrace.http.time_to_first_byte";
/// The exchange was reported before its response completed.
pub const PYTRACE_INCOMPLETE: &str = "pytrace.incomplete";
pub const PYTRACE_INCOMPLETE_REASON: &str = "pytrace.incomplete.reason";
/// Some request or response bytes were not captured (capture limit, loss).
pub const PYTRACE_BYTES_MISSING: &str = "pytrace.capture.bytes_missing";
/// The SNI host name the client sent in its TLS handshake.
pub const PYTRACE_TLS_SERVER_NAME: &str = "pytrace.tls.server_name";
/// Status codes of 1xx responses received before the final response.
pub const PYTRACE_INFORMATIONAL_STATUS: &str = "pytrace.http.informational_status_codes";

// Resource.
pub const SERVICE_NAME: &str = "service.name";
pub const HOST_NAME: &str = "host.name";
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_EXECUTABLE_PATH: &str = "process.executable.path";
pub const PROCESS_COMMAND_ARGS: &str = "process.command_args";
pub const PROCESS_RUNTIME_NAME: &str = "process.runtime.name";
pub const PROCESS_RUNTIME_VERSION: &str = "process.runtime.version";
