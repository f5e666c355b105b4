"""The other instances this one hears, and their confirmations of its changes
(docs/behaviour.md#shared-state).

Every instance says it is alive over the announcement carriers once a second (services/announce.py).
One heard from within ``LIVE_SECONDS`` is *live*. When this instance announces a change, it waits,
at most ``CONFIRM_SECONDS``, until every live instance has confirmed that it marked the cache stale;
only then does the admin get the answer, so the next request anywhere is decided on the new value.
An instance that does not confirm in time is forgotten until it is heard again: one that died is
waited for once, not at every change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

LIVE_SECONDS = 3.0  # three missed heartbeats and an instance no longer counts
CONFIRM_SECONDS = 1.0  # how long a change waits for the live instances' confirmations


class Peers:
    def __init__(
        self, live_seconds: float = LIVE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._live_seconds = live_seconds
        self._clock = clock
        self._heard: dict[str, float] = {}  # instance → when it was last heard
        self._awaited: dict[int, set[str]] = {}  # a change's number → the instances yet to confirm it
        self._changed = threading.Condition()

    def heard(self, instance: str) -> None:
        """A message from ``instance`` arrived (any kind: it is listening)."""
        with self._changed:
            self._heard[instance] = self._clock()

    def live(self) -> set[str]:
        now = self._clock()
        with self._changed:
            for instance in [i for i, at in self._heard.items() if now - at >= self._live_seconds]:
                del self._heard[instance]
            return set(self._heard)

    def forget(self, instances: Iterable[str]) -> None:
        with self._changed:
            for instance in instances:
                self._heard.pop(instance, None)

    def gone(self, instance: str) -> None:
        """``instance`` stopped cleanly: not live any more, and changes waiting for it wait no longer."""
        with self._changed:
            self._heard.pop(instance, None)
            for awaited in self._awaited.values():
                awaited.discard(instance)
            self._changed.notify_all()

    def expect(self, number: int, instances: set[str]) -> None:
        """Change ``number`` is about to be announced: ``instances`` are to confirm it."""
        if instances:
            with self._changed:
                self._awaited[number] = set(instances)

    def confirmed(self, number: int, instance: str) -> None:
        with self._changed:
            self._heard[instance] = self._clock()
            awaited = self._awaited.get(number)
            if awaited is not None:
                awaited.discard(instance)
                if not awaited:
                    self._changed.notify_all()

    def wait(self, number: int, timeout: float) -> set[str]:
        """Block until every instance expected for change ``number`` confirmed it, at most ``timeout``
        seconds; returns those that did not (empty when all did)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._awaited.get(number), timeout=timeout)
            return self._awaited.pop(number, set())
