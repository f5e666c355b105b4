"""Start-up as a real subprocess, in dev and production mode."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from app.cli import parse_args
from app.config import SECRETS_FILE_NAME, Settings, StartupInfo
from app.main import banner
from tests.helpers import HANG_SECONDS, ROOT, clean_environ, free_port, production_env, run_app


def test_dev_mode_generates_secrets_prints_banner_and_keeps_them(data_dir: Path, tmp_path: Path) -> None:
    env = clean_environ(DATABASE_PATH=str(data_dir / "chat.db"), APP_HOST="127.0.0.1")
    with run_app(env, log_path=tmp_path / "first.log") as app:
        log = app.log_text()
        port = app.base_url.rsplit(":", 1)[1]
        assert "development mode" in log and f"Listening on 127.0.0.1:{port}\n" in log
        for path in ("/", "/admin", "/docs", "/api"):
            assert f"http://127.0.0.1:{port}{path}" in log
        match = re.search(r"Admin password \(shown once\): (\S+)", log)
        assert match, log
        password = match.group(1)
        login = httpx.post(
            f"{app.base_url}/api/auth/admin/login",
            timeout=HANG_SECONDS,
            json={"username": "admin", "password": password},
        )
        assert login.status_code == 200
    secrets_text = (data_dir / SECRETS_FILE_NAME).read_text()

    with run_app(env, log_path=tmp_path / "second.log") as app:
        log = app.log_text()
        assert "shown once" not in log and password not in log
        assert "Using dev secrets from" in log
        login = httpx.post(
            f"{app.base_url}/api/auth/admin/login",
            timeout=HANG_SECONDS,
            json={"username": "admin", "password": password},
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
    result = run_module(env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (data_dir / SECRETS_FILE_NAME).exists()


def run_module(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` for a command that ends by itself (the timeout only catches a hang)."""
    command = [sys.executable, "-m", "app", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_SECONDS)


def test_command_line_host_and_port_win_over_the_environment(data_dir: Path, tmp_path: Path) -> None:
    """``--host 0.0.0.0 --port N`` (``dev.py start`` passes its arguments on): the banner says where it
    listens, and links the loopback address to open, as a wildcard is not one to browse to."""
    port = free_port()
    env = production_env(data_dir, APP_HOST="127.0.0.1", APP_PORT=str(free_port()))
    args = ("app", "--host", "0.0.0.0", "--port", str(port))
    # a new interpreter, as a deployment starts it (the other starts fork one that has imported the app)
    with run_app(env, log_path=tmp_path / "app.log", module_args=args, port=port, fresh=True) as app:
        log = app.log_text()
        assert f"Listening on 0.0.0.0:{port} (all IPv4 interfaces)\n" in log
        assert f"Chat:      http://127.0.0.1:{port}/\n" in log
        assert f"OpenAI base_url: http://127.0.0.1:{port}/api\n" in log


@pytest.mark.parametrize(
    ("host", "listening", "url"),
    [
        ("::", "[::]:8123 (all interfaces)", "http://[::1]:8123"),
        ("::1", "[::1]:8123", "http://[::1]:8123"),
        ("192.0.2.7", "192.0.2.7:8123", "http://192.0.2.7:8123"),
        ("chat.example.com", "chat.example.com:8123", "http://chat.example.com:8123"),
    ],
)
def test_banner_shows_the_bind_address_and_a_url_to_open(host: str, listening: str, url: str) -> None:
    text = banner(Settings(app_host=host, app_port=8123), StartupInfo())
    assert f"  Listening on {listening}\n" in text
    for path in ("/", "/admin", "/docs", "/api"):
        assert f"{url}{path}" in text


def test_help_prints_the_usage_and_starts_nothing(data_dir: Path) -> None:
    result = run_module(clean_environ(DATABASE_PATH=str(data_dir / "chat.db")), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m app [-h] [--host HOST] [--port PORT] [COMMAND]")
    assert "APP_HOST" in result.stdout and "APP_PORT" in result.stdout and "serve" in result.stdout
    assert not any(data_dir.iterdir()), "no database, no secrets"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--port", "eighty"), "argument --port: not a port number: 'eighty'"),
        (("--port", "70000"), "argument --port: 70000 is not between 1 and 65535"),
        (("--verbose",), "unrecognized arguments: --verbose"),
        (("serve", "now"), "unrecognized arguments: now"),
    ],
)
def test_bad_arguments_print_usage_and_one_line_reason(
    data_dir: Path, args: tuple[str, ...], reason: str
) -> None:
    result = run_module(clean_environ(DATABASE_PATH=str(data_dir / "chat.db")), *args)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("usage: python -m app"), result.stderr
    assert lines[-1].endswith(f"error: {reason}"), result.stderr
    assert "Traceback" not in result.stderr and not any(data_dir.iterdir())


