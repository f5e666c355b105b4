"""The auth API of docs/api.md#auth against a real server."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from jose import jwt

from tests.helpers import TEST_ADMIN_PASSWORD, TEST_SECRET_KEY

PASSWORD = "correct-horse-1"


def register(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/register", json={"email": email, "password": password})


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def assert_error(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["type"] == kind
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def test_register_login_me(client: httpx.Client, unique_email: str) -> None:
    response = register(client, unique_email)
    assert response.status_code == 201
    assert response.json() == {"message": "注册成功"}

    response = login(client, unique_email.upper())  # emails are case-insensitive
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 7 * 24 * 3600

    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == unique_email and isinstance(me.json()["id"], int)


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "a@b",
        "@example.com",
        "a b@example.com",
        "a@@example.com",
        "x" * 250 + "@example.com",
        "",
    ],
)
def test_register_refuses_malformed_email(client: httpx.Client, email: str) -> None:
    body = assert_error(register(client, email), 422, "validation_error")
    assert "邮箱" in body["error"]["message"]


@pytest.mark.parametrize(
    ("password", "fragment"),
    [("short", "8"), ("1234567", "8"), ("x" * 73, "72"), ("密" * 25, "72")],  # 25 × 3 bytes = 75 bytes
)
def test_register_refuses_bad_password(
    client: httpx.Client, unique_email: str, password: str, fragment: str
) -> None:
    body = assert_error(register(client, unique_email, password), 422, "validation_error")
    assert fragment in body["error"]["message"]
    assert password not in response_text(body), "the rejected password must not be echoed"


def response_text(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False)


def test_password_of_exactly_72_bytes_works(client: httpx.Client, unique_email: str) -> None:
    password = "密" * 24  # 72 bytes
    assert register(client, unique_email, password).status_code == 201
    assert login(client, unique_email, password).status_code == 200


def test_duplicate_email_is_409(client: httpx.Client, unique_email: str) -> None:
    assert register(client, unique_email).status_code == 201
    assert_error(register(client, unique_email.upper()), 409, "conflict")
    assert login(client, unique_email).status_code == 200, "the first account is untouched"


def test_login_says_the_same_for_unknown_email_and_wrong_password(
    client: httpx.Client, unique_email: str
) -> None:
    assert register(client, unique_email).status_code == 201
    wrong_password = assert_error(login(client, unique_email, "wrong-password"), 401, "unauthorized")
    unknown = assert_error(login(client, "nobody-" + unique_email), 401, "unauthorized")
    assert wrong_password == unknown


@pytest.mark.parametrize("password", ["short", "x" * 73])
def test_login_refuses_out_of_range_password_without_500(
    client: httpx.Client, unique_email: str, password: str
) -> None:
    assert_error(login(client, unique_email, password), 422, "validation_error")


@pytest.mark.parametrize(
    "payload", [b"not json", b"[]", b'{"email": 5, "password": []}', b"{}", b'{"email": "a@example.com"}']
)
def test_malformed_bodies_are_422(client: httpx.Client, payload: bytes) -> None:
    response = client.post("/api/auth/login", content=payload, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error")


def test_admin_login(client: httpx.Client) -> None:
    response = client.post(
        "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    claims = jwt.get_unverified_claims(response.json()["access_token"])
    assert claims["kind"] == "admin"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert response.json()["expires_in"] == 24 * 3600
    wrong = client.post("/api/auth/admin/login", json={"username": "admin", "password": "wrong-password"})
    unknown = client.post("/api/auth/admin/login", json={"username": "nobody", "password": "wrong-password"})
    assert_error(wrong, 401, "unauthorized")
    assert wrong.json() == unknown.json()


def _user_token(client: httpx.Client, email: str) -> str:
    assert register(client, email).status_code == 201
    return login(client, email).json()["access_token"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(valid: str, user_id: str) -> dict[str, str]:
    header, payload, signature = valid.split(".")
    claims = jwt.get_unverified_claims(valid)
    now = datetime.now(UTC)
    return {
        "tampered payload": f"{header}.{_b64({**claims, 'sub': '999999'})}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg HS512": jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS512"),
        "expired": jwt.encode(
            {
                "sub": user_id,
                "kind": "user",
                "iat": int((now - timedelta(days=9)).timestamp()),
                "exp": now - timedelta(days=1),
            },
            TEST_SECRET_KEY,
            algorithm="HS256",
        ),
        "no exp": jwt.encode(
            {"sub": user_id, "kind": "user", "iat": int(now.timestamp())}, TEST_SECRET_KEY, algorithm="HS256"
        ),
        "other secret": jwt.encode(claims, "another-secret-key-0123456789", algorithm="HS256"),
        "garbage": "not.a.jwt",
        "empty segments": "..",
        "admin kind": jwt.encode({**claims, "kind": "admin"}, TEST_SECRET_KEY, algorithm="HS256"),
    }


def test_me_refuses_bad_tokens(client: httpx.Client, unique_email: str) -> None:
    token = _user_token(client, unique_email)
    user_id = str(jwt.get_unverified_claims(token)["sub"])
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for name, bad in _bad_tokens(token, user_id).items():
        response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert response.json()["error"]["type"] == "unauthorized", name


def test_me_needs_a_token(client: httpx.Client) -> None:
    assert_error(client.get("/api/auth/me"), 401, "unauthorized")
    assert_error(client.get("/api/auth/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")


def test_admin_token_is_not_a_user_token(client: httpx.Client, admin_token: str) -> None:
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {admin_token}"})
    assert_error(response, 401, "unauthorized")


def test_every_admin_route_refuses_a_user_token(client: httpx.Client, unique_email: str) -> None:
    """Every operation under /api/admin in the OpenAPI document: 401 without a token, 403 with a user's
    (the fuzzing run with a user token leaves these routes to this test)."""
    register(client, unique_email)
    user_token = login(client, unique_email).json()["access_token"]
    paths = client.get("/openapi.json").json()["paths"]
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, item in paths.items()
        if path.startswith("/api/admin/")
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) > 20, operations
    for method, path in operations:
        assert_error(client.request(method, path, json={}), 401, "unauthorized")
        answer = client.request(method, path, json={}, headers={"Authorization": f"Bearer {user_token}"})
        assert answer.status_code == 403 and answer.json()["error"]["type"] == "forbidden", (method, path)
