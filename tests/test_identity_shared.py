"""Identity across instances (docs/behaviour.md#shared-state): two app instances on one PostgreSQL
server and one redis-server. A key created on one works on the other; a revoke, a password change and
a disable made through one instance (or announced by whoever made it) are honoured by the other within
2 s — here by announcement alone, as the periodic reloads are set to two minutes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text

from tests.helpers import HANG_SECONDS, production_env, run_app, wait_until, wait_until_ready
from tests.postgres_server import postgres_server
from tests.redis_server import run_redis

PUSH_ONLY = {"CACHE_REFRESH_SECONDS": "120"}
HONOURED_WITHIN = 2.0  # the bound


def _refused_within(check: Callable[[], int], what: str) -> float:
    """Seconds until ``check`` answers 401 (polled); the bound is the requirement itself."""
    started = time.monotonic()
    wait_until(lambda: check() == 401, poll=0.02, what=what)
    elapsed = time.monotonic() - started
    assert elapsed < HONOURED_WITHIN, f"{what}: {elapsed:.2f} s"
    return elapsed


def test_revoke_password_change_and_disable_reach_the_other_instance(tmp_path: Path) -> None:
    with postgres_server() as database, run_redis(tmp_path) as redis_url:
        env = production_env(
            tmp_path / "data", DATABASE_URL=database.url, RATE_LIMIT_STORAGE=redis_url, **PUSH_ONLY
        )
        with (
            run_app(env, log_path=tmp_path / "a.log", ready=False) as first,
            run_app(env, log_path=tmp_path / "b.log", ready=False) as second,
        ):
            wait_until_ready(first)
            wait_until_ready(second)
            a = httpx.Client(base_url=first.base_url, timeout=HANG_SECONDS)
            b = httpx.Client(base_url=second.base_url, timeout=HANG_SECONDS)
            email = f"shared-{uuid.uuid4().hex[:8]}@example.com"
            assert (
                a.post("/api/auth/register", json={"email": email, "password": "password-1"}).status_code
                == 201
            )
            token = a.post("/api/auth/login", json={"email": email, "password": "password-1"}).json()[
                "access_token"
            ]
            session = {"Authorization": f"Bearer {token}"}
            assert b.get("/api/auth/me", headers=session).status_code == 200  # B reads the user lazily

            def on_b(credential: str) -> Callable[[], int]:
                return lambda: (
                    b.get("/api/models", headers={"Authorization": f"Bearer {credential}"}).status_code
                )

            # a new key: announced, so B knows it without waiting for a periodic reload
            kept = a.post("/api/keys", json={"name": "kept"}, headers=session).json()
            doomed = a.post("/api/keys", json={"name": "doomed"}, headers=session).json()
            wait_until(lambda: on_b(doomed["key"])() == 200, what="the new key on B")
            assert on_b(kept["key"])() == 200

            assert a.delete(f"/api/keys/{doomed['id']}", headers=session).status_code == 204
            revoked = _refused_within(on_b(doomed["key"]), "the revoked key on B")
            assert (
                b.get("/api/models", headers={"Authorization": f"Bearer {doomed['key']}"}).json()["error"][
                    "type"
                ]
                == "invalid_api_key"
            )

            changed = a.post(
                "/api/auth/password",
                json={"old_password": "password-1", "new_password": "password-2"},
                headers=session,
            )
            assert changed.status_code == 200, changed.text
            changed_in = _refused_within(on_b(token), "the old token on B after a password change")
            fresh = changed.json()["access_token"]
            assert on_b(fresh)() == 200 and on_b(kept["key"])() == 200

            # a disable as the admin's users page makes it: committed, then IdentityCache.user_changed()
            # announces "identity" (here announced by hand, from outside both instances)
            engine = create_engine(database.url)
            with engine.begin() as connection:
                connection.execute(text("UPDATE users SET disabled = true WHERE email = :e"), {"e": email})
            engine.dispose()
            redis.Redis.from_url(redis_url).publish("pyaichat:changes", "identity outside")
            disabled = _refused_within(on_b(kept["key"]), "a disabled user's key on B")
            refused = b.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"})
            assert refused.status_code == 401 and refused.json()["error"]["type"] == "account_disabled"
            assert a.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401
            a.close()
            b.close()
            print(f"honoured on the other instance after {revoked:.3f} / {changed_in:.3f} / {disabled:.3f} s")
