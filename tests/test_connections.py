"""The connection limits an operator sets (app/connections.py, docs/configuration.md#connections): the
open-files limit raised at start, and MAX_CONNECTIONS."""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import HANG_SECONDS, ROOT, RunningApp, production_env, run_app, wait_until

MAX_CONNECTIONS = 20


def _run_with_open_files(soft: int, code: str) -> subprocess.CompletedProcess[str]:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        preexec_fn=lower,  # only setrlimit, before exec
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
        check=True,
    )


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    code = (
        "import resource; from app.connections import raise_open_files_limit; "
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    ran = _run_with_open_files(256, code)
    expected = hard if hard != resource.RLIM_INFINITY else 256
    assert ran.stdout.split() == [str(expected)] * 2


def test_a_low_open_files_limit_is_reported() -> None:
    """A hard limit as low as the soft one cannot be raised: the start-up log says what to do."""
    code = (
        "import logging, resource; logging.basicConfig(); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
        "from app.connections import raise_open_files_limit; raise_open_files_limit()"
    )
    ran = _run_with_open_files(256, code)
    assert "the open-files limit is 256" in ran.stderr and "ulimits nofile" in ran.stderr


@pytest.fixture(scope="module")
def capped_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir: Path = tmp_path_factory.mktemp("capped")
    env = production_env(data_dir, MAX_CONNECTIONS=str(MAX_CONNECTIONS))
    with run_app(env, log_path=data_dir / "app.log") as app:
        yield app


def test_past_max_connections_a_request_is_answered_503_at_once(capped_app: RunningApp) -> None:
    """MAX_CONNECTIONS open connections (idle ones count too): the next request is refused with a 503
    instead of waiting or taking a descriptor for its work; once they close, requests are served."""
    host, port = capped_app.base_url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=HANG_SECONDS) for _ in range(MAX_CONNECTIONS)]
    try:
        with httpx.Client(base_url=capped_app.base_url, timeout=HANG_SECONDS) as http:
            refused = http.get("/api/health")
    finally:
        for sock in idle:
            sock.close()
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1" and refused.headers["X-Content-Type-Options"] == "nosniff"
    assert re.fullmatch("[0-9a-f]{32}", refused.headers["X-Request-ID"]), "every answer carries its id"

    def served() -> bool:
        with httpx.Client(base_url=capped_app.base_url, timeout=HANG_SECONDS) as http:
            return http.get("/api/health").status_code == 200

    wait_until(served, what="a request served once the idle connections closed")
