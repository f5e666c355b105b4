"""/api/admin/users against a real server: the list (search, pages, order), create, disable, own RPM,
temporary password, delete, and every refusal of bad input."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_auth import assert_error, login, register
from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.helpers import wait_until
from tests.upstream_server import UpstreamServer

PASSWORD = "correct-horse-1"
MISSING_ID = 2**62


def create(client: httpx.Client, headers: dict[str, str], email: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/admin/users", json={"email": email, "password": password}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def find(client: httpx.Client, headers: dict[str, str], **params: object) -> dict:
    response = client.get("/api/admin/users", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tag() -> str:
    """A fragment only this test's e-mails contain."""
    return f"t{uuid.uuid4().hex[:10]}"


def test_list_searches_pages_and_orders(
    client: httpx.Client, admin_headers: dict[str, str], tag: str
) -> None:
    made = [create(client, admin_headers, f"{tag}-{n}@example.com") for n in range(3)]
    create(client, admin_headers, f"other-{uuid.uuid4().hex[:8]}@example.com")

    page = find(client, admin_headers, q=tag.upper(), page_size=2)  # e-mails are lower-case: so is q
    assert page["total"] == 3 and page["page"] == 1 and page["page_size"] == 2
    assert [item["email"] for item in page["items"]] == [made[2]["email"], made[1]["email"]]  # newest first
    second = find(client, admin_headers, q=tag, page_size=2, page=2)
    assert [item["email"] for item in second["items"]] == [made[0]["email"]]
    oldest_first = find(client, admin_headers, q=tag, sort="created")
    assert [item["id"] for item in oldest_first["items"]] == [user["id"] for user in made]

    item = page["items"][0]
    assert set(item) == {"id", "email", "created_at", "last_active_at", "disabled", "rpm_limit"}
    assert item["disabled"] is False and item["rpm_limit"] is None and item["last_active_at"] is None
    assert find(client, admin_headers, q=f"{tag}-")["total"] == 3
    assert find(client, admin_headers, q=f"{tag}_0")["total"] == 0  # _ and % are characters, not wildcards
    assert find(client, admin_headers, q=f"{tag}%")["total"] == 0
    assert find(client, admin_headers, q=f"{tag}-9")["total"] == 0


def test_last_active_is_the_newest_call_and_orders_the_list(
    client: httpx.Client, admin_headers: dict[str, str], upstream: UpstreamServer, tag: str
) -> None:
    model = unique_model()
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    active, idle = (create(client, admin_headers, f"{tag}-{n}@example.com") for n in ("a", "b"))
    token = login(client, active["email"]).json()["access_token"]
    answer = client.post("/api/chat/completions", json=chat_body(model, stream=False), headers=bearer(token))
    assert answer.status_code == 200, answer.text

    def active_first() -> list[dict]:
        return find(client, admin_headers, q=tag, sort="-last_active")["items"]

    wait_until(lambda: active_first()[0]["last_active_at"] is not None, what="the call's row written")
    assert [item["id"] for item in active_first()] == [active["id"], idle["id"]]
    idle_first = find(client, admin_headers, q=tag, sort="last_active")["items"]
    assert [item["id"] for item in idle_first] == [idle["id"], active["id"]]  # never active: first


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "email"}, "sort"),
        ({"sort": ""}, "sort"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"q": "x" * 255}, "q"),
        ({"q": "a\x00b"}, "q"),
    ],
)
def test_bad_list_parameters_are_422_naming_them(
    client: httpx.Client, admin_headers: dict[str, str], params: dict, field: str
) -> None:
    body = assert_error(
        client.get("/api/admin/users", params=params, headers=admin_headers), 422, "validation_error"
    )
    assert body["error"]["message"].startswith(field)


