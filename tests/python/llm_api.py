"""Stand-ins for LLM providers, speaking their documented wire formats.

Used by server.py. Every response has known, fixed usage numbers, and every
stream waits FIRST_TOKEN_DELAY seconds before its first content-carrying
event (then STEP between events), so tests can check pytrace's token counts
and time to first chunk exactly. Nothing here calls a real provider.
"""

import json
import time

FIRST_TOKEN_DELAY = 0.2
STEP = 0.02
PIECES = ["Hello", " from", " the", " test", " server."]
TEXT = "".join(PIECES)


def no_delay(pieces=0):
    """For benchmarks: streams without pauses, optionally with `pieces` small chunks."""
    global FIRST_TOKEN_DELAY, STEP, PIECES
    FIRST_TOKEN_DELAY = 0
    STEP = 0
    if pieces:
        PIECES = [f" w{i}" for i in range(pieces)]

# Known usage, per API.
OPENAI_USAGE = {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
RESPONSES_USAGE = {"input_tokens": 19, "output_tokens": 6, "total_tokens": 25,
                   "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 2}}
ANTHROPIC_USAGE = {"input_tokens": 17, "output_tokens": 9, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0}
OLLAMA_COUNTS = {"prompt_eval_count": 26, "eval_count": 5}
EMBEDDING_TOKENS = 8


def dated(model):
    """OpenAI answers with a dated snapshot of the model asked for."""
    return model if model[-10:-6].isdigit() else model + "-2024-07-18"


def route(handler, path, request):
    """Handles an LLM API request; returns False when `path` is not one."""
    if path.endswith("/chat/completions"):
        chat_completions(handler, request)
    elif path.endswith("/responses"):
        responses(handler, request)
    elif path.endswith("/embeddings"):
        handler.send_json(200, {"object": "list", "model": request.get("model"),
                                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                                "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS}})
    elif path == "/v1/messages":
        anthropic_messages(handler, request)
    elif path in ("/api/chat", "/api/generate"):
        ollama(handler, request, chat=path == "/api/chat")
    else:
        return False
    return True


def first_tool(request):
    tools = request.get("tools") or []
    return tools[0].get("function", tools[0]).get("name") if tools else None


def special_tokens_stream(handler, request):
    """Hostile: a stream without usage whose text is 40,000 `<|endoftext|>`
    (token estimation must stay linear)."""
    piece = "<|endoftext|>" * 1000
    events = [(None, 0, json.dumps({"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 0,
                                     "model": "gpt-4o-mini",
                                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
              for _ in range(40)]
    handler.send_sse(events + [(None, 0, "[DONE]")])


GZIP_BOMB = None


def gzip_bomb(handler, request):
    """Hostile: a 256 MiB JSON body sent as about 260 KB of gzip."""
    global GZIP_BOMB
    if GZIP_BOMB is None:
        import zlib
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [compressor.compress(b'{"id": "chatcmpl-bomb", "padding": "')]
        block = b"A" * (1 << 20)
        parts += [compressor.compress(block) for _ in range(256)]
        parts.append(compressor.compress(b'"}') + compressor.flush())
        GZIP_BOMB = b"".join(parts)
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(GZIP_BOMB)))
    handler.end_headers()
    handler.wfile.write(GZIP_BOMB)


def echo_key_error(handler, request):
    """A provider error that quotes the caller's key in full (real providers
    quote part of it: "Incorrect API key provided: sk-proj-****abcd")."""
    key = handler.headers.get("Authorization", "").removeprefix("Bearer ")
    handler.send_json(401, {"error": {
        "message": f"Incorrect API key provided: {key}. Also tried Bearer {key} at "
                   f"https://api.example.com/v1?api_key={key}. You can find your API key at https://platform.openai.com.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})


HOSTILE = {"hostile-special-tokens": special_tokens_stream, "hostile-gzip-bomb": gzip_bomb,
           "echo-key-error": echo_key_error}


def chat_completions(handler, request):
    if request.get("model") in HOSTILE:
        return HOSTILE[request["model"]](handler, request)
    model = dated(request.get("model", "gpt-4o-mini"))
    tool = first_tool(request)
    if not request.get("stream"):
        time.sleep(FIRST_TOKEN_DELAY)
        message = {"role": "assistant", "content": None if tool else TEXT}
        if tool:
            message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {"name": tool, "arguments": "{\"city\": \"Paris\"}"}}]
        return handler.send_json(200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
            "usage": OPENAI_USAGE})

    def chunk(delta, finish=None):
        return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [(0, chunk({"role": "assistant", "content": ""}))]
    if tool:
        events.append((FIRST_TOKEN_DELAY, chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                  "function": {"name": tool, "arguments": ""}}]})))
        events.append((STEP, chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Paris\"}"}}]})))
    else:
        events += [(FIRST_TOKEN_DELAY if i == 0 else STEP, chunk({"content": piece})) for i, piece in enumerate(PIECES)]
    events.append((STEP, chunk({}, "tool_calls" if tool else "stop")))
    if (request.get("stream_options") or {}).get("include_usage"):
        events.append((0, dict(chunk({}), choices=[], usage=OPENAI_USAGE)))
    handler.send_sse([(None, delay, json.dumps(event)) for delay, event in events] + [(None, 0, "[DONE]")])


