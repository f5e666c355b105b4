"""A real redis-server on a free loopback port, for the multi-instance and Redis-outage tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import HANG_SECONDS, free_port, hung, stop_process


def redis_binary() -> str:
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing in CI (.ci/run installs Debian's redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return path


class RedisServer:
    """A redis-server on a loopback port, which a test can stop and start again on the same port."""

    def __init__(self, work_dir: Path, *, port: int | None = None) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = process = subprocess.Popen(
            [redis_binary(), *arguments, "--dir", str(self.work_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + HANG_SECONDS  # it answers once started, however long that takes
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(hung("redis-server runs but did not answer PING"))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, name="redis-server")
            self.process = None


@contextmanager
def run_redis_process(
    work_dir: Path, *, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server on ``port`` (a free one by default): its URL and its process."""
    server = RedisServer(work_dir, port=port)
    try:
        server.start()
        assert server.process is not None
        yield server.url, server.process
    finally:
        server.stop()


@contextmanager
def run_redis(work_dir: Path, *, port: int | None = None) -> Iterator[str]:
    with run_redis_process(work_dir, port=port) as (url, _process):
        yield url


@contextmanager
def frozen(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """The redis-server stopped (SIGSTOP): connections open and requests are accepted by the kernel, but
    nothing answers, unlike a dead server that refuses at once. Thawed (SIGCONT) on leaving."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)
