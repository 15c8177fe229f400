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
pub const THREAD_NAME: &str = "thread.name";
pub const HTTP_ROUTE: &str = "http.route";
pub const CODE_FUNCTION_NAME: &str = "code.function.name";
pub const CODE_FILE_PATH: &str = "code.file.path";
pub const CODE_LINE_NUMBER: &str = "code.line.number";
pub const CODE_STACKTRACE: &str = "code.stacktrace";
pub const URL_SCHEME: &str = "url.scheme";
pub const URL_QUERY: &str = "url.query";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const NETWORK_TYPE: &str = "network.type";

// GenAI client spans (semantic conventions v1.41.1; still "Development").
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
pub const GEN_AI_REQUEST_TOP_K: &str = "gen_ai.request.top_k";
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
pub const GEN_AI_REQUEST_FREQUENCY_PENALTY: &str = "gen_ai.request.frequency_penalty";
pub const GEN_AI_REQUEST_PRESENCE_PENALTY: &str = "gen_ai.request.presence_penalty";
pub const GEN_AI_REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
pub const GEN_AI_REQUEST_CHOICE_COUNT: &str = "gen_ai.request.choice.count";
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// No semantic convention exists for cost; LLM-observability vendors use this.
pub const GEN_AI_USAGE_COST: &str = "gen_ai.usage.cost";
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
pub const GEN_AI_TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
pub const OPENAI_API_TYPE: &str = "openai.api.type";

// Values of gen_ai.operation.name.
pub const OPERATION_CHAT: &str = "chat";
pub const OPERATION_TEXT_COMPLETION: &str = "text_completion";
pub const OPERATION_EMBEDDINGS: &str = "embeddings";
pub const OPERATION_GENERATE_CONTENT: &str = "generate_content";

// Short aliases the provider parsers use for request parameters.
pub const REQUEST_TEMPERATURE: &str = GEN_AI_REQUEST_TEMPERATURE;
pub const REQUEST_TOP_P: &str = GEN_AI_REQUEST_TOP_P;
pub const REQUEST_TOP_K: &str = GEN_AI_REQUEST_TOP_K;
pub const REQUEST_MAX_TOKENS: &str = GEN_AI_REQUEST_MAX_TOKENS;
pub const REQUEST_FREQUENCY_PENALTY: &str = GEN_AI_REQUEST_FREQUENCY_PENALTY;
pub const REQUEST_PRESENCE_PENALTY: &str = GEN_AI_REQUEST_PRESENCE_PENALTY;
pub const REQUEST_STOP_SEQUENCES: &str = GEN_AI_REQUEST_STOP_SEQUENCES;
pub const REQUEST_SEED: &str = GEN_AI_REQUEST_SEED;
pub const REQUEST_CHOICE_COUNT: &str = GEN_AI_REQUEST_CHOICE_COUNT;

// pytrace's own.
/// Token counts were estimated (the provider reported none).
pub const PYTRACE_USAGE_ESTIMATED: &str = "pytrace.usage.estimated";
/// Number of tool calls the model requested, and their names.
pub const PYTRACE_TOOL_CALL_COUNT: &str = "pytrace.gen_ai.tool_call.count";
pub const PYTRACE_TOOL_CALL_NAMES: &str = "pytrace.gen_ai.tool_call.names";
/// The provider's error message.
pub const PYTRACE_ERROR_MESSAGE: &str = "pytrace.gen_ai.error.message";
/// `x-stainless-retry-count`: the SDK's retry number for this request.
pub const PYTRACE_RETRY_COUNT: &str = "pytrace.gen_ai.request.retry_count";
/// Why a body was not read: its content encoding was refused (too many
/// layers, too large decoded) or corrupt.
pub const PYTRACE_BODY_UNDECODABLE: &str = "pytrace.body.undecodable";
/// Seconds from the request's first byte written to the response's first byte read.
pub const PYTRACE_TIME_TO_FIRST_BYTE: &str = "pytrace.http.time_to_first_byte";
/// The exchange was reported before its response completed.
pub const PYTRACE_INCOMPLETE: &str = "pytrace.incomplete";
/// On a call made while serving a request: that request's method and route (`POST /ask`).
pub const PYTRACE_SERVER_ROUTE: &str = "pytrace.server.route";
pub const PYTRACE_INCOMPLETE_REASON: &str = "pytrace.incomplete.reason";
/// Some request or response bytes were not captured (capture limit, loss).
pub const PYTRACE_BYTES_MISSING: &str = "pytrace.capture.bytes_missing";
/// A function span's end was inferred: a new call reused its frame, so the
/// call had raised (its end time is when that was noticed).
pub const PYTRACE_FUNCTION_END_INFERRED: &str = "pytrace.function.end_inferred";
/// The SNI host name the client sent in its TLS handshake.
pub const PYTRACE_TLS_SERVER_NAME: &str = "pytrace.tls.server_name";
/// Status codes of 1xx responses received before the final response.
pub const PYTRACE_INFORMATIONAL_STATUS: &str = "pytrace.http.informational_status_codes";

// Resource.
pub const SERVICE_NAME: &str = "service.name";
pub const HOST_NAME: &str = "host.name";
pub const CONTAINER_ID: &str = "container.id";
pub const K8S_CLUSTER_NAME: &str = "k8s.cluster.name";
pub const K8S_NODE_NAME: &str = "k8s.node.name";
pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
pub const K8S_POD_NAME: &str = "k8s.pod.name";
pub const K8S_POD_UID: &str = "k8s.pod.uid";
pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
pub const K8S_DEPLOYMENT_NAME: &str = "k8s.deployment.name";
pub const K8S_REPLICASET_NAME: &str = "k8s.replicaset.name";
pub const K8S_STATEFULSET_NAME: &str = "k8s.statefulset.name";
pub const K8S_DAEMONSET_NAME: &str = "k8s.daemonset.name";
pub const K8S_JOB_NAME: &str = "k8s.job.name";
pub const K8S_CRONJOB_NAME: &str = "k8s.cronjob.name";
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_EXECUTABLE_PATH: &str = "process.executable.path";
pub const PROCESS_COMMAND_ARGS: &str = "process.command_args";
pub const PROCESS_RUNTIME_NAME: &str = "process.runtime.name";
pub const PROCESS_RUNTIME_VERSION: &str = "process.runtime.version";
