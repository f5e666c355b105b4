"""Personal API keys, the password change, disabled users and per-user RPM against a real server
(docs/api.md#personal-api-keys). Each test calls from its own client IP (X-Forwarded-For, believed
from loopback in ``limited_app``), so the per-IP bad-key throttle of one test never meets another."""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, fresh_ip, log_rows, read_sse, unique_model
from tests.helpers import RunningApp, wait_until
from tests.upstream_server import UpstreamServer

PASSWORD = "correct-horse-1"
INVALID_KEY_BODY = {"error": {"type": "invalid_api_key", "message": "API 密钥无效、已撤销或已过期"}}


class Account:
    """A registered user calling from one client IP."""

    def __init__(self, http: httpx.Client, ip: str | None = None) -> None:
        self.http = http
        self.ip = ip or fresh_ip()
        self.email = f"key-{uuid.uuid4().hex[:10]}@example.com"
        assert (
            self.post("/api/auth/register", json={"email": self.email, "password": PASSWORD}).status_code
            == 201
        )
        self.token = self.login().json()["access_token"]

    def login(self, password: str = PASSWORD) -> httpx.Response:
        return self.post("/api/auth/login", json={"email": self.email, "password": password})

    def headers(self, credential: str | None = None) -> dict[str, str]:
        return {"X-Forwarded-For": self.ip, "Authorization": f"Bearer {credential or self.token}"}

    def post(self, path: str, credential: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-Forwarded-For": self.ip}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        return self.http.post(path, headers=headers, **kwargs)

    def get(self, path: str, credential: str | None = None) -> httpx.Response:
        return self.http.get(path, headers=self.headers(credential))

    def delete(self, path: str, credential: str | None = None) -> httpx.Response:
        return self.http.delete(path, headers=self.headers(credential))

    def new_key(self, name: str = "laptop", **extra: Any) -> dict[str, Any]:
        response = self.post("/api/keys", self.token, json={"name": name, **extra})
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def account(http: httpx.Client) -> Account:
    return Account(http)


@pytest.fixture
def new_account(http: httpx.Client) -> Callable[[], Account]:
    return lambda: Account(http)


@pytest.fixture
def model(http: httpx.Client, admin: dict[str, str], upstream: UpstreamServer) -> str:
    name = unique_model("keys")
    add_channel(http, admin, base_url=upstream.base_url("ok"), model=name, rpm_limit=100_000)
    return name


def db(app: RunningApp, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(app.db_path) as connection:
        return connection.execute(sql, params).fetchall()


def test_create_list_revoke(account: Account, limited_app: RunningApp) -> None:
    created = account.new_key("NextChat")
    assert set(created) == {"id", "name", "key", "prefix", "created_at", "expires_at"}
    key = created["key"]
    assert key.startswith("sk-") and len(key) >= 3 + 43  # 32 random bytes, url-safe base64
    assert key[3:].replace("-", "").replace("_", "").isalnum()
    assert created["prefix"] == key[:10] and created["expires_at"] is None
    # stored as its SHA-256 only
    rows = db(limited_app, "SELECT key_hash, prefix FROM api_keys WHERE id = ?", created["id"])
    assert rows == [(hashlib.sha256(key.encode()).hexdigest(), key[:10])]
    dump = limited_app.db_path.read_bytes()
    assert key.encode() not in dump

    listed = account.get("/api/keys").json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None and listed[0]["name"] == "NextChat"

    assert account.delete(f"/api/keys/{created['id']}").status_code == 204
    assert account.get("/api/keys").json() == []
    assert account.delete(f"/api/keys/{created['id']}").status_code == 404
    assert db(limited_app, "SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = ?", created["id"]) == [
        (1,)
    ]
    # revoked: refused at once on this instance
    assert account.get("/api/models", key).json() == INVALID_KEY_BODY


def test_a_key_works_like_the_login_on_every_route(
    account: Account, model: str, limited_app: RunningApp, admin: dict[str, str]
) -> None:
    key = account.new_key()
    for path in ("/api/models", "/v1/models", "/api/v1/models"):
        response = account.get(path, key["key"])
        assert response.status_code == 200, (path, response.text)
        assert model in {m["id"] for m in response.json()["data"]}
    assert account.get("/api/chat/models", key["key"]).status_code == 200
    assert account.get("/api/auth/me", key["key"]).json()["email"] == account.email
    for path in ("/api/chat/completions", "/v1/chat/completions", "/api/v1/chat/completions"):
        response = account.post(path, key["key"], json=chat_body(model, stream=False))
        assert response.status_code == 200, (path, response.text)
    with account.http.stream(
        "POST",
        "/v1/chat/completions",
        json=chat_body(model, stream=True),
        headers=account.headers(key["key"]),
    ) as response:
        assert response.status_code == 200
        assert read_sse(response)[-1] == "[DONE]"
    account.post("/api/chat/completions", account.token, json=chat_body(model, stream=False))
    rows = log_rows(limited_app.db_path, model, expect=5)
    user_id = account.get("/api/auth/me").json()["id"]
    assert [row["api_key_id"] for row in rows] == [key["id"]] * 4 + [None]
    assert {row["user_id"] for row in rows} == {user_id}
    assert {row["username"] for row in rows} == {account.email}
    listed = account.http.get("/api/admin/logs", params={"model": model}, headers=admin).json()["items"]
    assert sorted(item["api_key_id"] or 0 for item in listed) == [0] + [key["id"]] * 4
    # last used: batched off the request path, written within a reload or two
    wait_until(
        lambda: (
            db(limited_app, "SELECT last_used_at FROM api_keys WHERE id = ?", key["id"])[0][0] is not None
        ),
        what="last_used_at written",
    )
    wait_until(
        lambda: db(limited_app, "SELECT last_active_at FROM users WHERE id = ?", user_id)[0][0] is not None,
        what="last_active_at written",
    )
    assert account.get("/api/keys").json()[0]["last_used_at"] is not None


def test_bad_keys_get_one_answer(account: Account, limited_app: RunningApp) -> None:
    revoked = account.new_key("revoked")
    account.delete(f"/api/keys/{revoked['id']}")
    expired = account.new_key("expired")
    db(
        limited_app,
        "UPDATE api_keys SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = ?",
        expired["id"],
    )
    # an edit behind the app's back reaches its cache within the period
    wait_until(
        lambda: account.get("/api/models", expired["key"]).status_code == 401, what="expired key refused"
    )
    keys = {
        "revoked": revoked["key"],
        "expired": expired["key"],
        "unknown": "sk-" + "A" * 43,
        "malformed": "sk-!!",
        "bare prefix": "sk-",
    }
    for what, key in keys.items():
        account.ip = fresh_ip()  # 4 bad keys each: well under the per-IP throttle
        for path in ("/api/models", "/api/chat/completions", "/v1/chat/completions", "/api/keys"):
            send = account.get if path.endswith(("models", "keys")) else account.post
            response = send(path, key)
            assert response.status_code == 401, (what, path, response.text)
            assert response.json() == INVALID_KEY_BODY, (what, path)
            assert response.headers["www-authenticate"] == "Bearer"


def test_keys_are_private(new_account: Callable[[], Account], model: str) -> None:
    alice, bob = new_account(), new_account()
    key = alice.new_key("alice's")
    assert bob.get("/api/keys").json() == []
    assert bob.delete(f"/api/keys/{key['id']}").status_code == 404
    assert bob.delete(f"/api/keys/{key['id'] + 10_000}").json()["error"]["type"] == "not_found"
    # her key is still hers: it calls as Alice, lists Alice's keys
    assert alice.get("/api/keys").json()[0]["id"] == key["id"]
    assert bob.get("/api/keys", key["key"]).json()[0]["id"] == key["id"]
    assert bob.get("/api/auth/me", key["key"]).json()["email"] == alice.email


def test_key_input_is_checked(account: Account) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body, field in (
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "ok", "expires_at": past}, "expires_at"),
        ({"name": "ok", "expires_at": "tomorrow"}, "expires_at"),
        ({}, "name"),
    ):
        response = account.post("/api/keys", account.token, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text
    future = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = account.new_key("dated", expires_at=future.isoformat())
    assert datetime.fromisoformat(created["expires_at"]) == future
    naive = account.new_key("naive", expires_at=future.replace(tzinfo=None).isoformat())
    assert datetime.fromisoformat(naive["expires_at"]) == future  # a time without a zone is UTC
    assert account.post("/api/keys", json={"name": "anonymous"}).status_code == 401
    assert account.delete("/api/keys/0").status_code == 422
    assert account.delete("/api/keys/abc").status_code == 422


def test_at_most_twenty_active_keys(account: Account) -> None:
    keys = [account.new_key(f"k{i}") for i in range(20)]
    refused = account.post("/api/keys", account.token, json={"name": "one too many"})
    assert refused.status_code == 409
    assert "20" in refused.json()["error"]["message"]
    account.delete(f"/api/keys/{keys[0]['id']}")
    account.new_key("fits again")


def test_admin_lists_and_revokes_any_key(
    new_account: Callable[[], Account], http: httpx.Client, admin: dict[str, str]
) -> None:
    owner = new_account()
    key = owner.new_key("owner's")
    user_id = owner.get("/api/auth/me").json()["id"]
    page = http.get("/api/admin/keys", params={"user_id": user_id}, headers=admin).json()
    assert page["total"] == 1 and page["page"] == 1
    item = page["items"][0]
    assert item["id"] == key["id"] and item["email"] == owner.email and item["user_id"] == user_id
    assert "key" not in item and "key_hash" not in item
    assert owner.get("/api/admin/keys").status_code == 403  # a user token is no admin token
    assert owner.get("/api/admin/keys", key["key"]).status_code == 401  # nor is a personal key
    assert http.delete(f"/api/admin/keys/{key['id']}", headers=admin).status_code == 204
    assert http.delete(f"/api/admin/keys/{key['id']}", headers=admin).status_code == 404
    assert owner.get("/api/models", key["key"]).json() == INVALID_KEY_BODY
    everything = http.get(
        "/api/admin/keys", params={"user_id": user_id, "include_revoked": "true"}, headers=admin
    ).json()
    assert everything["items"][0]["revoked_at"] is not None


def test_password_change_ends_other_sessions(account: Account) -> None:
    other_session = account.login().json()["access_token"]
    key = account.new_key()
    wrong = account.post(
        "/api/auth/password",
        account.token,
        json={"old_password": "wrong-password", "new_password": "new-pass-123"},
    )
    assert wrong.status_code == 422 and "old_password" in wrong.json()["error"]["message"]
    short = account.post(
        "/api/auth/password", account.token, json={"old_password": PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 422 and "new_password" in short.json()["error"]["message"]
    changed = account.post(
        "/api/auth/password", account.token, json={"old_password": PASSWORD, "new_password": "new-pass-123"}
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()["access_token"]
    assert account.get("/api/auth/me", fresh).status_code == 200
    for old in (account.token, other_session):
        refused = account.get("/api/auth/me", old)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"
    assert account.get("/api/auth/me", key["key"]).status_code == 200  # keys are not sessions
    assert account.login().status_code == 401
    assert account.login("new-pass-123").status_code == 200


def test_a_raised_token_version_refuses_older_tokens(account: Account, limited_app: RunningApp) -> None:
    db(limited_app, "UPDATE users SET token_version = token_version + 1 WHERE email = ?", account.email)
    wait_until(lambda: account.get("/api/auth/me").status_code == 401, what="old token refused")
    assert account.get("/api/auth/me", account.login().json()["access_token"]).status_code == 200


def test_a_disabled_user_is_refused(account: Account, limited_app: RunningApp, model: str) -> None:
    key = account.new_key()
    db(limited_app, "UPDATE users SET disabled = 1 WHERE email = ?", account.email)
    wait_until(lambda: account.get("/api/auth/me").status_code == 401, what="token refused")
    for credential in (account.token, key["key"]):
        for response in (
            account.get("/api/auth/me", credential),
            account.post("/v1/chat/completions", credential, json=chat_body(model, stream=False)),
        ):
            assert response.status_code == 401
            assert response.json()["error"] == {
                "type": "account_disabled",
                "message": "账号已被停用，请联系管理员",
            }
    login = account.login()
    assert login.status_code == 403 and login.json()["error"]["type"] == "account_disabled"
    assert account.login("wrong-password").status_code == 401  # says nothing without the password
    db(limited_app, "UPDATE users SET disabled = 0 WHERE email = ?", account.email)
    wait_until(lambda: account.get("/api/auth/me", key["key"]).status_code == 200, what="enabled again")
    assert account.login().status_code == 200


def test_own_rpm_is_shared_by_keys_and_the_login(
    account: Account, limited_app: RunningApp, model: str
) -> None:
    db(limited_app, "UPDATE users SET rpm_limit = 3 WHERE email = ?", account.email)
    first, second = account.new_key("one")["key"], account.new_key("two")["key"]

    def call(credential: str) -> httpx.Response:
        return account.post("/api/chat/completions", credential, json=chat_body(model, stream=False))

    wait_until(lambda: call(first).status_code == 429, what="the own RPM applied")
    assert call(second).status_code == 429
    refused = call(account.token)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1


def test_many_bad_keys_from_one_ip_are_throttled(
    http: httpx.Client, new_account: Callable[[], Account], limited_app: RunningApp, model: str
) -> None:
    attacker_ip, bystander = fresh_ip(), new_account()
    key = bystander.new_key()["key"]
    counts = {
        table: db(limited_app, f"SELECT COUNT(*) FROM {table}")[0][0] for table in ("chat_logs", "api_keys")
    }
    statuses: list[int] = []
    started = time.monotonic()
    for _ in range(300):
        response = http.get(
            "/api/models",
            headers={"X-Forwarded-For": attacker_ip, "Authorization": f"Bearer sk-{uuid.uuid4().hex}"},
        )
        statuses.append(response.status_code)
    elapsed = time.monotonic() - started
    assert set(statuses) == {401, 429}
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429
    # the bystander (another IP) is unaffected, and so is a good key from the throttled IP
    assert bystander.get("/api/models", key).status_code == 200
    response = bystander.post("/api/chat/completions", key, json=chat_body(model, stream=False))
    assert response.status_code == 200
    assert (
        http.get(
            "/api/models", headers={"X-Forwarded-For": attacker_ip, "Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    log_rows(limited_app.db_path, model, expect=1)
    after = {
        table: db(limited_app, f"SELECT COUNT(*) FROM {table}")[0][0] for table in ("chat_logs", "api_keys")
    }
    assert after == {"chat_logs": counts["chat_logs"] + 1, "api_keys": counts["api_keys"]}
    assert db(limited_app, "SELECT COUNT(*) FROM blocked_attempts WHERE ip_address = ?", attacker_ip) == [
        (0,)
    ]
    print(f"300 bad keys from one IP answered in {elapsed:.2f} s")
