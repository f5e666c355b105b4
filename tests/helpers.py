"""Starting the real application as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"
TEST_ENCRYPTION_KEY = "test-encryption-key"
TEST_ADMIN_PASSWORD = "admin-password-123"
# how long a wait for a state may take before the test calls it a hang (not a speed budget)
HANG_SECONDS = float(os.environ.get("PYAICHAT_TEST_HANG_SECONDS", "300"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ(**overrides: str) -> dict[str, str]:
    """The current environment without pyaichat's, pytest's and NiceGUI's variables, plus ``overrides``."""
    from app.config import Settings

    ours = {name.upper() for name in Settings.model_fields}
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in ours and not key.startswith(("PYTEST_", "NICEGUI_"))
    }
    env.update(overrides)
    return env


def production_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    values = {
        "DATABASE_PATH": str(data_dir / "chat.db"),
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "ADMIN_PASSWORD": TEST_ADMIN_PASSWORD,
        "APP_HOST": "127.0.0.1",
    }
    return clean_environ(**{**values, **overrides})


def wait_until(condition: Callable[[], bool], *, seconds: float, poll: float = 0.01) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not true within {seconds} s"
        time.sleep(poll)


def stop_process(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not ended within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class RunningApp:
    process: subprocess.Popen[str]
    base_url: str
    log_path: Path
    db_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def run_app(
    env: dict[str, str],
    *,
    log_path: Path,
    timeout: float = 30.0,
    cwd: Path = ROOT,
    module_args: tuple[str, ...] = ("app",),
) -> Iterator[RunningApp]:
    """Start ``python -m app`` and wait until /api/health answers; stop it afterwards."""
    port = int(env.get("APP_PORT") or free_port())
    env = {**env, "APP_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    with log_path.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", *module_args],
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    app = RunningApp(
        process=process,
        base_url=f"http://127.0.0.1:{port}",
        log_path=log_path,
        db_path=Path(env.get("DATABASE_PATH", ROOT / "data" / "chat.db")),
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with {process.returncode}:\n{app.log_text()}")
            try:
                if httpx.get(f"{app.base_url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start within {timeout}s:\n{app.log_text()}")
            time.sleep(0.1)
        yield app
    finally:
        stop_process(process, timeout=10)
