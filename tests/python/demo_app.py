"""A small, ordinary Python program for the demo: it asks an (OpenAI-compatible)
model for help, fetches data with requests, posts results with httpx, reads a
streamed response, and occasionally hits a missing page. It knows nothing
about pytrace; the demo attaches to it while it runs.
"""

import argparse
import ssl
import time

import httpx
import openai
import requests


def ask_model(llm):
    """One LLM call; every other one streams its answer."""
    ask_model.calls = getattr(ask_model, "calls", 0) + 1
    messages = [{"role": "user", "content": "Summarise the data"}]
    if ask_model.calls % 2:
        return llm.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = llm.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                         stream_options={"include_usage": True})
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.ca)
    api_key = "sk-demo-0123456789abcdefSECRET"  # must never show up in pytrace's output
    llm = openai.OpenAI(base_url=args.base + "/v1", api_key=api_key, http_client=httpx.Client(verify=context))
    session = requests.Session()
    uploads = httpx.Client(verify=context, headers={"Authorization": f"Bearer {api_key}"})

    deadline = time.monotonic() + args.seconds
    step = 0
    while time.monotonic() < deadline:
        work = step % 5
        if work in (0, 3):
            ask_model(llm)
        elif work == 1:
            session.get(args.base + "/json?n=50", verify=args.ca).json()
        elif work == 2:
            uploads.post(args.base + "/echo", json={"result": "x" * 300})
        else:
            session.get(args.base + f"/status/404?key={api_key}", verify=args.ca)
        step += 1
        time.sleep(0.4)


if __name__ == "__main__":
    main()
