"""The guest access and registration switches (``guest_enabled``, ``registration_enabled``) on the API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_auth import assert_error, login, register
from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.upstream_server import UpstreamServer

MODEL_LISTS = ("/api/chat/models", "/api/models", "/v1/models", "/api/v1/models")
COMPLETIONS = ("/api/chat/completions", "/v1/chat/completions", "/api/v1/chat/completions")


def put_config(client: httpx.Client, headers: dict[str, str], **values: object) -> dict:
    answer = client.put("/api/admin/config", json=values, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def switches(client: httpx.Client, admin_headers: dict[str, str]) -> Iterator[None]:
    """Both switches on again after the test, whatever it did (the app is shared by the worker's tests)."""
    yield
    put_config(client, admin_headers, guest_enabled=True, registration_enabled=True)


def test_defaults_are_on_and_reported(
    client: httpx.Client, admin_headers: dict[str, str], switches: None
) -> None:
    config = client.get("/api/admin/config", headers=admin_headers).json()
    assert config["guest_enabled"] is True and config["registration_enabled"] is True
    changed = put_config(client, admin_headers, guest_enabled=False)
    assert changed["guest_enabled"] is False and changed["registration_enabled"] is True
    assert client.get("/api/admin/config", headers=admin_headers).json()["guest_enabled"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"guest_enabled": "false"},
        {"guest_enabled": 0},
        {"registration_enabled": 1},
        {"registration_enabled": "no"},
        {"guest_rpm": False},
    ],
)
def test_switches_take_json_booleans_only(
    client: httpx.Client, admin_headers: dict[str, str], body: dict, switches: None
) -> None:
    answer = assert_error(
        client.put("/api/admin/config", json=body, headers=admin_headers), 422, "validation_error"
    )
    assert answer["error"]["message"].startswith(next(iter(body)))
    config = client.get("/api/admin/config", headers=admin_headers).json()
    assert config["guest_enabled"] is True and config["registration_enabled"] is True, "nothing changed"


def test_guests_off_asks_for_sign_in_on_every_chat_route(
    client: httpx.Client,
    admin_headers: dict[str, str],
    unique_email: str,
    upstream: UpstreamServer,
    switches: None,
) -> None:
    model = unique_model()
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    register(client, unique_email)
    user = {"Authorization": f"Bearer {login(client, unique_email).json()['access_token']}"}
    sent = len(upstream.requests_for("ok"))

    put_config(client, admin_headers, guest_enabled=False)
    for path in MODEL_LISTS:  # the very next request: no wait
        assert_error(client.get(path), 401, "authentication_required")
        assert client.get(path, headers=user).status_code == 200, path
    for path in COMPLETIONS:
        for stream in (False, True):
            answer = client.post(path, json=chat_body(model, stream=stream))
            body = assert_error(answer, 401, "authentication_required")
            assert "登录" in body["error"]["message"]
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert client.post(path, json=chat_body(model, stream=False), headers=user).status_code == 200
    # an unknown model tells a guest nothing either: the sign-in comes first
    assert_error(
        client.post("/api/chat/completions", json=chat_body("no-such-model", stream=False)),
        401,
        "authentication_required",
    )
    assert len(upstream.requests_for("ok")) == sent + len(COMPLETIONS), "a refused guest reached upstream"
    # an invalid token stays what it was: not a guest
    assert_error(client.get("/api/models", headers={"Authorization": "Bearer nonsense"}), 401, "unauthorized")

    put_config(client, admin_headers, guest_enabled=True)
    assert client.get("/api/chat/models").status_code == 200
    assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 200


def test_registration_closed_is_403_and_open_again_at_once(
    client: httpx.Client, admin_headers: dict[str, str], unique_email: str, switches: None
) -> None:
    put_config(client, admin_headers, registration_enabled=False)
    body = assert_error(register(client, unique_email), 403, "registration_closed")
    assert "注册" in body["error"]["message"]
    put_config(client, admin_headers, registration_enabled=True)
    assert register(client, unique_email).status_code == 201
    put_config(client, admin_headers, registration_enabled=False)
    assert login(client, unique_email).status_code == 200, "closing registration keeps accounts signing in"
