"""An ordinary program that carries secrets everywhere a program does, for
pytrace's secrets test: an API key in its environment (OPENAI_API_KEY) sent
as the Authorization header by the openai SDK, keys in a prompt, in request
headers, in query parameters and in URL paths, and a provider error that
quotes the key back. It knows nothing about pytrace.

  canary_app.py BASE CA_FILE [--api-key=KEY ...]

The secrets are read from the environment variables CANARY_* so that the
test alone knows them.
"""

import os
import ssl
import sys
import urllib.error
import urllib.request

import httpx
import openai

base, ca = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile=ca)
client = openai.OpenAI(base_url=base + "/v1", http_client=httpx.Client(verify=context), max_retries=0)

# The key travels in the Authorization header; the prompt quotes another.
client.chat.completions.create(model="gpt-4o-mini", messages=[
    {"role": "user", "content": f"My key is {os.environ['CANARY_PROMPT_KEY']}, keep it safe."}])
try:
    client.chat.completions.create(model="echo-key-error", messages=[{"role": "user", "content": "hi"}])
except openai.AuthenticationError:
    pass

secret = os.environ["CANARY_QUERY"]
query = f"api_key={secret}&client_secret={secret}&password={secret}&page=2"
paths = [
    f"/json?{query}",
    f"/bot123456789:{os.environ['CANARY_BOT_TOKEN']}/sendMessage",
    f"/v1/keys/{os.environ['CANARY_PATH_KEY']}/status",
]
for path in paths:
    request = urllib.request.Request(base + path, headers={
        "X-Api-Key": os.environ["CANARY_HEADER"], "Cookie": "session=" + os.environ["CANARY_HEADER"]})
    try:
        urllib.request.urlopen(request, context=context).read()
    except urllib.error.HTTPError:
        pass
print("FINISHED", flush=True)
