"""Starting the real application as a subprocess on a free loopback port."""

from __future__ import annotations

import asyncio
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
from sqlalchemy.engine import Engine

from tests import zygote
from tests.zygote import ForkedProcess

ROOT = Path(__file__).resolve().parent.parent
# Every wait in the tests waits for a state (a process answering, a row written, an element shown), never
# for a time that a busy machine may need more of: on two cores the app started in 7 s at a load of 5 and
# needed over 30 s at a load of 15 to 30. HANG_SECONDS only bounds such a wait so that a state that will
# never come fails the test instead of holding CI: a hang detector, not a performance budget. A slower
# machine can raise it.
HANG_SECONDS = float(os.environ.get("PYAICHAT_TEST_HANG_SECONDS", "300"))


def hung(what: str) -> str:
    return f"{what} within {HANG_SECONDS:.0f} s: hung? (PYAICHAT_TEST_HANG_SECONDS raises the bound)"


TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"
TEST_ENCRYPTION_KEY = "test-encryption-key"
TEST_ADMIN_PASSWORD = "admin-password-123"


def migrated_engine(path: Path) -> Engine:
    """An engine on a SQLite file at ``path`` with the newest schema (as start-up leaves it)."""
    from app.db import make_engine
    from app.migrate import upgrade

    upgrade(f"sqlite:///{path}")
    return make_engine(f"sqlite:///{path}")


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a hang fails the test at HANG_SECONDS).
    A server that closes with bytes of ours unread resets the connection: that ends it too."""
    received = b""
    try:
        while piece := sock.recv(65536):
            received += piece
    except ConnectionResetError:
        pass
    return received


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ(**overrides: str) -> dict[str, str]:
    """The current environment without pyaichat's, pytest's, NiceGUI's and proxy variables, plus
    ``overrides``."""
    from app.config import Settings

    ours = {name.upper() for name in Settings.model_fields}
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in ours
        and not key.startswith(("PYTEST_", "NICEGUI_"))
        # the app would send its loopback upstream calls through a developer's proxy
        and not key.upper().endswith("_PROXY")
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


def wait_until(condition: Callable[[], object], *, poll: float = 0.01, what: str = "") -> None:
    """Poll ``condition`` until it holds (a truthy value); fail the test only when it looks hung."""
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(hung(f"{what or 'the condition'}: not true"))
        time.sleep(poll)


async def wait_until_async(condition: Callable[[], object], *, poll: float = 0.05, what: str = "") -> None:
    """:func:`wait_until` for tests on the event loop (NiceGUI's simulated user): sleeps let the app run."""
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(hung(f"{what or 'the condition'}: not true"))
        await asyncio.sleep(poll)


# NiceGUI's simulated user tries ``should_see`` every 0.1 s, ``retries`` times: as many as HANG_SECONDS allows
SEE_RETRIES = int(HANG_SECONDS / 0.1)


def stop_process(process: subprocess.Popen | ForkedProcess, *, name: str = "process") -> None:
    """SIGTERM and wait until it has ended. One that does not end is hung: it is killed, and that is an
    error (a SIGKILL would otherwise hide a shutdown that hangs)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(hung(f"the {name} (now killed) did not end after SIGTERM")) from None


@dataclass
class RunningApp:
    process: subprocess.Popen[str] | ForkedProcess
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
    cwd: Path = ROOT,
    module_args: tuple[str, ...] = ("app",),
    port: int | None = None,
    ready: bool = True,
    fresh: bool = False,
) -> Iterator[RunningApp]:
    """Start ``python -m app`` and wait until /api/health answers (``ready=False``: the caller waits,
    with :func:`wait_until_ready`); stop it afterwards.

    The app listens on ``port`` when given (the command line chooses it), else on APP_PORT in ``env``,
    else on a free port that APP_PORT is set to. The process is forked from one that has already imported
    the app (:mod:`tests.zygote`) unless ``fresh`` asks for a new interpreter.
    """
    env = {**env, "PYTHONUNBUFFERED": "1"}
    if port is None:
        port = int(env.get("APP_PORT") or free_port())
        env["APP_PORT"] = str(port)
    process: subprocess.Popen[str] | ForkedProcess
    if not fresh and zygote.enabled(env, module_args):
        log_path.write_bytes(b"")
        process = ForkedProcess(module_args, env, cwd, log_path)
    else:
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
        if ready:
            wait_until_ready(app)
        yield app
    finally:
        stop_process(process, name="app")


def admin_headers(http: httpx.Client) -> dict[str, str]:
    """Sign the admin in through ``http`` (a client on an app's base URL): the Authorization header."""
    login = http.post("/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def wait_until_ready(app: RunningApp) -> None:
    """Ready once /api/health answers 200. However long a busy machine takes to start the app, the wait
    goes on while the process lives; it fails at once when the process ends, and only a process that has
    not answered within HANG_SECONDS counts as hung."""
    deadline = time.monotonic() + HANG_SECONDS
    with httpx.Client(timeout=5) as http:  # one slow answer is tried again: not a limit on the start
        while True:
            if app.process.poll() is not None:
                raise RuntimeError(f"the app exited with {app.process.returncode}:\n{app.log_text()}")
            try:
                if http.get(f"{app.base_url}/api/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    hung("the app runs but did not answer /api/health") + f"\n{app.log_text()}"
                )
            time.sleep(0.1)
