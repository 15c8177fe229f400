"""Sends requests to a web service all at once and reports each one, for
pytrace's request-nesting tests.

  web_load.py --base http://127.0.0.1:PORT --paths /ask?calls=1,/stream --count N [--traceparent]

Request i goes to paths[i % len(paths)] with `id=i` added; with --traceparent
each carries a W3C traceparent of its own. One JSON line per request
(id, path, status, trace_id), then FINISHED.
"""

import argparse
import concurrent.futures
import json
import secrets
import time
import urllib.error
import urllib.request


def send(base, path, request_id, traceparent):
    separator = "&" if "?" in path else "?"
    request = urllib.request.Request(f"{base}{path}{separator}id={request_id}")
    trace_id = None
    if traceparent:
        trace_id = secrets.token_hex(16)
        request.add_header("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")
    for attempt in range(100):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                return {"id": str(request_id), "path": path, "status": response.status, "trace_id": trace_id}
        except urllib.error.URLError as error:
            # The service may still be binding its port.
            if not isinstance(error.reason, ConnectionRefusedError) or attempt == 99:
                raise
            time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--paths", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--traceparent", action="store_true")
    args = parser.parse_args()
    paths = args.paths.split(",")
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.count) as pool:
        futures = [pool.submit(send, args.base, paths[i % len(paths)], i, args.traceparent) for i in range(args.count)]
        for future in futures:
            print(json.dumps(future.result()), flush=True)
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