def responses(handler, request):
    model = dated(request.get("model", "gpt-4o-mini"))
    final = {"id": "resp_test", "object": "response", "created_at": int(time.time()), "status": "completed", "model": model,
             "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                         "content": [{"type": "output_text", "text": TEXT, "annotations": []}]}],
             "usage": RESPONSES_USAGE}
    if not request.get("stream"):
        time.sleep(FIRST_TOKEN_DELAY)
        return handler.send_json(200, final)
    started = dict(final, status="in_progress", output=[], usage=None)
    events = [("response.created", 0, {"type": "response.created", "sequence_number": 0, "response": started})]
    for i, piece in enumerate(PIECES):
        events.append(("response.output_text.delta", FIRST_TOKEN_DELAY if i == 0 else STEP,
                       {"type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_1",
                        "output_index": 0, "content_index": 0, "delta": piece}))
    events.append(("response.completed", STEP, {"type": "response.completed", "sequence_number": 9, "response": final}))
    handler.send_sse([(name, delay, json.dumps(data)) for name, delay, data in events])


def anthropic_messages(handler, request):
    model = request.get("model", "claude-sonnet-4-5")
    served = model if model[-8:].isdigit() else model + "-20250929"
    if not request.get("stream"):
        time.sleep(FIRST_TOKEN_DELAY)
        return handler.send_json(200, {
            "id": "msg_test", "type": "message", "role": "assistant", "model": served,
            "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": ANTHROPIC_USAGE})
    start = {"id": "msg_test", "type": "message", "role": "assistant", "model": served, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": dict(ANTHROPIC_USAGE, output_tokens=1)}
    events = [
        ("message_start", 0, {"type": "message_start", "message": start}),
        ("content_block_start", 0, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", 0, {"type": "ping"}),
    ]
    for i, piece in enumerate(PIECES):
        events.append(("content_block_delta", FIRST_TOKEN_DELAY if i == 0 else STEP,
                       {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
    events += [
        ("content_block_stop", 0, {"type": "content_block_stop", "index": 0}),
        ("message_delta", STEP, {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": ANTHROPIC_USAGE["output_tokens"]}}),
        ("message_stop", 0, {"type": "message_stop"}),
    ]
    handler.send_sse([(name, delay, json.dumps(data)) for name, delay, data in events])


def ollama(handler, request, chat):
    model = request.get("model", "llama3.2")

    def line(piece, done=False):
        body = {"model": model, "created_at": "2026-11-22T00:00:00Z", "done": done}
        if chat:
            body["message"] = {"role": "assistant", "content": piece}
        else:
            body["response"] = piece
        if done:
            body.update(OLLAMA_COUNTS, done_reason="stop", total_duration=1, eval_duration=1)
        return body

    if request.get("stream") is False:
        time.sleep(FIRST_TOKEN_DELAY)
        final = line(TEXT, done=True)
        return handler.send_json(200, final)
    lines = [(FIRST_TOKEN_DELAY if i == 0 else STEP, line(piece)) for i, piece in enumerate(PIECES)]
    lines.append((STEP, line("", done=True)))
    handler.send_chunks_timed([(delay, (json.dumps(body) + "\n").encode()) for delay, body in lines], "application/x-ndjson")
