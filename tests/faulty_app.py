"""``python -m tests.faulty_app``: the real app with a fault at its storage boundary. While the file named
by ``PYAICHAT_TEST_FULL_DISK_FLAG`` exists, every INSERT into ``chat_logs`` fails inside the DBAPI call
as SQLite fails on a full disk (``sqlite3.OperationalError: database or disk is full``), which
SQLAlchemy reports as its ``OperationalError``, exactly as a real full disk reaches the log writer."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

import app.db
import app.main

FLAG = Path(os.environ["PYAICHAT_TEST_FULL_DISK_FLAG"])
_make_engine = app.db.make_engine


def make_engine(url: str, *args: Any, **kwargs: Any) -> Engine:
    engine = _make_engine(url, *args, **kwargs)

    @event.listens_for(engine, "before_cursor_execute")
    def full_disk(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("INSERT INTO chat_logs") and FLAG.exists():
            raise sqlite3.OperationalError("database or disk is full")

    return engine


app.main.make_engine = make_engine  # build_state's engine, the one the log writer uses

if __name__ in {"__main__", "__mp_main__"}:
    app.main.main()
