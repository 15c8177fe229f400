"""An LLM client made of the standard library only, for interpreters that run
in other root file systems (a chroot, a container): it asks the local
provider server for a chat completion from a named function, once on the main
thread and once on a named thread, and tells when it is done. The test reads
the `# request:` marker to know the line each span must point at.

  isolated_app.py --base https://HOST:PORT --ca CA.pem
"""

import argparse
import json
import ssl
import sys
import threading
import urllib.request


def ask_model(base, ca, question):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-isolated-test-key"}
    request = urllib.request.Request(f"{base}/v1/chat/completions?case={question}", data=body, headers=headers)
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca)) as response:  # request: ask
        return json.load(response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    args = parser.parse_args()
    print("READY", flush=True)
    sys.stdin.readline()
    ask_model(args.base, args.ca, "main")
    worker = threading.Thread(target=ask_model, name="llm-worker", args=(args.base, args.ca, "worker"))
    worker.start()
    worker.join()
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
