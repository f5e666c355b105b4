"""The identity cache on a real SQLite file: users read lazily into a bounded LRU and re-read by each
reload, keys loaded in full, tokens' versions and disabled users, bad keys throttled per IP."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from app.models import ApiKey, User, utcnow
from services.errors import AccountDisabledCredential, AuthenticationFailed, InvalidApiKey, RateLimited
from services.identity import IdentityCache, key_hash
from services.security import create_token, password_fingerprint
from services.throttle import BAD_KEYS_PER_IP, Throttle
from tests.helpers import migrated_engine

SECRET = "identity-test-secret-0123456789"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return migrated_engine(tmp_path / "identity.db")


def add_users(engine: Engine, count: int, start: int = 1) -> None:
    rows = [
        {"id": n, "email": f"u{n}@example.com", "password_hash": f"hash-{n}"}
        for n in range(start, start + count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(User), rows)


def token_for(user_id: int, version: int = 0) -> str:
    return create_token(
        subject=str(user_id),
        kind="user",
        secret=SECRET,
        lifetime=timedelta(hours=1),
        password_fingerprint=password_fingerprint(f"hash-{user_id}", secret=SECRET),
        version=version,
    )


def test_users_are_read_lazily_into_a_bounded_lru(engine: Engine) -> None:
    add_users(engine, 10)
    cache = IdentityCache(engine, SECRET, Throttle(), max_users=3)
    cache.load()

    async def read(ids: list[int]) -> list[int | None]:
        return [None if (u := await cache.user(n)) is None else u.id for n in ids]

    assert asyncio.run(read([1, 2, 3, 4, 5, 99])) == [1, 2, 3, 4, 5, None]
    assert len(cache._users) == 3 and list(cache._users) == [3, 4, 5]
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET rpm_limit = 7, disabled = 1 WHERE id = 5"))
        connection.execute(text("DELETE FROM users WHERE id = 4"))
    cache.refresher.reload()  # re-reads exactly the cached users
    state = cache._users[5]
    assert (state.rpm_limit, state.disabled) == (7, True)
    assert 4 not in cache._users


def test_tokens_versions_and_disabled_users(engine: Engine) -> None:
    add_users(engine, 2)
    cache = IdentityCache(engine, SECRET, Throttle())
    cache.load()

    async def check() -> None:
        assert (await cache.authenticate(token_for(1), ip="192.0.2.1")).id == 1
        with engine.begin() as connection:
            connection.execute(text("UPDATE users SET token_version = 2 WHERE id = 1"))
            connection.execute(text("UPDATE users SET disabled = 1 WHERE id = 2"))
        cache.user_changed(1)
        cache.user_changed(2)
        with pytest.raises(AuthenticationFailed, match="重新登录"):
            await cache.authenticate(token_for(1, version=1), ip="192.0.2.1")
        assert (await cache.authenticate(token_for(1, version=2), ip="192.0.2.1")).id == 1
        with pytest.raises(AccountDisabledCredential):
            await cache.authenticate(token_for(2), ip="192.0.2.1")

    asyncio.run(check())


def test_keys_from_memory_and_bad_keys_throttled(engine: Engine) -> None:
    add_users(engine, 1)
    with engine.begin() as connection:
        connection.execute(
            insert(ApiKey),
            [
                {
                    "user_id": 1,
                    "name": "a",
                    "prefix": "sk-good",
                    "key_hash": key_hash("sk-good"),
                    "expires_at": None,  # an executemany takes its columns from the first row
                },
                {
                    "user_id": 1,
                    "name": "b",
                    "prefix": "sk-old",
                    "key_hash": key_hash("sk-old"),
                    "expires_at": utcnow() - timedelta(seconds=1),
                },
            ],
        )
    cache = IdentityCache(engine, SECRET, Throttle())
    cache.load()

    async def check() -> None:
        found = await cache.authenticate("sk-good", ip="192.0.2.9")
        assert (found.id, found.api_key_id) == (1, 1)
        for n in range(BAD_KEYS_PER_IP):
            with pytest.raises(InvalidApiKey):
                await cache.authenticate(["sk-old", "sk-nope", "sk-"][n % 3], ip="192.0.2.9")
        with pytest.raises(RateLimited):
            await cache.authenticate("sk-nope", ip="192.0.2.9")
        with pytest.raises(InvalidApiKey):  # another IP is counted apart
            await cache.authenticate("sk-nope", ip="192.0.2.10")
        assert (await cache.authenticate("sk-good", ip="192.0.2.9")).id == 1  # a good key still passes

    asyncio.run(check())


def test_a_reload_costs_the_cached_users_not_the_table(engine: Engine) -> None:
    """100k users, 5k of them active (cached): a reload reads those 5k and the keys."""
    add_users(engine, 100_000)
    cache = IdentityCache(engine, SECRET, Throttle())
    cache.load()

    async def touch() -> None:
        for n in range(1, 100_001, 20):
            await cache.user(n)

    asyncio.run(touch())
    assert len(cache._users) == 5_000
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    started = time.perf_counter()
    assert cache.refresher.reload()
    elapsed = time.perf_counter() - started
    user_queries = [s for s in statements if "FROM users" in s]
    assert len(user_queries) == 10  # 5,000 ids in chunks of 500: never a scan of the 100k
    assert all(" IN " in s for s in user_queries)
    print(f"reload of 5,000 cached users out of 100,000: {elapsed * 1000:.1f} ms")
