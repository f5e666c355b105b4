"""``python -m tests.faulty_app``: the real app with faults at its storage boundary, each switched on by an
environment variable:

- ``PYAICHAT_TEST_FULL_DISK_FLAG``: while the file it names exists, every INSERT into ``chat_logs`` fails
  inside the DBAPI call as SQLite fails on a full disk (``sqlite3.OperationalError: database or disk is
  full``), which SQLAlchemy reports as its ``OperationalError``, exactly as a real full disk reaches the
  log writer.
- ``PYAICHAT_TEST_WRITER_BUG_FLAG``: while the file it names exists, the log writer's periodic journal
  sync raises, as a bug outside the database's retry loop would: the writer thread dies (also between
  taking a batch and storing it) and its supervisor must restart it.
- ``PYAICHAT_TEST_LOG_BACKLOG``: how many rows the log writer keeps in memory (default 20,000), so that
  a test reaches the point where the rest wait in the journal only without 20,000 calls.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

import app.cli
import app.db
import app.main
import app.state
from services.journal import LiveJournal
from services.logs import LogWriter

_make_engine = app.db.make_engine


def _flag(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


FULL_DISK = _flag("PYAICHAT_TEST_FULL_DISK_FLAG")
WRITER_BUG = _flag("PYAICHAT_TEST_WRITER_BUG_FLAG")
BACKLOG = os.environ.get("PYAICHAT_TEST_LOG_BACKLOG")


def make_engine(url: str, *args: Any, **kwargs: Any) -> Engine:
    engine = _make_engine(url, *args, **kwargs)

    @event.listens_for(engine, "before_cursor_execute")
    def full_disk(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("INSERT INTO chat_logs") and FULL_DISK is not None and FULL_DISK.exists():
            raise sqlite3.OperationalError("database or disk is full")

    return engine


app.main.make_engine = make_engine  # build_state's engine, the log writer's

if WRITER_BUG is not None:
    _sync = LiveJournal.sync

    def sync(self: LiveJournal) -> None:
        if WRITER_BUG is not None and WRITER_BUG.exists():
            raise RuntimeError("a bug in the log writer (injected by tests.faulty_app)")
        _sync(self)

    LiveJournal.sync = sync

if BACKLOG:
    app.state.LogWriter = functools.partial(
        LogWriter, backlog_max=int(BACKLOG), batch_size=min(int(BACKLOG), 10_000)
    )

if __name__ in {"__main__", "__mp_main__"}:
    app.cli.main()
