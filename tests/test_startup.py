"""Start-up as a real subprocess, in dev and production mode."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from app.config import SECRETS_FILE_NAME
from tests.helpers import ROOT, clean_environ, production_env, run_app


def test_dev_mode_generates_secrets_prints_banner_and_keeps_them(data_dir: Path, tmp_path: Path) -> None:
    env = clean_environ(DATABASE_PATH=str(data_dir / "chat.db"), APP_HOST="127.0.0.1")
    with run_app(env, log_path=tmp_path / "first.log") as app:
        log = app.log_text()
        port = app.base_url.rsplit(":", 1)[1]
        assert "development mode" in log
        for path in ("/", "/admin", "/docs", "/api"):
            assert f"http://127.0.0.1:{port}{path}" in log
        match = re.search(r"Admin password \(shown once\): (\S+)", log)
        assert match, log
        password = match.group(1)
        login = httpx.post(
            f"{app.base_url}/api/auth/admin/login", json={"username": "admin", "password": password}
        )
        assert login.status_code == 200
    secrets_text = (data_dir / SECRETS_FILE_NAME).read_text()

    with run_app(env, log_path=tmp_path / "second.log") as app:
        log = app.log_text()
        assert "shown once" not in log and password not in log
        assert "Using dev secrets from" in log
        login = httpx.post(
            f"{app.base_url}/api/auth/admin/login", json={"username": "admin", "password": password}
        )
        assert login.status_code == 200, "the restarted instance keeps the generated password"
    assert (data_dir / SECRETS_FILE_NAME).read_text() == secrets_text


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"SECRET_KEY": "change_me"}, "SECRET_KEY is a placeholder value"),
        ({"ENCRYPTION_KEY": "random_encrypt_key"}, "ENCRYPTION_KEY is a placeholder value"),
        ({"ADMIN_PASSWORD": ""}, "ADMIN_PASSWORD is not set"),
        ({"APP_PORT": "not-a-port"}, "APP_PORT"),
    ],
)
def test_production_refuses_bad_configuration(
    data_dir: Path, overrides: dict[str, str], fragment: str
) -> None:
    env = production_env(data_dir, **overrides)
    result = subprocess.run(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (data_dir / SECRETS_FILE_NAME).exists()


def test_production_mode_starts_with_real_secrets(data_dir: Path, tmp_path: Path) -> None:
    with run_app(production_env(data_dir), log_path=tmp_path / "app.log") as app:
        log = app.log_text()
        assert "production mode" in log and "Generated" not in log
        for secret in ("test-secret-key-0123456789abcdef", "test-encryption-key", "admin-password-123"):
            assert secret not in log


def test_console_script_is_installed() -> None:
    script = Path(sysconfig.get_path("scripts")) / "pyaichat"
    assert script.exists(), "pip install . must provide the pyaichat command"
    assert "app.main" in script.read_text()


def test_wrong_encryption_key_is_reported_not_sent_upstream(data_dir: Path, tmp_path: Path) -> None:
    from tests.chat_helpers import add_channel, chat_body
    from tests.helpers import TEST_ADMIN_PASSWORD
    from tests.upstream_server import UpstreamServer

    upstream = UpstreamServer().start()
    try:
        admin = {"username": "admin", "password": TEST_ADMIN_PASSWORD}
        with run_app(production_env(data_dir), log_path=tmp_path / "first.log") as app:
            token = httpx.post(f"{app.base_url}/api/auth/admin/login", json=admin).json()["access_token"]
            with httpx.Client(base_url=app.base_url) as http:
                add_channel(
                    http, {"Authorization": f"Bearer {token}"}, base_url=upstream.base_url(), model="m1"
                )
        with run_app(
            production_env(data_dir, ENCRYPTION_KEY="a-different-key"), log_path=tmp_path / "2.log"
        ) as app:
            with httpx.Client(base_url=app.base_url) as http:
                token = http.post("/api/auth/admin/login", json=admin).json()["access_token"]
                [channel] = http.get(
                    "/api/admin/channels", headers={"Authorization": f"Bearer {token}"}
                ).json()
                assert channel["api_key_readable"] is False
                test = http.post(
                    f"/api/admin/channels/{channel['id']}/test", headers={"Authorization": f"Bearer {token}"}
                )
                assert test.json()["ok"] is False and "ENCRYPTION_KEY" in test.json()["error"]
                chat = http.post("/api/chat/completions", json=chat_body("m1", stream=False))
                assert chat.status_code == 404
            assert "cannot be decrypted with ENCRYPTION_KEY" in app.log_text()
        assert upstream.received == [], "nothing was sent upstream with an undecryptable key"
    finally:
        upstream.stop()
