"""A real OTLP receiver for pytrace's export tests, built from the official
protobuf definitions (the opentelemetry-proto package) and served over gRPC
(grpcio) or HTTP/protobuf (http.server, gzip accepted). Every span and
metric it receives is printed as one JSON line:

  {"signal": "span", "resource": {...}, "scope": "pytrace", "span": {...}}
  {"signal": "metric", "resource": {...}, "metric": {...}}

  otlp_receiver.py --protocol grpc|http [--port N] [--fail-first N] [--tls-dir DIR]
                   [--faults LIST]

It prints "READY <port> <ca.pem or ->" when listening. With --tls-dir it
serves TLS with a certificate for localhost from a private CA (trustme)
written to DIR/ca.pem. The headers of each trace export are printed as
{"signal": "headers", "headers": {...}}. --fail-first N answers the first N
trace exports with UNAVAILABLE / HTTP 503 (a collector that is overloaded).

--faults (HTTP) answers the trace exports in turn as the comma-separated
list says, then normally: `ok`; `partial:N` (accepted, with a
partial_success rejecting N spans); a status code (`400`, `413`, `429`,
`500`, …); `reset` (the connection closed without an answer); `hang`
(no answer for 30 s). Each export is printed as {"signal": "export",
"fault": ..., "spans": N}; spans are recorded for `ok` and `partial` only.
"""

import argparse
import base64
import gzip
import json
import os
import socket
import ssl
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

LOCK = threading.Lock()
FAILURES_LEFT = 0
FAULTS = []


def emit(record):
    with LOCK:
        print(json.dumps(record), flush=True)


def value_of(any_value):
    kind, value = next(iter(any_value.items()), (None, None))
    if kind == "intValue":
        return int(value)
    if kind == "arrayValue":
        return [value_of(v) for v in value.get("values", [])]
    return value


def attributes(kvs):
    return {kv["key"]: value_of(kv.get("value", {})) for kv in kvs}


def hex_ids(span):
    """Trace and span ids as the hex strings pytrace prints (JSON mapping gives base64)."""
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in span:
            span[key] = base64.b64decode(span[key]).hex()


def record_traces(request):
    for resource_spans in MessageToDict(request).get("resourceSpans", []):
        resource = attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {})
            for span in scope_spans.get("spans", []):
                span["attributes"] = attributes(span.get("attributes", []))
                hex_ids(span)
                emit({"signal": "span", "resource": resource, "scope": scope, "span": span})


def record_metrics(request):
    for resource_metrics in MessageToDict(request).get("resourceMetrics", []):
        resource = attributes(resource_metrics.get("resource", {}).get("attributes", []))
        for scope_metrics in resource_metrics.get("scopeMetrics", []):
            for metric in scope_metrics.get("metrics", []):
                emit({"signal": "metric", "resource": resource, "metric": metric})


def next_fault():
    with LOCK:
        return FAULTS.pop(0) if FAULTS else "ok"


def span_count(request):
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def should_fail():
    global FAILURES_LEFT
    with LOCK:
        if FAILURES_LEFT > 0:
            FAILURES_LEFT -= 1
            return True
    return False


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        emit({"signal": "headers", "headers": dict(context.invocation_metadata())})
        if should_fail():
            context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded (test)")
        record_traces(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        record_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class HttpHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            emit({"signal": "headers", "headers": {k.lower(): v for k, v in self.headers.items()}})
            if should_fail():
                self.send_response(503)
                self.end_headers()
                return
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            fault = next_fault()
            emit({"signal": "export", "fault": fault, "spans": span_count(request)})
            if fault == "reset":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "hang":
                time.sleep(30)
                self.close_connection = True
                return
            if fault.isdigit():
                self.send_response(int(fault))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            record_traces(request)
            reply = trace_service_pb2.ExportTraceServiceResponse()
            if fault.startswith("partial:"):
                reply.partial_success.rejected_spans = int(fault.split(":")[1])
                reply.partial_success.error_message = "some spans were refused (test)"

        elif self.path == "/v1/metrics":
            request = metrics_service_pb2.ExportMetricsServiceRequest()
            request.ParseFromString(body)
            record_metrics(request)
            reply = metrics_service_pb2.ExportMetricsServiceResponse()
        else:
            self.send_response(404)
            self.end_headers()
            return
        payload = reply.SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    global FAILURES_LEFT
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--tls-dir")
    parser.add_argument("--faults", default="")
    args = parser.parse_args()
    FAILURES_LEFT = args.fail_first
    FAULTS.extend(fault for fault in args.faults.split(",") if fault)
    tls = certificates(args.tls_dir) if args.tls_dir else None
    ca_path = tls[0] if tls else "-"
    if args.protocol == "grpc":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsService(), server)
        if tls:
            credentials = grpc.ssl_server_credentials([(tls[2], tls[1])])
            port = server.add_secure_port(f"localhost:{args.port}", credentials)
        else:
            port = server.add_insecure_port(f"127.0.0.1:{args.port}")
        server.start()
        print(f"READY {port} {ca_path}", flush=True)
        server.wait_for_termination()
    else:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), HttpHandler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[3])
            server.socket = context.wrap_socket(server.socket, server_side=True)
        print(f"READY {server.server_address[1]} {ca_path}", flush=True)
        server.serve_forever()


def certificates(directory):
    """(ca.pem path, certificate chain PEM, private key PEM, key+chain file) for localhost."""
    import trustme

    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    combined = os.path.join(directory, "server.pem")
    cert.private_key_and_cert_chain_pem.write_to_path(combined)
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return ca_path, chain, cert.private_key_pem.bytes(), combined


if __name__ == "__main__":
    sys.exit(main())
