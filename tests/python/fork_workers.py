"""A parent that forks worker processes (multiprocessing with the "fork"
start method, as pre-fork servers do) which each make an HTTPS request.
Usage: fork_workers.py URL CA"""

import multiprocessing
import ssl
import sys
import urllib.request


def fetch(index):
    context = ssl.create_default_context(cafile=sys.argv[2])
    with urllib.request.urlopen(f"{sys.argv[1]}?worker={index}", context=context) as response:
        return response.status


if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(fetch, range(4)) == [200] * 4
