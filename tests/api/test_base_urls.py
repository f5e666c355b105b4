"""Base URLs as people type them, and the OpenAI aliases under /v1 (issue 17 point 5)."""

from __future__ import annotations

import httpx
import pytest

from services.channel_fields import base_url_notes, completions_url, normalize_base_url
from services.i18n import translate
from tests.chat_helpers import add_channel, chat_body, read_sse, unique_model
from tests.upstream_server import UpstreamServer


@pytest.mark.parametrize(
    ("typed", "called"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("http://ollama:11434", "http://ollama:11434/v1/chat/completions"),
        ("http://ollama:11434/", "http://ollama:11434/v1/chat/completions"),
        (
            "https://r.openai.azure.com/openai/deployments/gpt4o?api-version=2024-06-01",
            "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01",
        ),
        ("https://api.deepseek.com", "https://api.deepseek.com/v1/chat/completions"),
    ],
)
def test_the_url_called(typed: str, called: str) -> None:
    assert completions_url(normalize_base_url(typed)) == called


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_notes_say_what_was_changed(language: str) -> None:
    def words(url: str) -> list[str]:
        return [translate(note, language) for note in base_url_notes(url)]

    assert any("/chat/completions" in note for note in words("https://x/v1/chat/completions"))
    assert any("/v1" in note for note in words("http://ollama:11434"))
    assert any("api-version" in note for note in words("https://x/v1?api-version=1"))
    assert base_url_notes("https://x/v1") == []


def test_pasted_full_url_bare_host_and_query_reach_the_right_place(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    full = unique_model("full")
    created = add_channel(
        client, admin_headers, base_url=upstream.base_url("ok") + "/chat/completions", model=full
    )
    assert created["base_url"] == upstream.base_url("ok") + "/chat/completions", "stored as typed"
    assert created["call_url"] == upstream.base_url("ok") + "/chat/completions"
    assert client.post("/api/chat/completions", json=chat_body(full, stream=False)).status_code == 200

    bare = unique_model("bare")
    root = f"http://127.0.0.1:{upstream.port}"
    created = add_channel(client, admin_headers, base_url=root, model=bare)
    assert created["call_url"] == root + "/v1/chat/completions"
    assert client.post("/api/chat/completions", json=chat_body(bare, stream=False)).status_code == 200
    assert [item.scenario for item in upstream.received if item.body.get("model") == bare] == ["root"]

    azure = unique_model("azure")
    add_channel(
        client, admin_headers, base_url=upstream.base_url("ok") + "?api-version=2024-06-01", model=azure
    )
    response = client.post("/api/chat/completions", json=chat_body(azure, stream=True))
    assert response.status_code == 200 and read_sse(response)[-1] == "[DONE]"
    sent = [item for item in upstream.received if item.body.get("model") == azure]
    assert sent[-1].path == "/ok/v1/chat/completions" and sent[-1].query == "api-version=2024-06-01"


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_openai_aliases_behave_like_the_api_routes(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, prefix: str
) -> None:
    model = unique_model("alias")
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    listed = client.get(f"{prefix}/models")
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert listed.json() == client.get("/api/models").json()

    answer = client.post(f"{prefix}/chat/completions", json=chat_body(model, stream=False))
    assert answer.status_code == 200 and answer.json()["object"] == "chat.completion"
    streamed = client.post(f"{prefix}/chat/completions", json=chat_body(model, stream=True))
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert read_sse(streamed)[-1] == "[DONE]"

    unknown = client.post(f"{prefix}/chat/completions", json=chat_body(unique_model(), stream=False))
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "model_not_found"
    bad = client.post(f"{prefix}/chat/completions", json={"model": model})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "validation_error"
    invalid_token = client.post(
        f"{prefix}/chat/completions",
        json=chat_body(model, stream=False),
        headers={"Authorization": "Bearer nonsense"},
    )
    assert invalid_token.status_code == 401
    missing = client.get(f"{prefix}/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_openai_sdk_with_a_v1_base_url(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, unique_email: str
) -> None:
    openai = pytest.importorskip("openai")
    model = unique_model("sdk")
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    client.post("/api/auth/register", json={"email": unique_email, "password": "password-1"})
    token = client.post("/api/auth/login", json={"email": unique_email, "password": "password-1"}).json()
    base = str(client.base_url).rstrip("/") + "/v1"
    sdk = openai.OpenAI(base_url=base, api_key=token["access_token"], max_retries=0)
    assert model in [item.id for item in sdk.models.list()]
    answer = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
