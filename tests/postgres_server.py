"""A real PostgreSQL server (Debian's ``postgresql``) in a throwaway cluster on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import HANG_SECONDS, free_port, hung, stop_process


def _server_binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (Debian keeps them off the PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL is missing in CI (.ci/run installs Debian's postgresql)")
    pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")


def _driver_installed() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("psycopg is missing in CI (it is in pyaichat[test])")
        pytest.skip('psycopg is not installed (pip install ".[postgres]")')


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as Debian's ``postgres`` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def run_postgres() -> Iterator[str]:
    """Start a fresh cluster (no fsync: it is thrown away) and yield a SQLAlchemy URL of its database."""
    bin_dir = _server_binaries()
    _driver_installed()
    work = Path(tempfile.mkdtemp(prefix="pyaichat-pg-"))  # not under pytest's root-only tmp directory
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    data, port = work / "data", free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "pyaichat", "--auth=trust", "-E", "UTF8"]
    subprocess.run(
        _as_server_user([*initdb, "--locale=C.UTF-8"]), check=True, capture_output=True, timeout=HANG_SECONDS
    )
    server = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(work)]
    settings = ["listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off"]  # thrown away anyway
    log = (work / "server.log").open("w")
    process = subprocess.Popen(
        _as_server_user([*server, *(part for value in settings for part in ("-c", value))]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"postgresql+psycopg://pyaichat@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        deadline = time.monotonic() + HANG_SECONDS  # it answers once started, however long that takes
        while True:
            try:
                with psycopg.connect(f"postgresql://pyaichat@127.0.0.1:{port}/postgres", connect_timeout=5):
                    break
            except psycopg.OperationalError:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"PostgreSQL exited with {process.returncode}:\n{(work / 'server.log').read_text()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        hung("PostgreSQL runs but did not accept a connection")
                        + f"\n{(work / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        stop_process(process, name="PostgreSQL server")
        log.close()
        shutil.rmtree(work, ignore_errors=True)
