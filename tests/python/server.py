"""Local HTTPS (or plain HTTP) server that the tests and the demo talk to.

Speaks HTTP/1.1 with keep-alive and exercises what pytrace must parse:
Content-Length and chunked bodies, gzip/deflate/br/zstd encodings, HEAD,
204/304, 1xx (Expect: 100-continue), Connection: close with a body delimited
by the close, and a slow server-sent-events stream.

Usage: server.py --cert-dir DIR [--plain] [--port 0]
Prints "READY <port> <ca.pem>" on stdout once it listens.
"""

import argparse
import gzip
import json
import os
import ssl
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import llm_api


def make_certificates(cert_dir):
    """A private CA and a localhost certificate, made once with trustme
    (not needed where they exist: the kernel matrix's guest has no PyPI)."""
    ca_path = os.path.join(cert_dir, "ca.pem")
    key_path = os.path.join(cert_dir, "server.pem")
    if not (os.path.exists(ca_path) and os.path.exists(key_path)):
        import trustme

        os.makedirs(cert_dir, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
        ca.cert_pem.write_to_path(ca_path)
        cert.private_key_and_cert_chain_pem.write_to_path(key_path)
    return ca_path, key_path


def encode(body, encoding):
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "br":
        import brotli

        return brotli.compress(body)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(body)
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pytrace-test-server"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def route(self):
        url = urlsplit(self.path)
        return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}

    def body_of_request(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def send_json(self, status, payload, encoding=None):
        body = json.dumps(payload).encode()
        body = encode(body, encoding) if encoding else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        # Head and body in one write (one TLS record), as production servers
        # send small responses.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        received = self.body_of_request()
        path, query = self.route()
        if path.startswith("/status/"):
            return self.send_json(int(path.rsplit("/", 1)[1]), {"error": "as requested"})
        if llm_api.route(self, path, json.loads(received or b"{}")):
            return
        self.send_json(200, {"received": len(received), "path": path})

    def do_GET(self):
        path, query = self.route()
        if path == "/json":
            return self.send_json(200, {"hello": "world", "items": list(range(int(query.get("n", 10))))})
        if path == "/encoded":
            wanted = query.get("encoding", "gzip")
            return self.send_json(200, {"encoded": wanted, "filler": "x" * 2000}, encoding=wanted)
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            if status in (204, 304):
                self.send_response(status)
                self.end_headers()
                return
            return self.send_json(status, {"status": status})
        if path == "/chunked":
            return self.send_chunks([f"part {i}\n".encode() for i in range(int(query.get("n", 5)))], 0)
        if path == "/stream":
            events = int(query.get("events", 5))
            delay = int(query.get("delay_ms", 20)) / 1000
            chunks = [f"data: {json.dumps({'index': i})}\n\n".encode() for i in range(events)]
            return self.send_chunks(chunks + [b"data: [DONE]\n\n"], delay, "text/event-stream")
        if path == "/ndjson":
            lines = int(query.get("lines", 5))
            delay = int(query.get("delay_ms", 20)) / 1000
            chunks = [json.dumps({"index": i, "done": False}).encode() + b"\n" for i in range(lines)]
            return self.send_chunks(chunks + [b'{"done": true}\n'], delay, "application/x-ndjson")
        if path == "/close":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"body delimited by the connection closing\n")
            self.close_connection = True
            return
        if path == "/slow":
            time.sleep(int(query.get("ms", 200)) / 1000)
            return self.send_json(200, {"slow": True})
        self.send_json(404, {"error": "not found"})

    def send_chunks(self, chunks, delay, content_type="text/plain"):
        self.send_chunks_timed([(delay, chunk) for chunk in chunks], content_type)

    def send_chunks_timed(self, timed_chunks, content_type):
        """A chunked response; each chunk is written after its delay (seconds)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for delay, chunk in timed_chunks:
            if delay:
                time.sleep(delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def send_sse(self, events):
        """Server-sent events: (name or None, delay before it, data)."""
        timed = []
        for name, delay, data in events:
            text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
            timed.append((delay, text.encode()))
        self.send_chunks_timed(timed, "text/event-stream")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the benchmarks open 64 connections at once
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        # TLS handshakes happen here, on the connection's own thread: done in
        # accept() (the default), one stalled handshake stalls every client.
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


class Server6(Server):
    import socket

    address_family = socket.AF_INET6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert-dir", required=True)
    parser.add_argument("--plain", action="store_true", help="plain HTTP, no TLS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-delay", action="store_true",
                        help="benchmarks: LLM streams without pauses, with --stream-pieces pieces")
    parser.add_argument("--stream-pieces", type=int, default=0)
    args = parser.parse_args()
    if args.no_delay:
        llm_api.no_delay(args.stream_pieces)
    server_class = Server6 if ":" in args.host else Server
    server = server_class((args.host, args.port), Handler)
    ca_path = "-"
    if not args.plain:
        ca_path, key_path = make_certificates(args.cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(key_path)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f"READY {server.server_address[1]} {ca_path}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sys.stdin.read()  # run until stdin closes (the parent went away)
    except KeyboardInterrupt:
        pass
    server.shutdown()


if __name__ == "__main__":
    main()
