"""An "agent" whose steps make HTTPS requests, for pytrace's --trace-function
tests: Agent.run calls Agent.step twice (one request each); a coroutine
awaits one fetch and then gathers two more (each gathered fetch runs as a
task of its own); a function raises after its request. Standard library
only, so it runs on every interpreter.

  agent_app.py --base https://localhost:PORT --ca ca.pem
"""

import argparse
import asyncio
import os
import ssl
import sys
import urllib.request
from urllib.parse import urlsplit

ARGS = None


def context():
    return ssl.create_default_context(cafile=ARGS.ca)


def get(case):
    with urllib.request.urlopen(f"{ARGS.base}/json?case={case}", context=context()) as response:
        response.read()


class Agent:
    def run(self):
        for number in range(2):
            self.step(number)

    def step(self, number):
        get(f"step{number}")


async def fetch(case):
    url = urlsplit(ARGS.base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=context())
    writer.write(f"GET /json?case={case} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    await reader.read()
    writer.close()


async def fetch_pages():
    await fetch("page0")
    await asyncio.gather(fetch("page1"), fetch("page2"))


def failing():
    get("failing")
    raise ValueError("the step failed")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    ARGS = parser.parse_args()
    print(f"READY {os.getpid()}", flush=True)
    sys.stdin.readline()
    Agent().run()
    asyncio.run(fetch_pages())
    try:
        failing()
    except ValueError:
        pass
    get("outside")
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
