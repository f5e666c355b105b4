"""The chat calls running on this instance, so that a shutdown can let them finish and then cut them."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.call_log import CallLog
    from services.identity import Verdicts

log = logging.getLogger("pyaichat.shutdown")
CUT_WAIT_SECONDS = 5.0  # a cut call ends at its next await; this only bounds one that does not


class OpenCalls:
    """Calls from their channel stage until their row is written. Lives on the event loop.

    :meth:`drain` is the shutdown: new calls are refused (``draining``), open ones get ``grace``
    seconds to end by themselves, then each is cut (:meth:`CallLog.cut`; its row says
    ``server_shutdown``) and the drain waits until their rows are written.
    """

    def __init__(self) -> None:
        self._open: set[CallLog] = set()
        self.draining = False  # set by the signal handler itself, before anything else runs
        self._emptied: asyncio.Event | None = None
        self._users: dict[int, int] = {}  # user id → open calls (read by the identity reload's thread)

    def user_ids(self) -> frozenset[int]:
        """The users with a call open here; safe from another thread (one C-level copy of the keys)."""
        return frozenset(self._users)

    def revoke(self, verdicts: Verdicts) -> int:
        """End the calls whose credential a reload found revoked (on the event loop); returns how many."""
        ended = 0
        for call in list(self._open):
            credential = call.caller.credential
            if credential is None:
                continue
            error = verdicts.refusal(credential)
            if error is not None:
                log.info("ending a call of user %s: %s", credential.user_id, error.type)
                call.cut(error)
                ended += 1
        return ended

    def __len__(self) -> int:
        return len(self._open)

    def add(self, call: CallLog) -> None:
        self._open.add(call)
        user_id = call.caller.user_id
        if user_id is not None:
            self._users[user_id] = self._users.get(user_id, 0) + 1

    def done(self, call: CallLog) -> None:
        if call in self._open:
            self._open.discard(call)
            user_id = call.caller.user_id
            if user_id is not None:
                left = self._users.pop(user_id, 1) - 1
                if left > 0:
                    self._users[user_id] = left
        if not self._open and self._emptied is not None:
            self._emptied.set()

    async def drain(self, grace: float) -> int:
        """Refuse new calls, wait up to ``grace`` seconds for the open ones, cut the rest; returns how
        many were cut."""
        self.draining = True
        if self._open:
            log.info("shutting down: waiting up to %g s for %d open calls", grace, len(self._open))
        if await self._wait_until_empty(grace):
            return 0
        cut = list(self._open)
        log.warning("shutting down: cutting %d calls still open after %g s", len(cut), grace)
        for call in cut:
            call.cut()
        if not await self._wait_until_empty(CUT_WAIT_SECONDS):
            log.error(
                "shutting down: %d cut calls did not end within %g s", len(self._open), CUT_WAIT_SECONDS
            )
        return len(cut)

    async def _wait_until_empty(self, seconds: float) -> bool:
        if not self._open:
            return True
        self._emptied = asyncio.Event()
        try:
            async with asyncio.timeout(seconds):
                await self._emptied.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._emptied = None
