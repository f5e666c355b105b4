"""Caches of small tables (channels, settings, the block list) kept fresh off the event loop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("pyaichat.cache")
WORKER_NAME = "pyaichat-cache-refresh"
_due: queue.SimpleQueue[Refresher] = queue.SimpleQueue()  # reloads for the worker, in the order asked
_worker_lock = threading.Lock()
_worker: threading.Thread | None = None


def _work() -> None:
    while True:
        _due.get()._reload()


def _submit(refresher: Refresher) -> None:
    """Hand a reload to the process's one refresh thread, started on first use. Starting a thread per
    reload made the reader wait (``Thread.start`` blocks until the new thread runs, which on a busy
    event loop is a fraction of a millisecond taken out of a request) every couple of seconds."""
    global _worker
    if _worker is None:
        with _worker_lock:
            if _worker is None:
                _worker = threading.Thread(target=_work, name=WORKER_NAME, daemon=True)
                _worker.start()
    _due.put(refresher)


class Refresher:
    """Runs ``load`` (which stores what it read on its owner) so that readers never wait on a reload.

    The first read, and the first after :meth:`invalidate`, load on the reader's thread. So that the
    reader is never the event loop, the owner loads at start and, after a change made by this process
    (which must show at once), reloads with :meth:`reload_now` on the thread that made the change (a
    worker: the admin pages and the API change things off the loop). After that, once ``ttl`` has passed,
    a read starts a reload on the refresh thread and goes on with the values already loaded: several
    instances sharing a database see each other's changes within about ``ttl``, and no request pays for
    the query (on the event loop it was the largest tail of the time to first token).
    """

    def __init__(self, load: Callable[[], None], ttl: float, name: str) -> None:
        self._load = load
        self._ttl = ttl
        self._name = name
        self._lock = threading.Lock()  # one load at a time
        self._loaded_at = float("-inf")
        self._valid = False  # False before the first load and after invalidate()
        self._reloading = False

    def invalidate(self) -> None:
        self._valid = False

    def reload_now(self) -> None:
        """Load at once on this thread. Readers meanwhile go on with the values loaded before (they do
        not wait for this load); a failed load is logged, those values stay, and the next read asks the
        refresh thread to try again."""
        try:
            with self._lock:
                self._load()
                self._valid = True
                self._loaded_at = time.monotonic()
        except Exception as exc:
            log.warning("could not reload the %s: %s", self._name, type(exc).__name__)
            self._loaded_at = float("-inf")

    def ensure(self) -> None:
        if not self._valid:
            with self._lock:
                if not self._valid:
                    self._valid = True  # first: an invalidate() during the load asks for another
                    try:
                        self._load()
                    except BaseException:
                        self._valid = False
                        raise
                    self._loaded_at = time.monotonic()
            return
        if not self._reloading and time.monotonic() - self._loaded_at >= self._ttl:
            self._reloading = True
            _submit(self)

    def _reload(self) -> None:
        try:
            with self._lock:
                self._load()
        except Exception as exc:  # the values already loaded stay; the next read after ttl tries again
            log.warning("could not refresh the %s: %s", self._name, type(exc).__name__)
        finally:
            self._loaded_at = time.monotonic()
            self._reloading = False
