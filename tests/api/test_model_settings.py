"""Per-model settings (/api/admin/models), images in chat requests and the sampling parameters reaching
the upstream (docs/api.md#model-settings)."""

from __future__ import annotations

import base64

import httpx

from tests.chat_helpers import add_channel, unique_model
from tests.helpers import HANG_SECONDS, wait_until
from tests.upstream_server import UpstreamServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAfbLI3wAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def _image_message(text: str = "What is in this picture?") -> dict:
    return {
        "role": "user",
        "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": PNG_URL}}],
    }


def _channel(client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, scenario: str) -> str:
    model = unique_model(scenario)
    add_channel(client, admin_headers, base_url=upstream.base_url(scenario), model=model)
    return model


def test_admin_sets_defaults_and_vision_and_they_are_audited(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = _channel(client, admin_headers, upstream, "ok")
    fresh = client.get(f"/api/admin/models/{model}", headers=admin_headers)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json() == {
        "model": model,
        "system_prompt": None,
        "temperature": None,
        "top_p": None,
        "max_tokens": None,
        "vision": False,
        "served": True,
    }
    body = {"system_prompt": "Be brief.", "temperature": 0.3, "top_p": 0.9, "max_tokens": 256, "vision": True}
    saved = client.put(f"/api/admin/models/{model}", json=body, headers=admin_headers)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"model": model, "served": True, **body}
    cleared = client.put(f"/api/admin/models/{model}", json={"temperature": None}, headers=admin_headers)
    assert cleared.json()["temperature"] is None and cleared.json()["top_p"] == 0.9
    listed = client.get("/api/admin/models", headers=admin_headers).json()
    assert next(m for m in listed if m["model"] == model)["vision"] is True
    models = client.get("/api/models").json()["data"]
    assert [m["vision"] for m in models if m["id"] == model] == [True]
    audit = client.get("/api/admin/audit", params={"action": "model"}, headers=admin_headers).json()
    rows = [row for row in audit["items"] if row["target"] == f"model:{model}"]
    assert rows and rows[-1]["changes"]["system_prompt"] == "set"  # never the prompt's text
    assert "Be brief." not in str(audit)


def test_bad_model_settings_are_refused_naming_the_field(client: httpx.Client, admin_headers: dict) -> None:
    for body, field in [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"vision": "yes"}, "vision"),
        ({"colour": "red"}, "colour"),
    ]:
        response = client.put("/api/admin/models/some-model", json=body, headers=admin_headers)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text
    assert client.put("/api/admin/models/x", json={"vision": True}).status_code == 401


def test_images_reach_a_vision_model_and_are_refused_for_others(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = _channel(client, admin_headers, upstream, "ok")
    body = {"model": model, "messages": [_image_message()], "stream": False}
    refused = client.post("/api/chat/completions", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "images_not_supported"
    assert not [r for r in upstream.received if r.body.get("model") == model]  # never reached upstream
    marked = client.put(f"/api/admin/models/{model}", json={"vision": True}, headers=admin_headers)
    assert marked.status_code == 200
    answer = client.post(
        "/api/chat/completions", json={**body, "temperature": 0.2, "top_p": 0.5, "max_tokens": 64}
    )
    assert answer.status_code == 200, answer.text
    sent = [r.body for r in upstream.received if r.body.get("model") == model]
    assert len(sent) == 1
    assert sent[0]["messages"] == [_image_message()]
    assert (sent[0]["temperature"], sent[0]["top_p"], sent[0]["max_tokens"]) == (0.2, 0.5, 64)


def test_a_system_prompt_of_100k_characters_is_passed_on(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = _channel(client, admin_headers, upstream, "ok")
    prompt = "你好" * 50_000
    body = {
        "model": model,
        "stream": True,
        "messages": [{"role": "system", "content": prompt}, {"role": "user", "content": "hi"}],
    }
    with client.stream("POST", "/api/chat/completions", json=body, timeout=HANG_SECONDS) as response:
        assert response.status_code == 200
        response.read()
    wait_until(lambda: any(r.body.get("model") == model for r in upstream.received))
    sent = next(r.body for r in upstream.received if r.body.get("model") == model)
    assert sent["messages"][0] == {"role": "system", "content": prompt}
