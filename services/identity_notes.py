"""``last_used_at`` / ``users.last_active_at``, not written per call: a call notes the time (at most once
a minute per key and per user), and the identity reloader's thread writes the notes in one batch."""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine

from app.models import ApiKey, User, utcnow

log = logging.getLogger("pyaichat.identity")
TOUCH_SECONDS = 60.0  # last_used_at / last_active_at move at most this often per key and per user


class UseNotes:
    """The times users and keys were last used, noted by the calls and written in batches."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._noted: dict[tuple[str, int], float] = {}  # ("u"|"k", id) → monotonic time last noted
        self._pending_users: dict[int, datetime] = {}
        self._pending_keys: dict[int, datetime] = {}

    def note(self, user_id: int, key_id: int | None = None) -> None:
        """Remember that the user (and key) were used now: at most once a minute each, written by
        :meth:`write` (never a database write on the calling path)."""
        now = time.monotonic()
        if now - self._noted.get(("u", user_id), -math.inf) >= TOUCH_SECONDS:
            with self._lock:
                self._noted[("u", user_id)] = now
                self._pending_users[user_id] = utcnow()
        if key_id is not None and now - self._noted.get(("k", key_id), -math.inf) >= TOUCH_SECONDS:
            with self._lock:
                self._noted[("k", key_id)] = now
                self._pending_keys[key_id] = utcnow()

    def write(self) -> None:
        """The times noted since the last write, in one transaction; a failure is logged (a later call
        notes the time again)."""
        if not self._pending_users and not self._pending_keys:
            return
        cutoff = time.monotonic() - TOUCH_SECONDS
        with self._lock:
            users, self._pending_users = self._pending_users, {}
            keys, self._pending_keys = self._pending_keys, {}
            self._noted = {noted: at for noted, at in self._noted.items() if at >= cutoff}
        users_table = User.__table__  # type: ignore[attr-defined]
        keys_table = ApiKey.__table__  # type: ignore[attr-defined]
        try:
            with self._engine.begin() as connection:
                if users:
                    connection.execute(
                        update(users_table)
                        .where(users_table.c.id == bindparam("row_id"))
                        .values(last_active_at=bindparam("at")),
                        [{"row_id": user_id, "at": at} for user_id, at in users.items()],
                    )
                if keys:
                    connection.execute(
                        update(keys_table)
                        .where(keys_table.c.id == bindparam("row_id"))
                        .values(last_used_at=bindparam("at")),
                        [{"row_id": key_id, "at": at} for key_id, at in keys.items()],
                    )
        except Exception as exc:  # a later call notes the time again; nothing waits on this
            log.warning("could not store last-used times: %s", exc)
