"""A personal key in the clients people use (README "Use it from your chat app"): the OpenAI SDK —
sync, async and streaming — and curl in a subprocess, against a running app and the loopback upstream,
with base URL ``http://host:port/v1``."""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import openai
import pytest

from tests.chat_helpers import add_channel, log_rows, unique_model
from tests.helpers import HANG_SECONDS, RunningApp
from tests.upstream_server import ANSWER_WORDS, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def personal_key(client: httpx.Client, unique_email: str) -> str:
    client.post("/api/auth/register", json={"email": unique_email, "password": "password-1"})
    token = client.post("/api/auth/login", json={"email": unique_email, "password": "password-1"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    created = client.post("/api/keys", json={"name": "sdk"}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


@pytest.fixture
def model(client: httpx.Client, admin_headers: dict[str, str], upstream: UpstreamServer) -> str:
    name = unique_model("sdk-key")
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=name)
    return name


def test_openai_sdk_sync_async_and_streaming(live_app: RunningApp, personal_key: str, model: str) -> None:
    base_url = f"{live_app.base_url}/v1"
    sdk = openai.OpenAI(base_url=base_url, api_key=personal_key, max_retries=0)
    assert model in [m.id for m in sdk.models.list()]
    completion = sdk.chat.completions.create(model=model, messages=MESSAGES)
    assert completion.choices[0].message.content == ANSWER
    chunks = list(sdk.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER

    async def with_async_client() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=base_url, api_key=personal_key, max_retries=0) as client:
            answer = await client.chat.completions.create(model=model, messages=MESSAGES)
            stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
            streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return answer.choices[0].message.content or "", streamed

    assert asyncio.run(with_async_client()) == (ANSWER, ANSWER)
    rows = log_rows(live_app.db_path, model, expect=4)
    assert len({row["api_key_id"] for row in rows}) == 1 and rows[0]["api_key_id"] is not None

    wrong = openai.OpenAI(base_url=base_url, api_key="sk-" + "x" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.chat.completions.create(model=model, messages=MESSAGES)
    assert refused.value.status_code == 401


def test_curl(live_app: RunningApp, personal_key: str, model: str) -> None:
    def curl(*args: str) -> tuple[int, str]:
        done = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {personal_key}", *args],
            capture_output=True,
            text=True,
            timeout=HANG_SECONDS,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body

    status, body = curl(f"{live_app.base_url}/v1/models")
    assert status == 200 and model in [m["id"] for m in json.loads(body)["data"]]
    payload = json.dumps({"model": model, "messages": MESSAGES})
    status, body = curl(
        "-H", "Content-Type: application/json", "-d", payload, f"{live_app.base_url}/v1/chat/completions"
    )
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == ANSWER
    stream = json.dumps({"model": model, "messages": MESSAGES, "stream": True})
    status, body = curl(
        "-N",
        "-H",
        "Content-Type: application/json",
        "-d",
        stream,
        f"{live_app.base_url}/api/v1/chat/completions",
    )
    assert status == 200 and body.rstrip().endswith("data: [DONE]")
