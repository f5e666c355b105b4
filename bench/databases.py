"""Which database the benchmarks' gateways and writers use (``python -m bench --db``): a SQLite file in
each one's data directory (the default), or a fresh database each on one PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.postgres_server import PostgresServer, create_database, postgres_server

CHOICES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Database:
    server: PostgresServer | None = None  # None: SQLite

    @property
    def name(self) -> str:
        return "SQLite" if self.server is None else "PostgreSQL"

    @property
    def label(self) -> str:
        """What the titles of the tables add: nothing for SQLite (the default), `` (PostgreSQL)``."""
        return "" if self.server is None else f" ({self.name})"

    def url(self, sqlite_path: Path) -> str:
        """A new, empty database: the SQLite file ``sqlite_path``, or a new database on the server."""
        if self.server is None:
            return f"sqlite:///{sqlite_path}"
        return create_database(self.server.url)

    def gateway_env(self) -> dict[str, str]:
        """A gateway's settings for its own new database (none: the SQLite file in its data directory)."""
        return {} if self.server is None else {"DATABASE_URL": create_database(self.server.url)}


@contextmanager
def database(kind: str, *, durable: bool = True) -> Iterator[Database]:
    """``kind`` ``postgresql``: a throwaway PostgreSQL server started as the tests start theirs, but with
    fsync on (a benchmark of a server that never syncs would flatter it); commits do not wait for
    their flush (``synchronous_commit=off``), as SQLite in WAL mode with ``synchronous=NORMAL``.
    ``durable=False`` (a quick run, which measures nothing): fsync off, as the tests' servers."""
    if kind == "sqlite":
        yield Database()
        return
    with postgres_server(durable=durable) as server:
        yield Database(server)
