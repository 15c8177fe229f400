"""A small pytest suite whose tests call an LLM through the real openai SDK,
as a team's CI suite would; the base URL and CA of the local stand-in for
the provider come from LLM_BASE and LLM_CA. Run under `pytrace run`."""

import os

import httpx
import openai
import pytest

MODEL = "gpt-4o-mini"


def client():
    return openai.OpenAI(
        base_url=os.environ["LLM_BASE"] + "/v1",
        api_key="sk-test-suite-key",
        http_client=httpx.Client(verify=os.environ["LLM_CA"]),
    )


@pytest.mark.parametrize("topic", ["tides", "volcanoes", "comets", "glaciers"])
def test_summary_mentions_something(topic):
    reply = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"One line about {topic}."}]
    )
    assert reply.choices[0].message.content
