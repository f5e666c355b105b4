"""The admin audit log: each admin change through the API writes exactly one row (action, target, the
fields changed) and never a secret's value; admin sign-ins, filters, pages and bad input.

The tests share one app of their own (no other test's rows), and each reads only the rows written after
it started, in order: a row's id says which request wrote it."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chat_helpers import add_channel, unique_model
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app
from tests.upstream_server import UpstreamServer

ADMIN_IP = "203.0.113.77"  # believed from loopback: the app trusts 127.0.0.1 as its proxy
HEADER_VALUE = "hdr-secret-" + uuid.uuid4().hex
HEADER_VALUE_2 = "hdr-secret-2-" + uuid.uuid4().hex
PROXY_PASSWORD = "proxy-pw-" + uuid.uuid4().hex
API_KEY = "sk-audit-key-" + uuid.uuid4().hex
API_KEY_2 = "sk-audit-key-2-" + uuid.uuid4().hex
WRONG_PASSWORD = "wrong-password-" + uuid.uuid4().hex
USER_PASSWORD = "user-pw-" + uuid.uuid4().hex[:20]
TEMPORARY_PASSWORD = "temp-pw-" + uuid.uuid4().hex[:20]
SECRETS = (
    USER_PASSWORD,
    TEMPORARY_PASSWORD,
    HEADER_VALUE,
    HEADER_VALUE_2,
    PROXY_PASSWORD,
    API_KEY,
    API_KEY_2,
    TEST_ADMIN_PASSWORD,
    WRONG_PASSWORD,
)


@pytest.fixture(scope="module")
def audit_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp("audit-app")
    with run_app(
        production_env(data_dir, TRUSTED_PROXIES="127.0.0.1/32"), log_path=data_dir / "app.log"
    ) as app:
        yield app


@pytest.fixture
def http(audit_app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=audit_app.base_url, timeout=HANG_SECONDS, headers={"X-Forwarded-For": ADMIN_IP}
    ) as client:
        yield client


@pytest.fixture
def admin(http: httpx.Client) -> dict[str, str]:
    login = http.post("/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _rows(app: RunningApp, after: int = 0) -> list[dict[str, Any]]:
    with sqlite3.connect(app.db_path) as db:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT * FROM audit_logs WHERE id > ? ORDER BY id", (after,)).fetchall()
    return [{**dict(row), "changes": json.loads(row["changes"])} for row in found]


def _last_id(app: RunningApp) -> int:
    with sqlite3.connect(app.db_path) as db:
        return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM audit_logs").fetchone()[0])


class Recorder:
    """The rows each step writes: ``step()`` returns the rows written since the last step."""

    def __init__(self, app: RunningApp) -> None:
        self.app = app
        self.mark = _last_id(app)

    def step(self) -> list[dict[str, Any]]:
        rows = _rows(self.app, self.mark)
        if rows:
            self.mark = rows[-1]["id"]
        return rows

    def one(self, action: str) -> dict[str, Any]:
        rows = self.step()
        assert [row["action"] for row in rows] == [action], rows
        assert rows[0]["admin"] == "admin" and rows[0]["ip_address"] == ADMIN_IP
        return rows[0]


def _database_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def _assert_no_secret(text: str | bytes, where: str) -> None:
    for secret in SECRETS:
        needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
        assert needle not in text, f"{secret[:12]}… found in {where}"


def test_each_channel_change_is_one_row_without_secrets(
    audit_app: RunningApp, http: httpx.Client, admin: dict[str, str], upstream: UpstreamServer
) -> None:
    audit = Recorder(audit_app)
    model = unique_model()
    body = {
        "name": "Audited",
        "base_url": upstream.base_url(),
        "api_key": API_KEY,
        "model_id": model,
        "headers": {"X-Org": HEADER_VALUE},
        "proxy": f"http://user:{PROXY_PASSWORD}@127.0.0.1:9",
        "rpm_limit": 30,
    }
    created = http.post("/api/admin/channels", json=body, headers=admin)
    assert created.status_code == 201, created.text
    _assert_no_secret(created.text, "the channel's answer")
    channel_id = created.json()["id"]
    target = f"channel {channel_id} (Audited)"
    row = audit.one("channel.create")
    assert row["target"] == target
    changes = row["changes"]
    assert changes["name"] == {"old": None, "new": "Audited"}
    assert changes["models"] == {"old": None, "new": [model]}
    assert changes["rpm_limit"] == {"old": None, "new": 30}
    assert changes["api_key"] == "set" and changes["proxy"] == "set" and changes["headers.X-Org"] == "set"

    url = f"/api/admin/channels/{channel_id}"
    assert http.put(url, json={"name": "Renamed", "rpm_limit": 40}, headers=admin).status_code == 200
    row = audit.one("channel.update")
    assert row["target"] == f"channel {channel_id} (Renamed)"
    assert row["changes"] == {
        "name": {"old": "Audited", "new": "Renamed"},
        "rpm_limit": {"old": 30, "new": 40},
    }

    assert http.put(url, json={"api_key": API_KEY_2}, headers=admin).status_code == 200
    assert audit.one("channel.update")["changes"] == {"api_key": "changed"}

    assert http.put(url, json={"api_key": API_KEY_2, "rpm_limit": 40}, headers=admin).status_code == 200
    assert audit.step() == [], "a save that changes nothing is no change"

    headers = {"X-Org": None, "X-Team": HEADER_VALUE_2}  # X-Org kept as stored, X-Team added
    assert http.put(url, json={"headers": headers}, headers=admin).status_code == 200
    assert audit.one("channel.update")["changes"] == {"headers.X-Team": "set"}
    assert http.put(url, json={"headers": {"X-Org": HEADER_VALUE_2}}, headers=admin).status_code == 200
    assert audit.one("channel.update")["changes"] == {"headers.X-Org": "changed", "headers.X-Team": "removed"}

    assert http.put(url, json={"proxy": None}, headers=admin).status_code == 200
    assert audit.one("channel.update")["changes"] == {"proxy": "removed"}

    assert http.put(url, json={"is_enabled": False}, headers=admin).status_code == 200
    assert audit.one("channel.update")["changes"] == {"is_enabled": {"old": True, "new": False}}

    assert http.delete(url, headers=admin).status_code == 204
    row = audit.one("channel.delete")
    assert row["target"] == f"channel {channel_id} (Renamed)"
    assert row["changes"]["name"] == {"old": "Renamed", "new": None}
    assert row["changes"]["api_key"] == "removed"

    assert http.delete(url, headers=admin).status_code == 404
    assert audit.step() == [], "a refused change writes no row"

    listing = http.get("/api/admin/audit", params={"page_size": 200}, headers=admin)
    assert listing.status_code == 200
    _assert_no_secret(listing.text, "GET /api/admin/audit")
    _assert_no_secret(_database_bytes(audit_app.db_path), "the database")
    with sqlite3.connect(audit_app.db_path) as db:
        stored = json.dumps(db.execute("SELECT * FROM audit_logs").fetchall())
    _assert_no_secret(stored, "audit_logs")


def _pause(app: RunningApp, channel_id: int) -> None:
    with sqlite3.connect(app.db_path) as db:
        db.execute(
            "UPDATE channels SET auto_paused = 1, consecutive_failures = 5 WHERE id = ?", (channel_id,)
        )


def test_resume_by_hand_and_by_a_passing_test_are_recorded(
    audit_app: RunningApp, http: httpx.Client, admin: dict[str, str], upstream: UpstreamServer
) -> None:
    created = add_channel(http, admin, base_url=upstream.base_url(), model=unique_model(), name="Paused")
    channel_id = created["id"]
    audit = Recorder(audit_app)

    _pause(audit_app, channel_id)
    resumed = http.post(f"/api/admin/channels/{channel_id}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["status"] == "enabled"
    row = audit.one("channel.resume")
    assert row["target"] == f"channel {channel_id} (Paused)"
    assert row["changes"] == {"auto_paused": {"old": True, "new": False}}

    tested = http.post(f"/api/admin/channels/{channel_id}/test", headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True
    assert audit.step() == [], "a test of a channel that serves changes nothing"

    _pause(audit_app, channel_id)
    tested = http.post(f"/api/admin/channels/{channel_id}/test", headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True
    row = audit.one("channel.resume")
    assert row["changes"] == {"auto_paused": {"old": True, "new": False}}


def test_settings_and_ip_rules_are_recorded(
    audit_app: RunningApp, http: httpx.Client, admin: dict[str, str]
) -> None:
    audit = Recorder(audit_app)
    before = http.get("/api/admin/config", headers=admin).json()
    new_rpm = before["guest_rpm"] + 7
    saved = http.put(
        "/api/admin/config", json={"guest_rpm": new_rpm, "user_rpm": before["user_rpm"]}, headers=admin
    )
    assert saved.status_code == 200
    row = audit.one("settings.update")
    assert row["target"] == "system_config"
    assert row["changes"] == {"guest_rpm": {"old": before["guest_rpm"], "new": new_rpm}}, "unchanged left out"
    assert http.put("/api/admin/config", json={"guest_rpm": new_rpm}, headers=admin).status_code == 200
    assert audit.step() == []
    assert http.put("/api/admin/config", json={"guest_rpm": 0}, headers=admin).status_code == 422
    assert audit.step() == []

    added = http.post(
        "/api/admin/blocked-ips", json={"ip_address": "198.51.100.0/24", "reason": "spam"}, headers=admin
    )
    assert added.status_code == 201
    rule_id = added.json()["id"]
    row = audit.one("ip_rule.create")
    assert row["target"] == f"ip_rule {rule_id} (198.51.100.0/24)"
    assert row["changes"] == {
        "ip_address": {"old": None, "new": "198.51.100.0/24"},
        "reason": {"old": None, "new": "spam"},
    }
    duplicate = http.post("/api/admin/blocked-ips", json={"ip_address": "198.51.100.0/24"}, headers=admin)
    assert duplicate.status_code == 409
    assert audit.step() == []
    assert http.delete(f"/api/admin/blocked-ips/{rule_id}", headers=admin).status_code == 204
    row = audit.one("ip_rule.delete")
    assert row["target"] == f"ip_rule {rule_id} (198.51.100.0/24)"
    assert row["changes"]["ip_address"] == {"old": "198.51.100.0/24", "new": None}


def test_user_changes_and_key_revokes_are_recorded(
    audit_app: RunningApp, http: httpx.Client, admin: dict[str, str], unique_email: str
) -> None:
    audit = Recorder(audit_app)
    created = http.post(
        "/api/admin/users", json={"email": unique_email, "password": USER_PASSWORD}, headers=admin
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    target = f"user {user_id} ({unique_email})"
    row = audit.one("user.create")
    assert row["target"] == target
    assert row["changes"] == {"email": {"old": None, "new": unique_email}, "password": "set"}

    assert (
        http.patch(
            f"/api/admin/users/{user_id}", json={"disabled": True, "rpm_limit": 7}, headers=admin
        ).status_code
        == 200
    )
    row = audit.one("user.update")
    assert row["target"] == target
    assert row["changes"] == {"disabled": {"old": False, "new": True}, "rpm_limit": {"old": None, "new": 7}}
    assert http.patch(f"/api/admin/users/{user_id}", json={"rpm_limit": 7}, headers=admin).status_code == 200
    assert audit.step() == [], "a save that changes nothing is no row"
    assert (
        http.patch(f"/api/admin/users/{user_id}", json={"disabled": False}, headers=admin).status_code == 200
    )
    assert audit.one("user.update")["changes"] == {"disabled": {"old": True, "new": False}}

    reset = http.post(
        f"/api/admin/users/{user_id}/password", json={"password": TEMPORARY_PASSWORD}, headers=admin
    )
    assert reset.status_code == 200
    assert audit.one("user.password_reset")["changes"] == {"password": "changed"}

    login = http.post("/api/auth/login", json={"email": unique_email, "password": TEMPORARY_PASSWORD})
    user = {"Authorization": f"Bearer {login.json()['access_token']}"}
    key = http.post("/api/keys", json={"name": "laptop"}, headers=user)
    assert key.status_code == 201, key.text
    assert audit.step() == [], "a user's own key is no admin change"
    assert http.delete(f"/api/admin/keys/{key.json()['id']}", headers=admin).status_code == 204
    assert audit.one("key.revoke")["target"] == f"key {key.json()['id']} (laptop)"
    assert http.delete(f"/api/admin/keys/{key.json()['id']}", headers=admin).status_code == 404
    assert audit.step() == []

    assert http.delete(f"/api/admin/users/{user_id}", headers=admin).status_code == 204
    assert audit.one("user.delete")["target"] == target
    _assert_no_secret(_database_bytes(audit_app.db_path), "the database")


def test_admin_sign_ins_are_recorded_failed_ones_with_the_name_tried(
    audit_app: RunningApp, http: httpx.Client
) -> None:
    audit = Recorder(audit_app)
    wrong = http.post("/api/auth/admin/login", json={"username": "admin", "password": WRONG_PASSWORD})
    assert wrong.status_code == 401
    unknown = http.post("/api/auth/admin/login", json={"username": "mallory", "password": WRONG_PASSWORD})
    assert unknown.status_code == 401
    good = http.post("/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD})
    assert good.status_code == 200
    rows = audit.step()
    assert [(r["action"], r["admin"], r["ip_address"]) for r in rows] == [
        ("admin.login_failed", "admin", ADMIN_IP),
        ("admin.login_failed", "mallory", ADMIN_IP),
        ("admin.login", "admin", ADMIN_IP),
    ]
    assert all(r["changes"] == {} and r["target"] is None for r in rows)
    _assert_no_secret(json.dumps(rows), "the sign-in rows")

    user = http.post("/api/auth/login", json={"email": "nobody@example.com", "password": WRONG_PASSWORD})
    assert user.status_code == 401
    assert audit.step() == [], "a user's sign-in is no admin's"


def test_filters_and_pages(audit_app: RunningApp, http: httpx.Client, admin: dict[str, str]) -> None:
    # three rows of a name no other test uses, then filter on it
    name = f"probe-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        assert (
            http.post("/api/auth/admin/login", json={"username": name, "password": "x" * 8}).status_code
            == 401
        )
    first = http.get("/api/admin/audit", params={"admin": name, "page_size": 2}, headers=admin)
    assert first.status_code == 200
    body = first.json()
    assert body["total"] == 3 and body["page"] == 1 and body["page_size"] == 2 and len(body["items"]) == 2
    item = body["items"][0]
    assert set(item) >= {"created_at", "admin", "ip_address", "action", "target", "changes"}
    assert item["admin"] == name and item["action"] == "admin.login_failed" and item["changes"] == {}
    second = http.get("/api/admin/audit", params={"admin": name, "page_size": 2, "page": 2}, headers=admin)
    assert len(second.json()["items"]) == 1
    ids = [i["id"] for i in body["items"] + second.json()["items"]]
    assert ids == sorted(ids, reverse=True), "newest first, no row on two pages"

    def total(**params: str) -> int:
        response = http.get("/api/admin/audit", params={"admin": name, **params}, headers=admin)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert total(action="admin.login_failed") == 3
    assert total(action="admin") == 3, "a group filters every action of it"
    assert total(action="admin.login") == 0
    assert total(action="channel") == 0
    assert total(start="2000-01-01", end="2999-12-31") == 3
    assert total(end="2000-01-01") == 0
    assert total(start="2999-01-01") == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-45"}, "end"),
        ({"start": "2026-02-02", "end": "2026-02-01"}, "end"),
        ({"action": "DROP TABLE"}, "action"),
        ({"action": "channel.%"}, "action"),
        ({"admin": "x" * 65}, "admin"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_bad_filters_are_422_naming_the_field(
    http: httpx.Client, admin: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = http.get("/api/admin/audit", params=params, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error" and error["message"].startswith(field), error


def test_only_the_admin_reads_the_audit_log(http: httpx.Client, unique_email: str) -> None:
    assert http.get("/api/admin/audit").status_code == 401
    assert (
        http.post("/api/auth/register", json={"email": unique_email, "password": "password123"}).status_code
        == 201
    )
    token = http.post("/api/auth/login", json={"email": unique_email, "password": "password123"}).json()
    user = {"Authorization": f"Bearer {token['access_token']}"}
    assert http.get("/api/admin/audit", headers=user).status_code == 403
