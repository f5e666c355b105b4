"""Tokens are bound to the account's password (docs/behaviour.md#accounts-and-tokens): a restart keeps
them, a new ``ADMIN_PASSWORD`` revokes every admin token issued before, and a user's new password hash
revokes that user's tokens (within the identity cache's period when the hash is changed behind the
app's back)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx

from services.security import hash_password
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, production_env, run_app, wait_until


def _admin_token(base_url: str, password: str = TEST_ADMIN_PASSWORD) -> str:
    response = httpx.post(
        f"{base_url}/api/auth/admin/login",
        json={"username": "admin", "password": password},
        timeout=HANG_SECONDS,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _config_status(base_url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{base_url}/api/admin/config", headers=headers, timeout=HANG_SECONDS).status_code


def test_a_new_admin_password_revokes_the_admin_tokens_a_restart_does_not(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = production_env(data_dir)
    with run_app(env, log_path=tmp_path / "first.log") as app:
        token = _admin_token(app.base_url)
        assert _config_status(app.base_url, token) == 200
    with run_app(env, log_path=tmp_path / "same-password.log") as app:
        assert _config_status(app.base_url, token) == 200, "a restart keeps the admin signed in"
    changed = {**env, "ADMIN_PASSWORD": "a-new-admin-password-2"}
    with run_app(changed, log_path=tmp_path / "new-password.log") as app:
        refused = httpx.get(
            f"{app.base_url}/api/admin/config",
            headers={"Authorization": f"Bearer {token}"},
            timeout=HANG_SECONDS,
        )
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"
        assert _config_status(app.base_url, _admin_token(app.base_url, "a-new-admin-password-2")) == 200


def test_a_users_new_password_hash_revokes_their_tokens(tmp_path: Path) -> None:
    """No route changes a user's password yet (issue 18 adds one); the new hash is written directly."""
    data_dir = tmp_path / "data"
    with (
        run_app(production_env(data_dir), log_path=tmp_path / "app.log") as app,
        httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http,
    ):
        email = f"u-{uuid.uuid4().hex[:8]}@example.com"
        assert (
            http.post("/api/auth/register", json={"email": email, "password": "password-1"}).status_code
            == 201
        )
        token = http.post("/api/auth/login", json={"email": email, "password": "password-1"}).json()[
            "access_token"
        ]
        me = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/auth/me", headers=me).status_code == 200
        with sqlite3.connect(app.db_path) as db:
            db.execute(
                "UPDATE users SET password_hash = ? WHERE email = ?", (hash_password("password-2"), email)
            )
        # a change made outside the app reaches its identity cache within the cache's period (2 s)
        wait_until(lambda: http.get("/api/auth/me", headers=me).status_code == 401, what="token refused")
        fresh = http.post("/api/auth/login", json={"email": email, "password": "password-2"}).json()[
            "access_token"
        ]
        assert http.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
