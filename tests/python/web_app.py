"""A web service whose handlers call an LLM, in the frameworks people deploy,
for pytrace's request-nesting tests. Each request names itself with `?id=N`
and its handler passes that on to every LLM call it makes (`?request=N` on
the provider URL), so a test can check that each call's span is the child of
exactly the request that caused it.

  web_app.py --framework fastapi|aiohttp|flask|threads|asyncio --port P --base LLM_URL --ca CA [--loop asyncio|uvloop]

`threads` (ThreadingHTTPServer + urllib) and `asyncio` (asyncio.start_server +
asyncio streams) use the standard library only, so they run on every interpreter.
  gunicorn ... 'web_app:flask_app()'   (LLM_BASE and LLM_CA in the environment)

Endpoints:
  /ask?id=N&calls=K    K chat completions (1 or 2), then a JSON answer
  /stream?id=N         relays a streamed chat completion to the client as SSE
  /background?id=N     answers at once; a task it spawns calls the LLM later
"""

import argparse
import json
import os
import ssl
import sys
import threading
import urllib.request

QUESTION = [{"role": "user", "content": "Say hello"}]


def llm_settings():
    return os.environ["LLM_BASE"], os.environ["LLM_CA"]


# --- asyncio frameworks: the openai SDK's AsyncOpenAI ------------------------------------------

def async_client():
    import httpx
    from openai import AsyncOpenAI

    base, ca = llm_settings()
    return AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-web-test-key", http_client=httpx.AsyncClient(verify=ca))


async def ask_async(client, request_id, calls):
    answers = []
    for _ in range(calls):
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, extra_query={"request": request_id}
        )
        answers.append(reply.choices[0].message.content)
    return answers


async def stream_async(client, request_id):
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, extra_query={"request": request_id}
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield f"data: {json.dumps(chunk.choices[0].delta.content)}\n\n"
    yield "data: [DONE]\n\n"


def fastapi_app():
    import asyncio

    from fastapi import BackgroundTasks, FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()
    client = async_client()
    background = set()

    @app.get("/ask")
    async def ask(id: str, calls: int = 1):
        return {"id": id, "answers": await ask_async(client, id, calls)}

    @app.get("/stream")
    async def stream(id: str):
        return StreamingResponse(stream_async(client, id), media_type="text/event-stream")

    @app.get("/background")
    async def spawn(id: str):
        async def later():
            await asyncio.sleep(0.3)
            await ask_async(client, f"{id}-background", 1)

        task = asyncio.get_running_loop().create_task(later())
        background.add(task)
        task.add_done_callback(background.discard)
        return {"id": id, "spawned": True}

    return app


def aiohttp_app():
    from aiohttp import web

    client = async_client()

    async def ask(request):
        request_id = request.query["id"]
        answers = await ask_async(client, request_id, int(request.query.get("calls", "1")))
        return web.json_response({"id": request_id, "answers": answers})

    app = web.Application()
    app.router.add_get("/ask", ask)
    return app


# --- threaded frameworks: the openai SDK's OpenAI, urllib ---------------------------------------

def flask_app():
    import httpx
    from flask import Flask, jsonify, request
    from openai import OpenAI

    base, ca = llm_settings()
    client = OpenAI(base_url=f"{base}/v1", api_key="sk-web-test-key", http_client=httpx.Client(verify=ca))
    app = Flask("web_app")

    @app.get("/ask")
    def ask():
        request_id = request.args["id"]
        answers = []
        for _ in range(int(request.args.get("calls", "1"))):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=QUESTION, extra_query={"request": request_id}
            )
            answers.append(reply.choices[0].message.content)
        return jsonify({"id": request_id, "answers": answers})

    return app


def ask_with_urllib(request_id):
    base, ca = llm_settings()
    body = json.dumps({"model": "gpt-4o-mini", "messages": QUESTION}).encode()
    request = urllib.request.Request(
        f"{base}/v1/chat/completions?request={request_id}",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-web-test-key"},
    )
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca)) as response:
        return json.load(response)["choices"][0]["message"]["content"]


def serve_threads(port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            query = parse_qs(urlsplit(self.path).query)
            request_id = query["id"][0]
            answers = [ask_with_urllib(request_id) for _ in range(int(query.get("calls", ["1"])[0]))]
            body = json.dumps({"id": request_id, "answers": answers}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("READY", flush=True)
    server.serve_forever()


async def ask_with_asyncio_streams(request_id):
    import asyncio
    from urllib.parse import urlsplit

    base, ca = llm_settings()
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=ssl.create_default_context(cafile=ca))
    body = json.dumps({"model": "gpt-4o-mini", "messages": QUESTION})
    writer.write(
        (
            f"POST /v1/chat/completions?request={request_id} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer sk-web-test-key\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
        ).encode()
    )
    await writer.drain()
    await reader.read()
    writer.close()


def serve_asyncio(port):
    import asyncio
    from urllib.parse import parse_qs, urlsplit

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        query = parse_qs(urlsplit(target).query)
        request_id = query["id"][0]
        for _ in range(int(query.get("calls", ["1"])[0])):
            await ask_with_asyncio_streams(request_id)
        body = json.dumps({"id": request_id}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    # Strong references to the connections' tasks: before 3.12, asyncio keeps
    # none, and the garbage collector may destroy a task that waits on a
    # reference cycle (the "Task was destroyed but it is pending" hang).
    running = set()

    def on_connection(reader, writer):
        task = asyncio.ensure_future(handle(reader, writer))
        running.add(task)
        task.add_done_callback(running.discard)

    async def serve():
        server = await asyncio.start_server(on_connection, "127.0.0.1", port)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", required=True, choices=["fastapi", "aiohttp", "flask", "threads", "asyncio"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base", required=True, help="the LLM provider's base URL")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    args = parser.parse_args()
    os.environ["LLM_BASE"], os.environ["LLM_CA"] = args.base, args.ca
    if args.framework == "threads":
        serve_threads(args.port)
    elif args.framework == "asyncio":
        serve_asyncio(args.port)
    elif args.framework == "flask":
        # Flask's development server: a thread per request (werkzeug).
        threading.Timer(0, lambda: print("READY", flush=True)).start()
        flask_app().run(host="127.0.0.1", port=args.port, threaded=True)
    elif args.framework == "fastapi":
        import uvicorn

        # Ready once the port accepts connections (the test waits for that).
        threading.Timer(0, lambda: print("READY", flush=True)).start()
        uvicorn.run(fastapi_app(), host="127.0.0.1", port=args.port, loop=args.loop, log_level="warning")
    else:
        from aiohttp import web

        print("READY", flush=True)
        web.run_app(aiohttp_app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    sys.exit(main())
