"""A stand-in Kubernetes API server for pytrace's tests: no cluster can run
here, so this speaks the part of the real protocol a node agent uses —
over HTTPS, with a bearer token — and nothing else:

  GET /api/v1/pods?fieldSelector=spec.nodeName=N[&limit&continue]
      a PodList with metadata.resourceVersion (one page)
  GET /api/v1/pods?watch=true&resourceVersion=RV[&allowWatchBookmarks=true]
      a chunked stream of {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
      "object": ...} lines from RV on; an RV older than the last
      compaction gets an ERROR event with a 410 Gone Status, as etcd's
      compaction causes
  GET /apis/apps/v1/namespaces/NS/replicasets/NAME,
  GET /apis/batch/v1/namespaces/NS/jobs/NAME
      owners, for the owner chain (ReplicaSet -> Deployment, Job -> CronJob)

Usage: kube_apiserver.py --cert-dir DIR --token TOKEN [--port PORT]
Prints "READY <port> <ca.pem>"; the CA is kept in DIR and reused by a
stand-in started again with the same DIR. The test drives it with JSON lines on stdin:
  {"op": "put", "object": {...}}       add or change a pod (or an owner)
  {"op": "delete", "namespace": NS, "name": NAME}
  {"op": "bookmark"}                   a BOOKMARK to every open watch
  {"op": "expire"}                     compact: open watches get 410 Gone
and reads "OK" after each. Every request is logged on stderr.
"""

import argparse
import copy
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import ssl
import trustme

STATE = threading.Condition()
PODS = {}  # (namespace, name) -> pod
OWNERS = {}  # (kind, namespace, name) -> object
EVENTS = []  # (resourceVersion, type, object)
REVISION = [1]
COMPACTED = [0]  # resourceVersions at or below this are gone
TOKEN = [None]
OWNER_PATHS = {"replicasets": "ReplicaSet", "jobs": "Job", "deployments": "Deployment", "cronjobs": "CronJob"}


def stamp(obj):
    REVISION[0] += 1
    obj.setdefault("metadata", {})["resourceVersion"] = str(REVISION[0])
    return REVISION[0]


def apply(command):
    sys.stderr.write(f"apiserver {time.monotonic():.2f}: {command['op']}\n")
    with STATE:
        op = command["op"]
        if op == "put":
            obj = copy.deepcopy(command["object"])
            meta = obj["metadata"]
            if obj.get("kind", "Pod") != "Pod":
                stamp(obj)
                OWNERS[(obj["kind"], meta["namespace"], meta["name"])] = obj
            else:
                obj.setdefault("kind", "Pod")
                obj.setdefault("apiVersion", "v1")
                key = (meta["namespace"], meta["name"])
                kind = "MODIFIED" if key in PODS else "ADDED"
                revision = stamp(obj)
                PODS[key] = obj
                EVENTS.append((revision, kind, obj))
        elif op == "delete":
            obj = PODS.pop((command["namespace"], command["name"]))
            obj = copy.deepcopy(obj)
            revision = stamp(obj)
            EVENTS.append((revision, "DELETED", obj))
        elif op == "bookmark":
            revision = REVISION[0]
            EVENTS.append((revision, "BOOKMARK", {"kind": "Pod", "apiVersion": "v1",
                                                  "metadata": {"resourceVersion": str(revision)}}))
        elif op == "expire":
            COMPACTED[0] = REVISION[0]
            REVISION[0] += 1
            EVENTS.append((REVISION[0], "EXPIRE", None))
        STATE.notify_all()


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def on_node(pod, selector):
    if not selector:
        return True
    field, _, value = selector.partition("=")
    return field != "spec.nodeName" or pod.get("spec", {}).get("nodeName") == value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write(f"apiserver {time.monotonic():.2f}: " + (fmt % args) + "\n")

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {TOKEN[0]}":
            return self.reply(401, status(401, "Unauthorized", "Unauthorized"))
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if url.path == "/api/v1/pods":
            if query.get("watch") in ("true", "1"):
                return self.watch(query)
            return self.list(query)
        # /apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME
        if len(parts) == 7 and parts[0] == "apis" and parts[3] == "namespaces" and parts[5] in OWNER_PATHS:
            with STATE:
                obj = OWNERS.get((OWNER_PATHS[parts[5]], parts[4], parts[6]))
            if obj is None:
                return self.reply(404, status(404, "NotFound", f"{parts[5]} {parts[6]} not found"))
            return self.reply(200, obj)
        if url.path == "/version":
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-standin"})
        return self.reply(404, status(404, "NotFound", f"{url.path} is not served by the stand-in"))

    def list(self, query):
        with STATE:
            items = [p for p in PODS.values() if on_node(p, query.get("fieldSelector"))]
            body = {"kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(REVISION[0])}, "items": items}
        self.reply(200, body)

    def watch(self, query):
        start = int(query.get("resourceVersion") or 0)
        selector = query.get("fieldSelector")
        bookmarks = query.get("allowWatchBookmarks") == "true"
        timeout = float(query.get("timeoutSeconds") or 290)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event):
            data = (json.dumps(event) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            if start and start <= COMPACTED[0]:
                send({"type": "ERROR", "object": status(410, "Expired", f"too old resource version: {start}")})
                return
            with STATE:
                seen = len(EVENTS)
                pending = [e for e in EVENTS if e[0] > start]
            deadline = threading.Event()
            threading.Timer(timeout, deadline.set).start()
            while not deadline.is_set():
                for revision, kind, obj in pending:
                    if kind == "EXPIRE":
                        send({"type": "ERROR", "object": status(410, "Expired", "the watch's history was compacted")})
                        return
                    if kind == "BOOKMARK":
                        if bookmarks:
                            send({"type": "BOOKMARK", "object": obj})
                    elif on_node(obj, selector):
                        send({"type": kind, "object": obj})
                with STATE:
                    STATE.wait_for(lambda: len(EVENTS) > seen or deadline.is_set(), timeout=1)
                    pending = EVENTS[seen:]
                    seen = len(EVENTS)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert-dir", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    TOKEN[0] = args.token
    os.makedirs(args.cert_dir, exist_ok=True)
    # The CA is kept in the directory: a restarted stand-in is the same
    # server to its clients.
    ca_path, key_path = os.path.join(args.cert_dir, "kube-ca.pem"), os.path.join(args.cert_dir, "kube-ca.key")
    if os.path.exists(ca_path) and os.path.exists(key_path):
        with open(ca_path, "rb") as cert_file, open(key_path, "rb") as key_file:
            ca = trustme.CA.from_pem(cert_file.read(), key_file.read())
    else:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(ca_path)
        ca.private_key_pem.write_to_path(key_path)
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]} {ca_path}", flush=True)
    for line in sys.stdin:
        if line.strip():
            apply(json.loads(line))
            print("OK", flush=True)


if __name__ == "__main__":
    main()
