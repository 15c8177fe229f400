"""An ordinary program that calls LLM APIs through the real SDKs (openai,
anthropic) and plain HTTP clients (requests, aiohttp for Ollama), used as
the traced target in pytrace's LLM tests. It knows nothing about pytrace.

  llm_client.py --base https://localhost:PORT --ca ca.pem --scenario openai-stream [--repeat N]

Prints "READY <pid>", waits for a line on stdin, makes its calls, prints one
JSON line per call with what the SDK returned, then "FINISHED".
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

import httpx

API_KEY = "sk-test-0123456789abcdefghijklmnop"  # never a real key; must not show in pytrace's output
MESSAGES = [{"role": "system", "content": "You are a test."}, {"role": "user", "content": "Say hello."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def report(**fields):
    print(json.dumps(fields), flush=True)


def openai_client(args, asynchronous=False):
    import openai

    context = ssl.create_default_context(cafile=args.ca)
    http = (httpx.AsyncClient if asynchronous else httpx.Client)(verify=context)
    kind = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return kind(base_url=args.base + "/v1", api_key=API_KEY, http_client=http, max_retries=0)


def anthropic_client(args):
    import anthropic

    context = ssl.create_default_context(cafile=args.ca)
    return anthropic.Anthropic(base_url=args.base, api_key=API_KEY, http_client=httpx.Client(verify=context), max_retries=0)


def openai_chat(args):
    completion = openai_client(args).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.3, max_tokens=50)
    report(model=completion.model, text=completion.choices[0].message.content, usage=completion.usage.total_tokens)


def openai_chat_async(args):
    async def main():
        client = openai_client(args, asynchronous=True)
        results = await asyncio.gather(*(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(3)))
        for completion in results:
            report(model=completion.model, text=completion.choices[0].message.content)

    asyncio.run(main())


def openai_stream(args, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = openai_client(args).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **options)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    report(model="gpt-4o-mini", text=text)


def openai_rag(args, prompt_bytes, include_usage):
    """A retrieval-augmented prompt of `prompt_bytes`: one TLS write larger
    than pytrace's capture limit, with the SDK's parameters after it."""
    passage = "Retrieved passage: the \"quarterly\" figures rose {0}. "
    context = "".join(passage.format(i) for i in range(prompt_bytes // len(passage) + 1))[:prompt_bytes]
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = openai_client(args).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": context + "\nSummarise."}],
        max_tokens=64, temperature=0.2, tools=TOOLS, stream=True, **options)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    report(model="gpt-4o-mini", text=text)


def openai_tools(args):
    completion = openai_client(args).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    report(tool=completion.choices[0].message.tool_calls[0].function.name)


def openai_responses(args, stream):
    client = openai_client(args)
    if stream:
        text = "".join(e.delta for e in client.responses.create(model="gpt-4.1-mini", input="Say hello.", stream=True)
                       if e.type == "response.output_text.delta")
    else:
        text = client.responses.create(model="gpt-4.1-mini", input="Say hello.", instructions="Be brief.").output_text
    report(text=text)


def openai_embeddings(args):
    result = openai_client(args).embeddings.create(model="text-embedding-3-small", input="hello")
    report(dimensions=len(result.data[0].embedding))


def anthropic_messages(args, stream):
    client = anthropic_client(args)
    if stream:
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES[1:]) as events:
            text = "".join(events.text_stream)
    else:
        text = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, system="Be brief.", messages=MESSAGES[1:]).content[0].text
    report(text=text)


def ollama_requests(args):
    import requests

    body = {"model": "llama3.2", "messages": MESSAGES[1:]}
    with requests.post(args.base + "/api/chat", json=body, stream=True, verify=args.ca) as response:
        text = "".join(json.loads(line)["message"]["content"] for line in response.iter_lines() if line)
    report(text=text)


def ollama_aiohttp(args):
    import aiohttp

    async def main():
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=args.ca) if args.ca else False)
        async with aiohttp.ClientSession(connector=connector) as session:
            body = {"model": "llama3.2", "prompt": "Say hello.", "stream": False}
            async with session.post(args.base + "/api/generate", json=body) as response:
                report(text=(await response.json())["response"])

    asyncio.run(main())


SCENARIOS = {
    "openai-chat": openai_chat,
    "openai-chat-async": openai_chat_async,
    "openai-stream": lambda a: openai_stream(a, include_usage=True),
    "openai-stream-no-usage": lambda a: openai_stream(a, include_usage=False),
    "openai-tools": openai_tools,
    "openai-rag-300k": lambda a: openai_rag(a, 300_000, include_usage=True),
    "openai-rag-1200k": lambda a: openai_rag(a, 1_200_000, include_usage=False),
    "openai-responses": lambda a: openai_responses(a, stream=False),
    "openai-responses-stream": lambda a: openai_responses(a, stream=True),
    "openai-embeddings": openai_embeddings,
    "anthropic-messages": lambda a: anthropic_messages(a, stream=False),
    "anthropic-stream": lambda a: anthropic_messages(a, stream=True),
    "ollama-requests": ollama_requests,
    "ollama-aiohttp": ollama_aiohttp,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.ca in (None, "-"):
        args.ca = None
    print(f"READY {os.getpid()}", flush=True)
    sys.stdin.readline()
    for _ in range(args.repeat):
        SCENARIOS[args.scenario](args)
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
