"""``python -m app rotate-encryption-key``: stored channel secrets move from the old ENCRYPTION_KEY to the
new one, all or nothing, and the app started with the new key calls the upstream with the same secrets."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body
from tests.helpers import (
    HANG_SECONDS,
    ROOT,
    TEST_ADMIN_PASSWORD,
    TEST_ENCRYPTION_KEY,
    production_env,
    run_app,
)
from tests.upstream_server import UpstreamServer

NEW_KEY = "the-new-encryption-key"
UPSTREAM_SECRET = "sk-upstream-secret-7c1f"
HEADER_SECRET = "header-secret-93ab"
ADMIN = {"username": "admin", "password": TEST_ADMIN_PASSWORD}


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    server = UpstreamServer().start()
    yield server
    server.stop()


def rotate(data_dir: Path, *, old: str | None, new: str) -> subprocess.CompletedProcess[str]:
    env = production_env(data_dir, ENCRYPTION_KEY=new)
    if old is not None:
        env["OLD_ENCRYPTION_KEY"] = old
    return subprocess.run(
        [sys.executable, "-m", "app", "rotate-encryption-key"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )


def stored_secrets(data_dir: Path) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(data_dir / "chat.db") as db:
        return db.execute("SELECT api_key, proxy, headers FROM channels ORDER BY id").fetchall()


@contextmanager
def admin_client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=HANG_SECONDS, base_url=base_url) as http:
        token = http.post("/api/auth/admin/login", json=ADMIN).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def test_secrets_move_to_the_new_key_and_keep_working(
    data_dir: Path, tmp_path: Path, upstream: UpstreamServer
) -> None:
    with (
        run_app(production_env(data_dir), log_path=tmp_path / "old.log") as app,
        admin_client(app.base_url) as http,
    ):
        body = {
            "name": "with every secret",
            "base_url": upstream.base_url(),
            "api_key": UPSTREAM_SECRET,
            "model_id": "m1",
            "proxy": "",
            "headers": {"X-Extra": HEADER_SECRET},
        }
        assert http.post("/api/admin/channels", json=body).status_code == 201
        add_channel(http, {}, base_url=upstream.base_url(), model="m2")
    before = stored_secrets(data_dir)

    wrong = rotate(data_dir, old="not-the-old-key", new=NEW_KEY)
    assert wrong.returncode == 2
    [reason] = [line for line in wrong.stderr.splitlines() if line.startswith("pyaichat:")]  # one line
    assert "channel 1 (with every secret): api_key opens with neither" in reason
    assert UPSTREAM_SECRET not in wrong.stderr + wrong.stdout
    assert stored_secrets(data_dir) == before, "a failed rotation changes nothing"

    done = rotate(data_dir, old=TEST_ENCRYPTION_KEY, new=NEW_KEY)
    assert done.returncode == 0, done.stderr
    secrets_stored = sum(value is not None for row in before for value in row)
    assert f"{secrets_stored} stored secrets re-encrypted" in done.stdout
    after = stored_secrets(data_dir)
    assert all(
        old != new
        for old_row, new_row in zip(before, after, strict=True)
        for old, new in zip(old_row, new_row, strict=True)
        if old
    )

    again = rotate(data_dir, old=TEST_ENCRYPTION_KEY, new=NEW_KEY)
    assert (
        again.returncode == 0
        and f"0 stored secrets re-encrypted ({secrets_stored} already were)" in again.stdout
    )
    assert stored_secrets(data_dir) == after

    env = production_env(data_dir, ENCRYPTION_KEY=NEW_KEY)
    with run_app(env, log_path=tmp_path / "new.log") as app, admin_client(app.base_url) as http:
        assert all(channel["api_key_readable"] for channel in http.get("/api/admin/channels").json())
        answer = httpx.post(
            f"{app.base_url}/api/chat/completions", json=chat_body("m1", stream=False), timeout=HANG_SECONDS
        )
        assert answer.status_code == 200, answer.text
    [call] = upstream.received
    assert call.headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert call.headers["x-extra"] == HEADER_SECRET


def test_the_command_needs_the_old_key_and_a_different_new_one(data_dir: Path) -> None:
    missing = rotate(data_dir, old=None, new=NEW_KEY)
    assert missing.returncode == 2 and "OLD_ENCRYPTION_KEY" in missing.stderr
    same = rotate(data_dir, old=NEW_KEY, new=NEW_KEY)
    assert same.returncode == 2 and "the same" in same.stderr
    assert NEW_KEY not in missing.stderr + same.stderr
