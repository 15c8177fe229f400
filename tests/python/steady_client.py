"""A long-running HTTPS client that checks every answer: it POSTs a fresh
random JSON payload to the test server (which answers with its length) about 50 times a
second over one keep-alive connection (http.client, real TLS) and checks
that the server's reply names the payload's exact length and path. Nothing
in it knows about pytrace; the tests attach and detach around it.

  steady_client.py --base https://localhost:PORT --ca ca.pem [--rate 50]

Prints "READY <pid>", runs until a line arrives on stdin, then prints
{"requests": N, "wrong": W, "errors": E} and exits.
"""

import argparse
import http.client
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.base)
    context = ssl.create_default_context(cafile=args.ca)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print(f"READY {os.getpid()}", flush=True)

    counts = {"requests": 0, "wrong": 0, "errors": 0}
    connection = None
    interval = 1.0 / args.rate
    while not stop.is_set():
        started = time.monotonic()
        payload = json.dumps({"data": secrets.token_hex(secrets.randbelow(2000) + 1)}).encode()
        path = f"/echo/{counts['requests']}"
        try:
            if connection is None:
                connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=10)
            connection.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            counts["requests"] += 1
            if response.status != 200 or answer != {"received": len(payload), "path": path}:
                counts["wrong"] += 1
        except (OSError, http.client.HTTPException, ValueError):
            counts["errors"] += 1
            connection = None
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
