"""The program traced inside each kernel of the kernel matrix (a QEMU guest
with Debian's python3 and nothing from PyPI): HTTPS and plain-HTTP requests
to the local server, and an OpenAI-style chat completion, plain and
streamed, all with the standard library (urllib).

  kernel_matrix_client.py --https https://localhost:PORT --http http://127.0.0.1:PORT --ca ca.pem

Prints one JSON line per completed request, as tests/python/client.py does.
"""

import argparse
import json
import ssl
import urllib.request


def call(url, context, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer sk-matrix-0000000000000000"})
    with urllib.request.urlopen(request, context=context) as response:
        response.read()
        print(json.dumps({"url": url, "status": response.status}), flush=True)


def ask_model(base, context, stream):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    call(base + "/v1/chat/completions", context, body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--https", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--ca", required=True)
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    call(args.https + "/json?n=5", context)
    call(args.https + "/echo", context, {"message": "hello"})
    ask_model(args.https, context, stream=False)
    ask_model(args.https, context, stream=True)
    call(args.http + "/json?n=5", None)


if __name__ == "__main__":
    main()
