"""A parent that forks worker processes (multiprocessing with the "fork"
start method, as pre-fork servers do) which each make an HTTPS request.
Like a server, it spends a moment starting up before it forks: pytrace sets
up Python context once the interpreter runs (within ~100 ms), and children
forked after that inherit it from their first instruction.
Usage: fork_workers.py URL CA"""

import multiprocessing
import ssl
import sys
import time
import urllib.request


def fetch(index):
    context = ssl.create_default_context(cafile=sys.argv[2])
    with urllib.request.urlopen(f"{sys.argv[1]}?worker={index}", context=context) as response:
        return response.status


if __name__ == "__main__":
    time.sleep(0.5)  # start-up
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(fetch, range(4)) == [200] * 4