def test_admin_creates_a_user_who_can_sign_in_while_registration_is_closed(
    client: httpx.Client, admin_headers: dict[str, str], unique_email: str, closed_registration: None
) -> None:
    assert_error(register(client, unique_email), 403, "registration_closed")
    user = create(client, admin_headers, unique_email.upper())
    assert user["email"] == unique_email
    assert login(client, unique_email).status_code == 200
    body = assert_error(
        client.post(
            "/api/admin/users", json={"email": unique_email, "password": PASSWORD}, headers=admin_headers
        ),
        409,
        "conflict",
    )
    assert "邮箱" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "ok@example.com", "password": "short"}, "password"),
        ({"email": "ok@example.com", "password": "x" * 73}, "password"),
        ({"email": "ok@example.com"}, "password"),
        ({"password": PASSWORD}, "email"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(
    client: httpx.Client, admin_headers: dict[str, str], body: dict, field: str
) -> None:
    answer = assert_error(
        client.post("/api/admin/users", json=body, headers=admin_headers), 422, "validation_error"
    )
    assert answer["error"]["message"].startswith(field)
    assert "x" * 73 not in answer["error"]["message"]


def test_users_routes_need_an_admin(client: httpx.Client, unique_email: str) -> None:
    register(client, unique_email)
    user_token = login(client, unique_email).json()["access_token"]
    calls = [
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", {"email": "x@example.com", "password": PASSWORD}),
        ("PATCH", "/api/admin/users/1", {"disabled": True}),
        ("POST", "/api/admin/users/1/password", {"password": PASSWORD}),
        ("DELETE", "/api/admin/users/1", None),
    ]
    for method, path, body in calls:
        assert_error(client.request(method, path, json=body), 401, "unauthorized")
        assert_error(client.request(method, path, json=body, headers=bearer(user_token)), 403, "forbidden")


def test_disable_and_enable(client: httpx.Client, admin_headers: dict[str, str], unique_email: str) -> None:
    user = create(client, admin_headers, unique_email)
    changed = client.patch(f"/api/admin/users/{user['id']}", json={"disabled": True}, headers=admin_headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["disabled"] is True and changed.json()["rpm_limit"] is None
    assert find(client, admin_headers, q=unique_email)["items"][0]["disabled"] is True
    again = client.patch(f"/api/admin/users/{user['id']}", json={"disabled": False}, headers=admin_headers)
    assert again.json()["disabled"] is False


def test_own_rpm_limits_the_user_and_null_returns_to_the_global(
    client: httpx.Client, admin_headers: dict[str, str], unique_email: str, upstream: UpstreamServer
) -> None:
    model = unique_model()
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    user = create(client, admin_headers, unique_email)
    path = f"/api/admin/users/{user['id']}"
    changed = client.patch(path, json={"rpm_limit": 2}, headers=admin_headers)
    assert changed.status_code == 200 and changed.json()["rpm_limit"] == 2
    kept = client.patch(path, json={"disabled": False}, headers=admin_headers)  # rpm_limit left out: kept
    assert kept.json()["rpm_limit"] == 2

    headers = bearer(login(client, unique_email).json()["access_token"])
    answers = [
        client.post("/api/chat/completions", json=chat_body(model, stream=False), headers=headers).status_code
        for _ in range(3)
    ]
    assert answers == [200, 200, 429]  # the shared app's global user_rpm is a million

    cleared = client.patch(path, json={"rpm_limit": None}, headers=admin_headers)
    assert cleared.json()["rpm_limit"] is None
    answer = client.post("/api/chat/completions", json=chat_body(model, stream=False), headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"rpm_limit": 1_000_001}, "rpm_limit"),
        ({"rpm_limit": "5"}, "rpm_limit"),
        ({"rpm_limit": 2.5}, "rpm_limit"),
        ({"disabled": "yes"}, "disabled"),
        ({"disabled": None}, "disabled"),
        ({"role": "admin"}, "role"),
    ],
)
def test_bad_changes_are_422_naming_the_field(
    client: httpx.Client, admin_headers: dict[str, str], unique_email: str, body: dict, field: str
) -> None:
    user = create(client, admin_headers, unique_email)
    answer = client.patch(f"/api/admin/users/{user['id']}", json=body, headers=admin_headers)
    assert assert_error(answer, 422, "validation_error")["error"]["message"].startswith(field)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"disabled": True}),
        ("POST", "/password", {"password": PASSWORD}),
        ("DELETE", "", None),
    ],
)
def test_unknown_ids_are_404_and_bad_ids_422(
    client: httpx.Client, admin_headers: dict[str, str], method: str, suffix: str, body: dict | None
) -> None:
    answer = client.request(
        method, f"/api/admin/users/{MISSING_ID}{suffix}", json=body, headers=admin_headers
    )
    assert_error(answer, 404, "not_found")
    for bad in ("0", "abc", str(2**63)):
        answer = client.request(method, f"/api/admin/users/{bad}{suffix}", json=body, headers=admin_headers)
        assert assert_error(answer, 422, "validation_error")["error"]["message"].startswith("user_id")


