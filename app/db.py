"""Database engine, sessions and schema creation.

SQLite runs in WAL mode with a busy timeout so the chat path, the log writer and the admin pages can
share the file; ``DATABASE_URL`` switches to another SQLAlchemy URL (PostgreSQL for several instances).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from app import models  # noqa: F401 - registers the tables on SQLModel.metadata

log = logging.getLogger("pyaichat.db")
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PAGE_SIZE = 8192


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


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite the parent folder is created and the pragmas set per connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=10,
        max_overflow=20,
    )
    event.listen(engine, "connect", _apply_sqlite_pragmas)
    return engine


# indexes earlier versions created and this one folded into others (dropped at start, never re-made)
RETIRED_INDEXES = {"chat_logs": ("idx_chat_logs_username_created", "idx_chat_logs_ip_created")}


def init_db(engine: Engine) -> None:
    """Create every table and index that does not exist yet, and bring the indexes of a database made
    by an earlier version in line with the models (``create_all`` leaves existing tables alone)."""
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table in SQLModel.metadata.sorted_tables:
            existing = inspector.get_indexes(table.name)
            found = {index["name"]: list(index["column_names"]) for index in existing}
            for name in RETIRED_INDEXES.get(table.name, ()):
                if name in found:
                    log.info("dropping index %s (folded into other indexes)", name)
                    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            for index in table.indexes:
                columns = [column.name for column in index.columns]
                if found.get(str(index.name)) == columns:
                    continue
                if index.name in found:
                    log.info("rebuilding index %s on %s(%s)", index.name, table.name, ", ".join(columns))
                    index.drop(connection, checkfirst=True)
                # checkfirst: another instance on the same database may be starting at the same moment
                index.create(connection, checkfirst=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for work outside a request (start-up, background jobs, pages)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
