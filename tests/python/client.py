"""An ordinary Python HTTP client program, used as the traced target.

It makes the requests it is told to with one of the real client libraries
(urllib, http.client, requests, httpx, httpx async, aiohttp, openai) and
prints one JSON line per completed request, so tests can compare pytrace's
spans with what the program did. Nothing in it knows about pytrace.

  client.py --lib requests --base https://localhost:PORT --ca ca.pem \
            --paths "GET /json,POST /echo" [--repeat N] [--wait-for-go]

--wait-for-go prints "READY <pid>" and waits for a line on stdin before the
first request; with --late-import no TLS-capable module is imported before
that line arrives.
"""

import argparse
import inspect
import json
import os
import sys
import time


def parse_plan(paths, repeat):
    plan = []
    for item in paths.split(","):
        method, _, path = item.strip().partition(" ")
        if not path:
            method, path = "GET", method
        plan.append((method.upper(), path))
    return plan * repeat


def body_for(method, path=""):
    """A JSON body for POST/PUT; `?size=N` in the path asks for about N bytes."""
    if method not in ("POST", "PUT"):
        return None
    size = 100
    if "size=" in path:
        size = int(path.split("size=")[1].split("&")[0])
    return json.dumps({"message": "hello", "pad": "x" * size}).encode()


def headers_for(args):
    headers = {"Content-Type": "application/json", "User-Agent": "pytrace-test-client"}
    if args.secret:
        headers["Authorization"] = f"Bearer {args.secret}"
        headers["x-api-key"] = args.secret
    if args.traceparent:
        headers["traceparent"] = args.traceparent
    return headers


def url_for(args, path):
    if args.secret:
        path += ("&" if "?" in path else "?") + f"key={args.secret}"
    return args.base + path


def report(method, path, status):
    print(json.dumps({"method": method, "path": path.split("?")[0], "status": status}), flush=True)


def tls_context(args):
    import ssl

    return ssl.create_default_context(cafile=args.ca)


def run_urllib(args, plan):
    import urllib.error
    import urllib.request

    context = tls_context(args)
    for method, path in plan:
        request = urllib.request.Request(url_for(args, path), data=body_for(method, path), method=method, headers=headers_for(args))
        try:
            with urllib.request.urlopen(request, context=context) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            error.read()
            status = error.code
        report(method, path, status)


CONNECTIONS = {}


def http_client_connection(args):
    """One keep-alive connection per base URL, reused across rounds."""
    import http.client
    from urllib.parse import urlsplit

    if args.base not in CONNECTIONS:
        base = urlsplit(args.base)
        if base.scheme == "https":
            CONNECTIONS[args.base] = http.client.HTTPSConnection(base.hostname, base.port, context=tls_context(args))
        else:
            CONNECTIONS[args.base] = http.client.HTTPConnection(base.hostname, base.port)
    return CONNECTIONS[args.base]


def run_http_client(args, plan):
    connection = http_client_connection(args)
    for method, path in plan:
        connection.request(method, url_for(args, path)[len(args.base):], body=body_for(method, path), headers=headers_for(args))
        response = connection.getresponse()
        response.read()
        report(method, path, response.status)
        if response.will_close:
            connection.close()


SESSIONS = {}


def run_requests(args, plan):
    import requests

    session = SESSIONS.setdefault("requests", requests.Session())
    for method, path in plan:
        response = session.request(method, url_for(args, path), data=body_for(method, path), headers=headers_for(args), verify=args.ca)
        response.content
        report(method, path, response.status_code)


def run_httpx(args, plan):
    import httpx

    with httpx.Client(verify=tls_context(args) if args.ca else True) as client:
        for method, path in plan:
            response = client.request(method, url_for(args, path), content=body_for(method, path), headers=headers_for(args))
            response.read()
            report(method, path, response.status_code)


async def run_httpx_async(args, plan):
    import httpx

    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(verify=tls_context(args) if args.ca else True, limits=limits) as client:
        async def one(method, path):
            response = await client.request(method, url_for(args, path), content=body_for(method, path), headers=headers_for(args))
            await response.aread()
            report(method, path, response.status_code)

        await gather(*(one(m, p) for m, p in plan))


async def run_aiohttp(args, plan):
    import aiohttp

    connector = aiohttp.TCPConnector(ssl=tls_context(args) if args.ca else False, limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(method, path):
            async with session.request(method, url_for(args, path), data=body_for(method, path), headers=headers_for(args)) as response:
                await response.read()
                report(method, path, response.status)

        await gather(*(one(m, p) for m, p in plan))


def run_openai(args, plan):
    import httpx
    import openai

    client = openai.OpenAI(
        base_url=args.base + "/v1",
        api_key=args.secret or "sk-test-not-a-real-key",
        http_client=httpx.Client(verify=tls_context(args) if args.ca else True),
        max_retries=0,
    )
    for _ in plan:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
        report("POST", "/v1/chat/completions", 200 if completion.choices else 0)


async def gather(*coroutines):
    import asyncio

    return await asyncio.gather(*coroutines)


RUNNERS = {
    "urllib": run_urllib,
    "http.client": run_http_client,
    "requests": run_requests,
    "httpx": run_httpx,
    "httpx-async": run_httpx_async,
    "aiohttp": run_aiohttp,
    "openai": run_openai,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=sorted(RUNNERS), required=True)
    parser.add_argument("--base", required=True, help="https://localhost:PORT")
    parser.add_argument("--ca", help="CA bundle that signed the server's certificate")
    parser.add_argument("--paths", default="GET /json")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--secret", help="API key to send in headers and the query")
    parser.add_argument("--wait-for-go", action="store_true")
    parser.add_argument("--late-import", action="store_true", help="import nothing TLS-capable before go")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between rounds")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--linger", type=float, default=0.0, help="seconds to stay alive after the last request")
    parser.add_argument("--also-base", help="run the plan against this base URL too (e.g. plain HTTP beside HTTPS)")
    parser.add_argument("--traceparent", help="send this W3C traceparent (as an app with its own tracing does)")
    parser.add_argument("--prime", action="store_true", help="make the plan's first request before READY (keep-alive)")
    args = parser.parse_args()
    if args.ca == "-":
        args.ca = None

    runner = RUNNERS[args.lib]
    if not args.late_import and args.base.startswith("https"):
        import ssl  # noqa: F401  (what any HTTPS program has loaded early)
    plan = parse_plan(args.paths, args.repeat)
    if args.prime:
        runner(args, plan[:1])
    if args.wait_for_go:
        print(f"READY {os.getpid()}", flush=True)
        sys.stdin.readline()
    bases = [args.base] + ([args.also_base] if args.also_base else [])
    for round_index in range(args.rounds):
        if round_index:
            time.sleep(args.interval)
        for base in bases:
            args.base = base
            result = runner(args, plan)
            if inspect.iscoroutine(result):
                import asyncio  # imports ssl: only when an async client runs

                asyncio.run(result)
    print("FINISHED", flush=True)
    time.sleep(args.linger)


if __name__ == "__main__":
    main()
