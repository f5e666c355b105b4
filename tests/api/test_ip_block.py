"""The IP block list: user side only, CIDR and IPv6, validation, attempts recorded without bound."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest

from services.ip_block import FLUSH_INTERVAL_SECONDS
from tests.chat_helpers import add_channel, chat_body, fresh_ip, unique_model
from tests.helpers import TEST_ADMIN_PASSWORD, RunningApp, wait_until
from tests.upstream_server import UpstreamServer

_networks = itertools.count(1)


@pytest.fixture
def blocked_net(http: httpx.Client, admin: dict) -> Iterator[tuple[str, dict]]:
    n = next(_networks)
    ip, network = f"100.64.{n}.9", f"100.64.{n}.0/24"  # a range fresh_ip() never hands out
    response = http.post(
        "/api/admin/blocked-ips", json={"ip_address": network, "reason": "abuse"}, headers=admin
    )
    assert response.status_code == 201, response.text
    rule = response.json()
    yield ip, rule
    http.delete(f"/api/admin/blocked-ips/{rule['id']}", headers=admin)


def test_block_applies_to_user_side_only(
    http: httpx.Client,
    admin: dict,
    upstream: UpstreamServer,
    blocked_net: tuple[str, dict],
) -> None:
    ip, rule = blocked_net
    as_blocked = {"X-Forwarded-For": ip}
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model())
    for method, path, body in [
        ("POST", "/api/chat/completions", chat_body(channel["model_id"], stream=True)),
        ("GET", "/api/chat/models", None),
        ("GET", "/api/models", None),
        ("POST", "/api/auth/login", {"email": "a@example.com", "password": "password-1"}),
        ("POST", "/api/auth/register", {"email": "a@example.com", "password": "password-1"}),
        ("GET", "/api/auth/me", None),
    ]:
        response = http.request(method, path, json=body, headers=as_blocked)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["type"] == "ip_blocked", path
    for page in ("/", "/login", "/register"):
        response = http.get(page, headers=as_blocked)
        assert response.status_code == 403 and "访问受限" in response.text
    # the admin side is never blocked
    login = http.post(
        "/api/auth/admin/login",
        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
        headers=as_blocked,
    )
    assert login.status_code == 200
    blocked_admin = {"Authorization": f"Bearer {login.json()['access_token']}", **as_blocked}
    assert http.get("/api/admin/channels", headers=blocked_admin).status_code == 200
    assert http.get("/api/admin/blocked-ips", headers=blocked_admin).status_code == 200
    # other addresses are unaffected
    assert http.get("/api/chat/models", headers={"X-Forwarded-For": fresh_ip()}).status_code == 200

    attempts = http.get("/api/admin/blocked-attempts", headers=admin).json()
    mine = [a for a in attempts if a["ip_address"] == ip]
    assert {a["path"] for a in mine} >= {"/api/chat/completions", "/api/auth/login", "/"}
    assert all(a["matched_rule"] == rule["ip_address"] for a in mine)


def test_ipv4_mapped_ipv6_is_matched_as_ipv4(http: httpx.Client, blocked_net: tuple[str, dict]) -> None:
    ip, _ = blocked_net
    response = http.get("/api/chat/models", headers={"X-Forwarded-For": f"::ffff:{ip}"})
    assert response.status_code == 403


def test_ipv6_rules(http: httpx.Client, admin: dict) -> None:
    rule = http.post("/api/admin/blocked-ips", json={"ip_address": "2001:db8:77::/48"}, headers=admin).json()
    try:
        assert http.get("/api/chat/models", headers={"X-Forwarded-For": "2001:db8:77::5"}).status_code == 403
        assert http.get("/api/chat/models", headers={"X-Forwarded-For": "2001:db8:78::5"}).status_code == 200
    finally:
        http.delete(f"/api/admin/blocked-ips/{rule['id']}", headers=admin)


def test_unblocking_applies_to_the_next_request(http: httpx.Client, admin: dict) -> None:
    ip = fresh_ip()
    rule = http.post("/api/admin/blocked-ips", json={"ip_address": ip}, headers=admin).json()
    assert http.get("/api/chat/models", headers={"X-Forwarded-For": ip}).status_code == 403
    assert http.delete(f"/api/admin/blocked-ips/{rule['id']}", headers=admin).status_code == 204
    assert http.get("/api/chat/models", headers={"X-Forwarded-For": ip}).status_code == 200
    assert http.delete(f"/api/admin/blocked-ips/{rule['id']}", headers=admin).status_code == 404


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "abc", "", "1.2.3.4.5", "300.0.0.1", "10.0.0.1/8/8"])
def test_invalid_rules_are_422_and_change_nothing(http: httpx.Client, admin: dict, bad: str) -> None:
    before = http.get("/api/admin/blocked-ips", headers=admin).json()
    response = http.post("/api/admin/blocked-ips", json={"ip_address": bad}, headers=admin)
    assert response.status_code == 422 and response.json()["error"]["type"] == "validation_error"
    assert http.get("/api/admin/blocked-ips", headers=admin).json() == before


def test_duplicates_are_refused(http: httpx.Client, admin: dict, blocked_net: tuple[str, dict]) -> None:
    _, rule = blocked_net
    same = rule["ip_address"].replace(".0/24", ".0/024")  # the same network written differently
    response = http.post("/api/admin/blocked-ips", json={"ip_address": same}, headers=admin)
    assert response.status_code == 409


def test_a_typo_with_host_bits_and_an_unconfirmed_everyone_are_refused(
    http: httpx.Client, admin: dict
) -> None:
    before = http.get("/api/admin/blocked-ips", headers=admin).json()
    typo = http.post("/api/admin/blocked-ips", json={"ip_address": "127.0.0.1/0"}, headers=admin)
    assert typo.status_code == 422 and "0.0.0.0/0" in typo.json()["error"]["message"]
    everyone = http.post("/api/admin/blocked-ips", json={"ip_address": "::/0"}, headers=admin)
    assert everyone.status_code == 422 and "confirm_all" in everyone.json()["error"]["message"]
    assert http.get("/api/admin/blocked-ips", headers=admin).json() == before


def test_a_flood_does_not_grow_the_table(
    limited_app: RunningApp,
    http: httpx.Client,
    blocked_net: tuple[str, dict],
) -> None:
    ip, _ = blocked_net
    started = time.monotonic()
    for _ in range(300):
        assert http.get("/api/chat/models", headers={"X-Forwarded-For": ip}).status_code == 403

    def counted() -> tuple[int, int]:
        with sqlite3.connect(limited_app.db_path) as db:
            return db.execute(
                "SELECT COUNT(*), COALESCE(SUM(hits), 0) FROM blocked_attempts"
                " WHERE ip_address = ? AND path = ?",
                (ip, "/api/chat/models"),
            ).fetchone()

    wait_until(lambda: counted()[1] >= 300, poll=0.05, what="300 blocked requests recorded")  # in batches
    flushes = (time.monotonic() - started) / FLUSH_INTERVAL_SECONDS + 1  # at most, however slow the machine
    count, hits = counted()
    assert hits == 300, "every blocked request is counted"
    assert count <= flushes, f"but folded into one row a flush, not one a request: {count} rows"


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(
    client: httpx.Client, admin_headers: dict
) -> None:
    """The shared app has no TRUSTED_PROXIES: X-Forwarded-For from 127.0.0.1 must not be believed."""
    rule = client.post(
        "/api/admin/blocked-ips", json={"ip_address": "203.0.113.250"}, headers=admin_headers
    ).json()
    try:
        assert client.get("/api/chat/models", headers={"X-Forwarded-For": "203.0.113.250"}).status_code == 200
    finally:
        client.delete(f"/api/admin/blocked-ips/{rule['id']}", headers=admin_headers)
