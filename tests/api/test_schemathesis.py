"""Schemathesis against a real app, from its own OpenAPI document: every phase (examples, coverage,
fuzzing, stateful), every check, once with an admin token and once with a user token (the routes a user
may call: ``/api/admin/*`` answers 403 to one, as tests/api/test_auth.py checks). The target is
zero server errors; the run's other findings are printed for review.

Schemathesis's ``positive_data_acceptance`` check (a request the schema allows but the app refuses)
finds what no schema can say: a CIDR that parses, a date in the years the log holds, an e-mail with a
domain. Those are 422s with a readable message, which is what the other checks want of bad input.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chat_helpers import add_channel
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app
from tests.upstream_server import UpstreamServer

SEED = "20261128"
# per operation and phase: 25 (10 saved only a few seconds: the coverage phase dominates); deeper:
# PYAICHAT_FUZZ_EXAMPLES=200 pytest tests/api/test_schemathesis.py
EXAMPLES = os.environ.get("PYAICHAT_FUZZ_EXAMPLES", "25")


def _schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("schemathesis is missing in CI (it is in pyaichat[test])")
        pytest.skip('schemathesis is not installed (pip install ".[test]")')
    return [found]


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamServer) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp("schemathesis")
    env = production_env(
        data_dir,
        GUEST_RPM="1000000",
        USER_RPM="1000000",
        REGISTER_PER_IP_PER_HOUR="1000000",
        **TEST_TIMEOUTS,
    )
    with run_app(env, log_path=data_dir / "app.log") as app:
        with httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http:
            token = http.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            ).json()["access_token"]
            add_channel(  # so that chat calls reach a (loopback) upstream rather than stopping at 404
                http,
                {"Authorization": f"Bearer {token}"},
                base_url=upstream.base_url("ok"),
                model="gpt-4o-mini",
            )
        yield app


def _token(app: RunningApp, who: str) -> str:
    with httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http:
        if who == "admin":
            login = http.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            )
        else:
            credentials = {"email": "fuzz@example.com", "password": "fuzz-password-1"}
            http.post("/api/auth/register", json=credentials)
            login = http.post("/api/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        return str(login.json()["access_token"])


@pytest.fixture(scope="module")
def tokens(fuzzed_app: RunningApp) -> dict[str, str]:
    """Both tokens before any run: a run fuzzes the sign-in routes (their throttles then refuse this
    address for 15 minutes) and the settings (a registration limit of 1 refuses the user's account)."""
    return {who: _token(fuzzed_app, who) for who in ("admin", "user")}


@pytest.mark.parametrize("who", ["admin", "user"])
def test_no_server_errors(fuzzed_app: RunningApp, tokens: dict[str, str], who: str, tmp_path: Path) -> None:
    command = [
        *_schemathesis(),
        "run",
        f"{fuzzed_app.base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "2",
        "--request-timeout",
        str(HANG_SECONDS),
        "--header",
        f"Authorization: Bearer {tokens[who]}",
        "--no-color",
    ]
    if who == "user":  # the admin run fuzzes the console's routes; a user token gets 403 from each
        command += ["--exclude-path-regex", "^/api/admin/"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_SECONDS * 3, check=False
    )
    output = result.stdout + result.stderr
    summary = output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:]
    print(summary)  # shown with -rP: what else the run found
    assert "Test cases:" in output, output[-3000:]  # the run itself worked
    server_errors = re.findall(r"^.*(?:ST101|Server error).*$", output, flags=re.MULTILINE)
    assert not server_errors, output
    assert "Traceback" not in fuzzed_app.log_text()
