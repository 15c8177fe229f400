"""A program whose HTTPS requests are made from known places, for pytrace's
Python-context tests: a plain function, a method, a nested function, a
thread pool and asyncio.gather. Standard library only, so it runs on every
interpreter. Each request line carries a `# request: <case>` marker; the
test reads this file to know which line each span must point at.

  context_app.py --base https://localhost:PORT --ca ca.pem [--repeat N]

With --repeat N it instead makes N requests from one place, 50 ms apart,
and exits right after the last.
"""

import argparse
import asyncio
import concurrent.futures
import os
import ssl
import sys
import time
import urllib.request
from urllib.parse import urlsplit

ARGS = None


def context():
    return ssl.create_default_context(cafile=ARGS.ca)


def get(case):
    with urllib.request.urlopen(f"{ARGS.base}/json?case={case}", context=context()) as response:
        response.read()


def plain_function():
    with urllib.request.urlopen(f"{ARGS.base}/json?case=plain", context=context()) as response:  # request: plain
        response.read()


class Agent:
    def step(self):
        with urllib.request.urlopen(f"{ARGS.base}/json?case=method", context=context()) as response:  # request: method
            response.read()


def outer():
    def inner():
        with urllib.request.urlopen(f"{ARGS.base}/json?case=nested", context=context()) as response:  # request: nested
            response.read()

    inner()


def fetch_in_thread(index):
    with urllib.request.urlopen(f"{ARGS.base}/json?case=thread{index}", context=context()) as response:  # request: thread
        response.read()


async def fetch_async(index):
    url = urlsplit(ARGS.base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=context())
    request = f"GET /json?case=async{index} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())  # request: async
    await writer.drain()
    await reader.read()
    writer.close()


def repeated(index):
    with urllib.request.urlopen(f"{ARGS.base}/json?case=repeat{index}", context=context()) as response:  # request: repeat
        response.read()


async def gather():
    await asyncio.gather(*(fetch_async(i) for i in range(3)))


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--repeat", type=int, default=0)
    ARGS = parser.parse_args()
    print(f"READY {os.getpid()}", flush=True)
    sys.stdin.readline()
    if ARGS.repeat:
        for index in range(ARGS.repeat):
            if index:
                time.sleep(0.05)
            repeated(index)
    else:
        plain_function()
        Agent().step()
        outer()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(fetch_in_thread, range(2)))
        asyncio.run(gather())
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
