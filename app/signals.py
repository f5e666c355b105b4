"""SIGTERM and SIGINT start the shutdown of the chat calls the moment they arrive.

uvicorn (run by ``ui.run``) handles the signal by closing its listening socket, asking each connection
to close once its response is done, waiting ``timeout_graceful_shutdown`` seconds for them, cancelling
what is left, and only then running the shutdown hooks. The calls need more than that: new ones refused
at once, open ones given ``SHUTDOWN_GRACE_SECONDS`` and then cut with a ``server_shutdown`` row and an
answer, before uvicorn's own limit (set a little later, ``app.main.run_server``) cancels them blindly.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from functools import partial
from types import FrameType
from typing import Any

import uvicorn

from app.state import AppState

HANDLED = (signal.SIGTERM, signal.SIGINT)


def drain_on_exit_signals(state: AppState) -> None:
    """At start-up, inside uvicorn's ``serve`` (its signal handlers are installed): wrap them so that
    the first signal also starts :meth:`AppState.shutdown_requested`. uvicorn puts back the handlers it
    found when it exits, which drops the wrappers too. Elsewhere (no uvicorn handler) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for number in HANDLED:
        previous = signal.getsignal(number)
        if callable(previous) and isinstance(getattr(previous, "__self__", None), uvicorn.Server):
            signal.signal(number, partial(_on_signal, loop, state, previous))


def _on_signal(
    loop: asyncio.AbstractEventLoop, state: AppState, previous: Any, number: int, frame: FrameType | None
) -> None:
    # refuse new calls before uvicorn's first step closes the pages' connections (their streams are
    # then cut as server_shutdown, not client_aborted); the rest runs on the loop
    state.calls.draining = True
    loop.call_soon_threadsafe(state.shutdown_requested)
    previous(number, frame)
