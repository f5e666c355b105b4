"""A real PostgreSQL server (Debian's ``postgresql``) in a throwaway cluster on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
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


def require_postgres() -> None:
    """Skip (fail in CI) unless Debian's PostgreSQL server and the psycopg driver are installed."""
    _server_binaries()
    _driver_installed()


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as Debian's ``postgres`` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


class PostgresServer:
    """A throwaway cluster (no fsync) on a free loopback port that a test can stop and start again.

    ``durable``: fsync on, as a production server runs (the benchmarks); commits still do not wait for
    their flush (``synchronous_commit=off``, like SQLite's WAL with ``synchronous=NORMAL``)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.bin_dir = _server_binaries()
        _driver_installed()
        self.work = Path(tempfile.mkdtemp(prefix="pyaichat-pg-"))  # not under pytest's root-only tmp
        if os.geteuid() == 0:
            shutil.chown(self.work, "postgres")
        self.data, self.port = self.work / "data", free_port()
        self.url = f"postgresql+psycopg://pyaichat@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "pyaichat", "--auth=trust"]
        subprocess.run(
            _as_server_user([*initdb, "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True,
            capture_output=True,
            timeout=HANG_SECONDS,
        )

    def log_text(self) -> str:
        return (self.work / "server.log").read_text(errors="replace")

    def start(self) -> None:
        """Start the server and wait until it accepts a connection."""
        import psycopg

        server = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.work),
        ]
        settings = ["listen_addresses=127.0.0.1", "synchronous_commit=off"]
        if not self.durable:
            settings.append("fsync=off")  # thrown away
        with (self.work / "server.log").open("a") as log:
            self.process = subprocess.Popen(
                _as_server_user([*server, *(part for value in settings for part in ("-c", value))]),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + HANG_SECONDS  # it answers once started, however long that takes
        while True:
            try:
                with psycopg.connect(
                    f"postgresql://pyaichat@127.0.0.1:{self.port}/postgres", connect_timeout=5
                ):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"PostgreSQL exited with {self.process.returncode}:\n{self.log_text()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        hung("PostgreSQL runs but did not accept a connection") + f"\n{self.log_text()}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server at once (a fast shutdown: open sessions are ended, as when a database
        server goes down under running clients)."""
        if self.process is None:
            return
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"]
        subprocess.run(_as_server_user(pg_ctl), capture_output=True, timeout=HANG_SECONDS, check=False)
        stop_process(self.process, name="PostgreSQL server")
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    @property
    def psql(self) -> Path:
        """Debian's ``psql`` (the client comes with the server)."""
        return self.bin_dir / "psql"


def create_database(server_url: str, options: str = "") -> str:
    """A new, empty database on the server of ``server_url`` (``options``: what ``CREATE DATABASE`` takes
    after its name); its SQLAlchemy URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} {options}")
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as psycopg and psql take it."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    server = PostgresServer(durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextmanager
def run_postgres() -> Iterator[str]:
    """Start a fresh cluster (no fsync: it is thrown away) and yield a SQLAlchemy URL of its database."""
    with postgres_server() as server:
        yield server.url
