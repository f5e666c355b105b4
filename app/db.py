"""Database engine and sessions (the schema is made and changed by ``app.migrate``).

SQLite runs in WAL mode with a busy timeout so the chat path, the log writer and the admin pages can
share the file; ``DATABASE_URL`` switches to another SQLAlchemy URL (PostgreSQL for several instances).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PAGE_SIZE = 8192
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # only takes effect while the file is still empty (a new database), and must come before WAL mode:
    # 8 KiB pages halve the index pages a batch of call logs dirties (and writes to the WAL) per commit
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, *, pooled: bool = True) -> Engine:
    """An engine for ``url``; for SQLite the parent folder is created and the pragmas set per connection.
    ``pooled=False`` opens a connection per use (one-off work such as migrations)."""
    parsed = make_url(url)
    sizing: dict[str, Any] = {"pool_size": 10, "max_overflow": 20} if pooled else {"poolclass": NullPool}
    if parsed.get_backend_name() != "sqlite":
        options: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            # libpq waits for the OS's TCP timeout (minutes) on a host that does not answer
            # and TCP keepalives: a server that vanished (no FIN, no RST) is noticed in ~25 s, not hours
            options["connect_args"] = {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            }
        return create_engine(url, pool_pre_ping=True, **sizing, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **sizing,
    )
    event.listen(engine, "connect", _apply_sqlite_pragmas)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for work outside a request (start-up, background jobs, pages)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