def test_reset_password_replaces_the_old_one_and_ends_sessions(
    client: httpx.Client, admin_headers: dict[str, str], unique_email: str
) -> None:
    user = create(client, admin_headers, unique_email)
    old_token = login(client, unique_email).json()["access_token"]
    path = f"/api/admin/users/{user['id']}/password"
    bad = assert_error(
        client.post(path, json={"password": "short"}, headers=admin_headers), 422, "validation_error"
    )
    assert bad["error"]["message"].startswith("password")
    assert login(client, unique_email).status_code == 200  # a refused reset changed nothing

    answer = client.post(path, json={"password": "temporary-pass-9"}, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == user["id"]
    assert_error(login(client, unique_email), 401, "unauthorized")
    assert login(client, unique_email, "temporary-pass-9").status_code == 200
    assert client.get("/api/auth/me", headers=bearer(old_token)).status_code == 401


@pytest.fixture
def closed_registration(client: httpx.Client, admin_headers: dict[str, str]) -> Iterator[None]:
    answer = client.put("/api/admin/config", json={"registration_enabled": False}, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    yield
    client.put("/api/admin/config", json={"registration_enabled": True}, headers=admin_headers)


def test_delete_keeps_the_log_rows_shown_as_deleted_user(
    client: httpx.Client, admin_headers: dict[str, str], unique_email: str, upstream: UpstreamServer
) -> None:
    model = unique_model()
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    user = create(client, admin_headers, unique_email)
    token = login(client, unique_email).json()["access_token"]
    answer = client.post("/api/chat/completions", json=chat_body(model, stream=False), headers=bearer(token))
    assert answer.status_code == 200
    client.post("/api/chat/completions", json=chat_body(model, stream=False))  # a guest's call, for contrast

    def logs() -> list[dict]:
        page = client.get("/api/admin/logs", params={"model": model}, headers=admin_headers)
        return page.json()["items"]

    wait_until(lambda: len(logs()) == 2, what="both calls logged")
    assert {item["username"] for item in logs()} == {unique_email, None}

    deleted = client.delete(f"/api/admin/users/{user['id']}", headers=admin_headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.delete(f"/api/admin/users/{user['id']}", headers=admin_headers), 404, "not_found")
    assert find(client, admin_headers, q=unique_email)["total"] == 0
    assert_error(login(client, unique_email), 401, "unauthorized")
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 401

    rows = {item["user_id"]: item for item in logs()}
    assert rows[user["id"]]["username"] == "已删除用户" and rows[user["id"]]["user_deleted"] is True
    assert rows[None]["username"] is None and rows[None]["user_deleted"] is False
    by_id = client.get("/api/admin/logs", params={"user": str(user["id"])}, headers=admin_headers).json()
    assert by_id["total"] == 1  # the deleted user's calls are still found by their id

    export = client.get("/api/admin/logs/export", params={"model": model}, headers=admin_headers)
    table = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert sorted(row["user"] for row in table) == sorted(["已删除用户", "访客"])
    english = {**admin_headers, "Accept-Language": "en-US,en;q=0.9"}
    export = client.get("/api/admin/logs/export", params={"model": model}, headers=english)
    table = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert sorted(row["user"] for row in table) == ["Deleted user", "Guest"]
    listed = client.get("/api/admin/logs", params={"model": model}, headers=english).json()["items"]
    assert {item["username"] for item in listed} == {"Deleted user", None}

    again = create(client, admin_headers, unique_email)  # the e-mail is free again: a new account
    assert again["id"] != user["id"]


@pytest.mark.parametrize("action", ["delete", "disable", "reset_password", "revoke_key"])
def test_a_revocation_ends_the_users_open_stream(
    client: httpx.Client,
    admin_headers: dict[str, str],
    unique_email: str,
    upstream: UpstreamServer,
    action: str,
) -> None:
    """A user mid-stream loses access: the stream ends cleanly within the refresh period — the error
    event a new request would get, then the end — and the row says the caller's side ended it."""
    model = unique_model()
    # an answer that goes on (a word every 200 ms) until the revocation ends it: a stall would meet the
    # shared app's 3 s idle timeout first when a busy machine takes that long to revoke
    add_channel(client, admin_headers, base_url=upstream.base_url("open-200"), model=model)
    user = create(client, admin_headers, unique_email)
    credential = login(client, unique_email).json()["access_token"]
    expected = {
        "delete": "unauthorized",
        "disable": "account_disabled",
        "reset_password": "unauthorized",
        "revoke_key": "invalid_api_key",
    }[action]
    if action == "revoke_key":
        made = client.post("/api/keys", json={"name": "ci"}, headers=bearer(credential))
        assert made.status_code == 201, made.text
        key = made.json()
        credential = key["key"]
    path = f"/api/admin/users/{user['id']}"
    with client.stream(
        "POST", "/api/chat/completions", json=chat_body(model, stream=True), headers=bearer(credential)
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert any('"content"' in line for line in lines), "the first words"
        if action == "delete":
            assert client.delete(path, headers=admin_headers).status_code == 204
        elif action == "disable":
            assert client.patch(path, json={"disabled": True}, headers=admin_headers).status_code == 200
        elif action == "reset_password":
            reset = client.post(
                f"{path}/password", json={"password": "temporary-pass-9"}, headers=admin_headers
            )
            assert reset.status_code == 200
        else:
            assert client.delete(f"/api/admin/keys/{key['id']}", headers=admin_headers).status_code == 204
        rest = [line for line in lines if line.startswith("data: ")]  # ends: the answer would not
    assert rest and expected in rest[-1], rest  # words, then the error event, and no [DONE]
    assert all('"content"' in line for line in rest[:-1]), rest

    def row() -> dict | None:
        items = client.get("/api/admin/logs", params={"model": model}, headers=admin_headers).json()["items"]
        return items[0] if items else None

    wait_until(lambda: row() is not None, what="the call's row")
    logged = row()
    assert logged is not None and logged["status"] == "client_aborted" and logged["error"] is None
