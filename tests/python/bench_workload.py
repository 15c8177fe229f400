"""Benchmark workloads for `cargo xtask bench`: real SDKs against the local
server (started with --no-delay), timed in-process.

  bench_workload.py --workload NAME --base URL --ca CA --count N

Prints "READY <pid>", waits for a line on stdin, runs a short warm-up, then
N operations, and prints one JSON line: {"workload", "count", "mean_us",
"p50_us"}; with --hold it then waits for another line before exiting (so a
recording of it can be replayed with its code objects still in memory).
Workloads:
  openai    sequential non-streaming chat completions (openai SDK)
  stream    sequential streaming chat completions, many small chunks
  async     64 concurrent requests (httpx.AsyncClient), timed per batch / 64
  requests  sequential plain GETs with requests
  cpu       a CPU-bound Python loop, no I/O
  rate      GETs at a fixed rate (--rate per second, for --count requests)
            over --connections keep-alive HTTPS connections (http.client, one
            thread per connection); prints the rate achieved instead of timings
  idle      nothing: an interpreter with ssl loaded that waits for its line
            (a node's idle Python processes)
  soak      a service's day in --seconds: openai SDK calls (plain, streamed,
            with tools), plain GETs with ever-new query strings, and now and
            then a new client (new connections), paced to --rate per second;
            prints the calls made
Hostile workloads (what pytrace must survive; errors in the SDK are expected):
  special-tokens  streams whose text is 40,000 `<|endoftext|>`, no usage
  gzip-bomb       responses of 256 MiB JSON sent as ~260 KB of gzip
  models          completions each naming a model never seen before
  connections     one request per new HTTPS connection, every connection
                  kept open (close events pytrace never sees)
Timed workloads also report "cpu_us_per_op": the process's own CPU time
(user + system, all threads) per operation, which includes the uprobe
handlers and BPF programs the kernel runs on its behalf.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

ARGS = None


def one_call(operation):
    """One timed operation (the function --trace-function benchmarks match)."""
    return operation()


def openai_client():
    import httpx
    import openai

    return openai.OpenAI(base_url=ARGS.base + "/v1", api_key="sk-bench", http_client=httpx.Client(verify=ARGS.ca))


def workload_openai():
    client = openai_client()
    messages = [{"role": "user", "content": "hi"}]
    return lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages)


def workload_stream():
    client = openai_client()
    messages = [{"role": "user", "content": "hi"}]

    def call():
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
            pass

    return call


def workload_requests():
    import requests

    session = requests.Session()
    return lambda: session.get(ARGS.base + "/json", verify=ARGS.ca).content


def hostile_call(model):
    client = openai_client()
    messages = [{"role": "user", "content": "hi"}]

    def call():
        try:
            for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                pass
        except Exception:  # noqa: BLE001  (a bomb is not valid JSON to the SDK either)
            pass

    return call


def workload_special_tokens():
    return hostile_call("hostile-special-tokens")


def workload_gzip_bomb():
    client = openai_client()
    messages = [{"role": "user", "content": "hi"}]

    def call():
        try:
            client.chat.completions.create(model="hostile-gzip-bomb", messages=messages)
        except Exception:  # noqa: BLE001
            pass

    return call


def workload_models():
    client = openai_client()
    messages = [{"role": "user", "content": "hi"}]
    counter = iter(range(10**9))
    return lambda: client.chat.completions.create(model=f"model-{next(counter)}", messages=messages)


def workload_connections():
    import http.client
    import ssl
    import urllib.parse

    url = urllib.parse.urlsplit(ARGS.base)
    context = ssl.create_default_context(cafile=ARGS.ca)
    kept = []

    def call():
        connection = http.client.HTTPSConnection(url.hostname, url.port, context=context)
        connection.request("GET", "/json")
        connection.getresponse().read()
        kept.append(connection)

    return call


def run_soak(seconds, rate):
    """Mixed traffic at a steady pace until `seconds` have passed."""
    import requests

    messages = [{"role": "user", "content": "hi"}]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    session, client = requests.Session(), openai_client()
    calls, errors = 0, 0
    start = time.perf_counter()
    next_at = start
    while time.perf_counter() - start < seconds:
        kind = calls % 5
        try:
            if kind == 0:
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            elif kind == 1:
                for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
                    pass
            elif kind == 2:
                client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
            else:
                session.get(f"{ARGS.base}/json?n=3&request={calls}", verify=ARGS.ca).content
        except Exception:  # noqa: BLE001  (counted: a soak keeps going)
            errors += 1
        calls += 1
        if calls % 500 == 0:
            session.close()
            client.close()
            session, client = requests.Session(), openai_client()
        next_at += 1 / rate
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return calls, errors, time.perf_counter() - start


def workload_cpu():
    def spin():
        total = 0
        for i in range(20000):
            total += i * i % 7
        return total

    return spin


def run_rate(count, rate, connections=4):
    """Requests paced to `rate` per second in total, spread over threads."""
    import http.client
    import ssl
    import threading
    from urllib.parse import urlsplit

    target = urlsplit(ARGS.base)
    context = ssl.create_default_context(cafile=ARGS.ca)
    per_thread = count // connections
    interval = connections / rate
    done = []

    def worker():
        conn = http.client.HTTPSConnection(target.hostname, target.port, context=context)
        next_at = time.perf_counter()
        for _ in range(per_thread):
            conn.request("GET", "/json")
            conn.getresponse().read()
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        done.append(per_thread)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - start


def run_async(count):
    import httpx

    async def main():
        async with httpx.AsyncClient(verify=ARGS.ca, limits=httpx.Limits(max_connections=64)) as client:
            async def batch():
                await asyncio.gather(*(client.get(ARGS.base + "/json") for _ in range(64)))

            for _ in range(3):
                await batch()
            samples = []
            for _ in range(max(1, count // 64)):
                start = time.perf_counter()
                await batch()
                samples.append((time.perf_counter() - start) / 64)
            return samples

    return asyncio.run(main())


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    ARGS = parser.parse_args()
    operation = None
    if ARGS.workload == "idle":
        import ssl  # noqa: F401  (mapped, as in a real service)

        print(f"READY {os.getpid()}", flush=True)
        sys.stdin.readline()
        print(json.dumps({"workload": "idle", "count": 0}), flush=True)
        return
    if ARGS.workload == "soak":
        print(f"READY {os.getpid()}", flush=True)
        sys.stdin.readline()
        calls, errors, seconds = run_soak(ARGS.seconds, ARGS.rate)
        print(json.dumps({"workload": "soak", "count": calls, "errors": errors, "seconds": seconds}), flush=True)
        return
    if ARGS.workload not in ("async", "rate"):
        operation = globals()["workload_" + ARGS.workload.replace("-", "_")]()
    print(f"READY {os.getpid()}", flush=True)
    sys.stdin.readline()
    if ARGS.workload == "rate":
        requests, seconds = run_rate(ARGS.count, ARGS.rate, ARGS.connections)
        print(json.dumps({"workload": "rate", "count": requests, "seconds": seconds, "rate": requests / seconds}))
        if ARGS.hold:
            sys.stdin.readline()
        return
    cpu_start = time.process_time()
    if ARGS.workload == "async":
        samples = run_async(ARGS.count)
        operations = (len(samples) + 3) * 64  # with the warm-up batches
    else:
        for _ in range(10):
            one_call(operation)
        samples = []
        for _ in range(ARGS.count):
            start = time.perf_counter()
            one_call(operation)
            samples.append(time.perf_counter() - start)
        operations = len(samples) + 10
    result = {
        "workload": ARGS.workload,
        "count": len(samples),
        "mean_us": statistics.fmean(samples) * 1e6,
        "p50_us": statistics.median(samples) * 1e6,
        "cpu_us_per_op": (time.process_time() - cpu_start) * 1e6 / operations,
    }
    print(json.dumps(result), flush=True)
    if ARGS.hold:
        sys.stdin.readline()


if __name__ == "__main__":
    main()
