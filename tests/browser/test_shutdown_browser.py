"""SIGTERM while the chat page is streaming an answer, in headless Chromium against a real server: the
stop closes the page's connection, so its answer is cut at once (not after the grace), logged as
``server_shutdown``, the upstream request is closed, and the process exits."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx

from tests.browser.test_chat_browser import answer_text, choose_model, open_chat, type_and_send, wait
from tests.chat_helpers import add_channel
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, production_env, run_app
from tests.upstream_server import UpstreamServer

GRACE = 60.0  # far longer than the test may take: the page's answer must not wait for it


def test_sigterm_cuts_a_streaming_chat_page_at_once_as_server_shutdown(
    driver, tmp_path: Path, upstream: UpstreamServer
) -> None:
    data_dir = tmp_path / "data"
    env = production_env(data_dir, SHUTDOWN_GRACE_SECONDS=str(GRACE), GUEST_RPM="1000", **TEST_TIMEOUTS)
    with run_app(env, log_path=tmp_path / "app.log") as app:
        with httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http:
            login = http.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            add_channel(  # an answer without an end of its own
                http, headers, base_url=upstream.base_url("open-150"), model="endless-model", name="Endless"
            )
        open_chat(driver, app)
        choose_model(driver, "endless-model")
        before = len(upstream.ends_of("endless-model"))
        type_and_send(driver, "a long answer while the server stops")
        wait(driver).until(lambda d: "w2" in answer_text(d))

        signalled = time.monotonic()
        app.process.send_signal(signal.SIGTERM)
        app.process.wait(timeout=HANG_SECONDS)
        took = time.monotonic() - signalled
        print(f"SIGTERM with a chat page streaming: exited after {took:.2f} s")

    assert took < GRACE, (
        f"the page's answer was cut when its connection closed, not after the grace ({took:.1f} s)"
    )
    with sqlite3.connect(data_dir / "chat.db") as db:
        assert db.execute("SELECT status FROM chat_logs").fetchall() == [("server_shutdown",)]
    ends = upstream.ends_of("endless-model")[before:]
    assert [end.cancelled for end in ends] == [True], "the upstream request was closed"
    assert not list((data_dir / "call-log-journal").rglob("*.seg")), "the row is in the database"
