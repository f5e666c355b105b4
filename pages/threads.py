"""Blocking work a page asks for (database reads and writes, bcrypt, decrypting keys) runs on NiceGUI's
thread pool, never on the event loop that serves every open page and the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from nicegui import run

# Pages wait for the database off the loop, so a slow database makes a slow page. NiceGUI replaces a page
# whose function has not finished within its response_timeout (3 s by default) with an error page: every
# page of ours gets this much instead, so that a slow moment is a slow page, not a broken one.
PAGE_BUILD_SECONDS = 60.0

P = ParamSpec("P")
R = TypeVar("R")


async def off_loop(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``func(*args, **kwargs)`` on a worker thread: its result, or its exception.

    NiceGUI 3's ``run.io_bound`` returns None instead when the call is cancelled or the app is stopping
    (NiceGUI 4 will raise ``CancelledError``); that None must not pass for a result (an admin check
    cancelled with its page would read as "signed out"), so it is raised as ``CancelledError`` here.
    """
    boxed = await run.io_bound(lambda: (func(*args, **kwargs),))
    if boxed is None:
        raise asyncio.CancelledError
    return boxed[0]