def test_an_app_that_exits_is_reported_at_once_with_its_log(data_dir: Path, tmp_path: Path) -> None:
    """run_app waits for the app while it runs however long it takes, but not for one that has ended."""
    args = ("app", "--port", "eighty")
    with (
        pytest.raises(RuntimeError, match=r"(?s)exited with 2:\n.*argument --port: not a port number"),
        run_app(production_env(data_dir), log_path=tmp_path / "app.log", module_args=args),
    ):
        pass


def test_options_go_before_or_after_the_command() -> None:
    assert vars(parse_args([])) == {"host": None, "port": None, "command": "serve"}
    assert vars(parse_args(["--port", "9000", "serve"])) == {"host": None, "port": 9000, "command": "serve"}
    given = parse_args(["--host", "::", "serve", "--port", "9001"])
    assert (given.host, given.port, given.command) == ("::", 9001, "serve")


def test_production_mode_starts_with_real_secrets(data_dir: Path, tmp_path: Path) -> None:
    with run_app(production_env(data_dir), log_path=tmp_path / "app.log") as app:
        log = app.log_text()
        assert "production mode" in log and "Generated" not in log
        for secret in ("test-secret-key-0123456789abcdef", "test-encryption-key", "admin-password-123"):
            assert secret not in log


def test_console_script_is_installed() -> None:
    script = Path(sysconfig.get_path("scripts")) / "pyaichat"
    assert script.exists(), "pip install . must provide the pyaichat command"
    assert "app.cli" in script.read_text()


def test_wrong_encryption_key_is_reported_not_sent_upstream(data_dir: Path, tmp_path: Path) -> None:
    from tests.chat_helpers import add_channel, chat_body
    from tests.helpers import TEST_ADMIN_PASSWORD
    from tests.upstream_server import UpstreamServer

    upstream = UpstreamServer().start()
    try:
        admin = {"username": "admin", "password": TEST_ADMIN_PASSWORD}
        with run_app(production_env(data_dir), log_path=tmp_path / "first.log") as app:
            token = httpx.post(
                f"{app.base_url}/api/auth/admin/login", timeout=HANG_SECONDS, json=admin
            ).json()["access_token"]
            with httpx.Client(timeout=HANG_SECONDS, base_url=app.base_url) as http:
                add_channel(
                    http, {"Authorization": f"Bearer {token}"}, base_url=upstream.base_url(), model="m1"
                )
        with run_app(
            production_env(data_dir, ENCRYPTION_KEY="a-different-key"), log_path=tmp_path / "2.log"
        ) as app:
            with httpx.Client(timeout=HANG_SECONDS, base_url=app.base_url) as http:
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


def test_every_interface_on_ipv6_serves_ipv4_too(data_dir: Path, tmp_path: Path) -> None:
    """``APP_HOST=::`` is one dual-stack socket: IPv4 and IPv6 clients both reach it, and an IPv4
    client's address is its IPv4 address (not the mapped ``::ffff:`` form)."""
    import socket

    if not socket.has_dualstack_ipv6():
        pytest.skip("no dual-stack IPv6 on this machine")
    env = production_env(data_dir, APP_HOST="::", GUEST_RPM="1000")
    with run_app(env, log_path=tmp_path / "app.log") as app:  # run_app waits on http://127.0.0.1:port
        port = app.base_url.rsplit(":", 1)[1]
        assert httpx.get(f"http://[::1]:{port}/api/health", timeout=HANG_SECONDS).status_code == 200
        assert f"Listening on [::]:{port}" in app.log_text()
        login = httpx.post(
            f"{app.base_url}/api/auth/admin/login",
            json={"username": "admin", "password": "admin-password-123"},
            timeout=HANG_SECONDS,
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        rule = httpx.post(
            f"{app.base_url}/api/admin/blocked-ips", json={"ip_address": "127.0.0.1"}, headers=admin
        )
        assert rule.status_code == 201
        assert httpx.get(f"{app.base_url}/api/chat/models", timeout=HANG_SECONDS).status_code == 403
        assert httpx.get(f"http://[::1]:{port}/api/chat/models", timeout=HANG_SECONDS).status_code == 200
