"""A program whose HTTPS goes through OpenSSL linked statically into a shared
object (tests/fixtures/static_tls_client.c, loaded with ctypes) rather than
the system libssl: it asks the local provider server for a chat completion
from a named function, twice, and reports each answer's status line.

  static_tls_app.py --base https://localhost:PORT --ca CA.pem --library LIB.so [--load-late]

With --load-late the library is loaded only after "go" (dlopen while traced),
then the program waits half a second before its requests.
"""

import argparse
import ctypes
import json
import sys
import time
from urllib.parse import urlsplit


def ask_with_static_tls(library, base, ca, question):
    url = urlsplit(base)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]})
    request = (
        f"POST /v1/chat/completions?case={question} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer sk-static-test-key\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )
    response = ctypes.create_string_buffer(1 << 16)
    kept = library.https_request(url.hostname.encode(), url.port, ca.encode(), request.encode(), response, len(response))  # request: static
    if kept <= 0:
        raise SystemExit(f"the static TLS client failed ({kept})")
    return response.value.split(b"\r\n", 1)[0].decode()


def load(path):
    library = ctypes.CDLL(path)
    library.https_request.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    return library


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--library", required=True)
    parser.add_argument("--load-late", action="store_true")
    args = parser.parse_args()
    if not args.load_late:
        library = load(args.library)
    print("READY", flush=True)
    sys.stdin.readline()
    if args.load_late:
        library = load(args.library)
        time.sleep(0.5)
    for question in ("first", "second"):
        print(json.dumps({"status": ask_with_static_tls(library, args.base, args.ca, question)}), flush=True)
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
