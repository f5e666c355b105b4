"""No page or page handler waits on the event loop for the database or for bcrypt.

The blocking work is made slow for the test: every connection the app takes from its pool, and every
bcrypt hash or check, first sleeps ``SLOW`` (0.25 s), as on a slow database server. A watcher task asks to
wake every 5 ms while each page loads and each handler runs, and after each wake-up takes from Linux's
per-thread scheduler statistics (``/proc/thread-self/schedstat``) how much of the gap the loop's thread
spent running or waiting for a CPU; the rest of the gap it was blocked. A page that reads the database
on the loop blocks it for at least ``SLOW``; one that reads it on a worker thread does not block it at all.
Two checks: any slowed call made on the loop's thread fails the test whatever it cost (with ``SLOW``
at 0.25 s, each would block the loop five times the 50 ms a handler may take), and so does any other
blocking of more than ``MAX_BLOCKED`` (0.1 s; under a CI run's load the worst seen was 34 ms).
Blocked time, unlike the plain gap between wake-ups, does not grow with the machine's load: on a busy
machine the loop's own work (building pages) takes longer, but as time running or waiting for a CPU,
not as time blocked; the plain gaps are reported, not judged. (The garbage collector is paused while
measuring: see the test.) Each slow call made on the loop's thread is also recorded with the project's
frames that led to it, which name the culprit in the failure message.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from nicegui import app, ui
from nicegui.testing import User
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import ChannelCreate, utcnow
from services import ip_block, security
from services.logs import CallRecord
from tests.helpers import SEE_RETRIES, TEST_ADMIN_PASSWORD, wait_until_async
from tests.pages.conftest import app_state
from tests.upstream_server import UpstreamServer

ROOT = Path(__file__).resolve().parents[2]
SCHEDSTAT = Path("/proc/thread-self/schedstat")
SLOW = 0.25
MAX_BLOCKED = 0.1
WATCH_INTERVAL = 0.005

pytestmark = pytest.mark.skipif(not SCHEDSTAT.exists(), reason="needs Linux's per-thread schedstat")


def running_or_runnable() -> float:
    """Seconds this thread has spent on a CPU or waiting in a run queue for one."""
    on_cpu, waiting, _slices = SCHEDSTAT.read_text().split()
    return (int(on_cpu) + int(waiting)) / 1e9


class LoopWatch:
    """The longest the event loop's thread was blocked (and, for the report, the longest plain gap)
    between the wake-ups of a task that asks to wake every 5 ms."""

    def __init__(self) -> None:
        self.blocked = 0.0
        self.gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        last_wall, last_busy = time.monotonic(), running_or_runnable()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            wall, busy = time.monotonic(), running_or_runnable()
            gap = wall - last_wall - WATCH_INTERVAL  # the sleep asked for is no stall
            self.gap = max(self.gap, gap)
            self.blocked = max(self.blocked, gap - (busy - last_busy))
            last_wall, last_busy = wall, busy

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    def take(self) -> tuple[float, float]:
        """The longest blocked time and the longest gap since the last call."""
        taken = self.blocked, self.gap
        self.blocked = self.gap = 0.0
        return taken

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task


def our_callers() -> str:
    """The project's own frames of the current stack (not this file's), innermost first."""
    frames = [
        f"{Path(frame.filename).relative_to(ROOT)}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_stack()
        if frame.filename.startswith(str(ROOT))
        and "/.venv/" not in frame.filename
        and Path(frame.filename).resolve() != Path(__file__).resolve()
    ]
    return " <- ".join(reversed(frames))


@contextmanager
def slow_blocking_work(engine: Engine, seconds: float = SLOW) -> Iterator[set[str]]:
    """Every pool checkout and every bcrypt hash or check sleeps ``seconds`` first; yields the callers of
    those made on this (the event loop's) thread."""
    loop_thread = threading.get_ident()
    on_loop: set[str] = set()

    def slow(*_: Any) -> None:
        if threading.get_ident() == loop_thread:
            on_loop.add(our_callers())
        time.sleep(seconds)

    def slowed(work: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args, **kwargs: (slow(), work(*args, **kwargs))[1]

    passwords = security.password_context
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "hash", slowed(passwords.hash))
        patch.setattr(passwords, "verify", slowed(passwords.verify))
        event.listen(engine, "checkout", slow)
        try:
            yield on_loop
        finally:
            event.remove(engine, "checkout", slow)


def seed(upstream: UpstreamServer) -> None:
    """A channel, a block rule and a few log rows, so every page has rows to read (and keys to decrypt)."""
    state = app_state()
    with Session(state.engine) as session:
        data = ChannelCreate(
            name="Slow DB", base_url=upstream.base_url("ok"), api_key="sk-loop-123456", model_id="loop"
        )
        state.directory.create(session=session, data=data, actor=None)
        ip_block.add_rule(session=session, ip_address="198.51.100.0/24", reason="loop test")
    state.block_list.refresher.reload()
    for n in range(3):
        state.log_writer.record(
            CallRecord(
                user_id=None,
                username=None,
                ip_address="10.9.0.1",
                channel_id=None,
                model_id="loop",
                prompt_tokens=n,
                completion_tokens=1,
                created_at=utcnow(),
                status="ok",
                tokens_estimated=False,
                duration_ms=1,
            )
        )
    state.log_writer.flush()
    # each cache read once: loaded at start, and reloaded on this thread by the changes above
    state.directory.models()
    state.block_list.match("192.0.2.1")
    state.system_settings.current()


Step = tuple[str, Callable[[], Awaitable[None]]]


def user_journey(user: User, round_: int) -> list[Step]:
    """Every page, signed out and signed in, and the handlers that read or write (``round_`` keeps the
    second pass from repeating the first one's e-mail or address)."""
    steps: list[Step] = []

    def step(name: str) -> Callable[[Callable[[], Awaitable[None]]], None]:
        return lambda action: steps.append((name, action))

    @step("/ as a guest")
    async def _() -> None:
        await user.open("/")
        await user.should_see(marker="message-input")

    @step("/login as a guest")
    async def _() -> None:
        await user.open("/login")
        await user.should_see(marker="submit")

    @step("/register: register and sign in (bcrypt)")
    async def _() -> None:
        await user.open("/register")
        user.find(marker="email").type(f"loop-{round_}@example.com")
        user.find(marker="password").type("password-1")
        user.find(marker="confirm").type("password-1")
        user.find(marker="submit").click()
        await wait_until_async(
            lambda: bool(app.storage.user.get("token")), what="the sign-in after registering"
        )

    @step("/ signed in")
    async def _() -> None:
        await user.open("/")
        await user.should_see(marker="account", retries=SEE_RETRIES)

    @step("/login signed in (redirects)")
    async def _() -> None:
        await user.open("/login")
        await user.should_see(marker="account", retries=SEE_RETRIES)

    @step("/admin/login: sign in (bcrypt)")
    async def _() -> None:
        await user.open("/admin/login")
        user.find(marker="username").type("admin")
        user.find(marker="password").type(TEST_ADMIN_PASSWORD)
        user.find(marker="submit").click()
        await wait_until_async(
            lambda: user.back_history[-1:] == ["/admin/dashboard"], what="the sign-in navigation"
        )

    @step("/admin signed in (redirects)")
    async def _() -> None:
        await user.open("/admin")
        await user.should_see("概览", retries=SEE_RETRIES)

    @step("/admin/dashboard")
    async def _() -> None:
        await user.open("/admin/dashboard")
        await user.should_see(marker="calls", retries=SEE_RETRIES)

    @step("/admin/dashboard: refresh")
    async def _() -> None:
        before = user.find(marker="calls").elements.pop()
        user.find(marker="refresh").click()
        await wait_until_async(lambda: before.is_deleted, what="the refreshed numbers")

    @step("admin frame: the session check")
    async def _() -> None:
        timer = user.find(marker="session-check").elements.pop()
        assert isinstance(timer, ui.timer) and timer.callback is not None
        with user.client:
            result = timer.callback()
            if asyncio.iscoroutine(result):
                await result

    @step("/admin/channels")
    async def _() -> None:
        await user.open("/admin/channels")
        await user.should_see(marker="ch-row-name", content="Slow DB", retries=SEE_RETRIES)

    @step("/admin/channels: switch a channel off or on")
    async def _() -> None:
        switch = user.find(marker="ch-toggle").elements.pop()
        switch.set_value(not switch.value)
        await user.should_see("已启用" if switch.value else "已停用", retries=SEE_RETRIES)

    @step("/admin/logs")
    async def _() -> None:
        await user.open("/admin/logs")
        await user.should_see("共 3 条", retries=SEE_RETRIES)

    @step("/admin/logs: filter")
    async def _() -> None:
        user.find(marker="f-ip").type("10.9.0.2")
        user.find(marker="f-apply").click()
        await user.should_see("共 0 条", retries=SEE_RETRIES)

    @step("/admin/ip")
    async def _() -> None:
        await user.open("/admin/ip")
        await user.should_see("198.51.100.0/24", retries=SEE_RETRIES)

    @step("/admin/ip: add a rule")
    async def _() -> None:
        address = f"203.0.113.{10 + round_}"
        user.find(marker="ip-address").type(address)
        user.find(marker="ip-add").click()
        await user.should_see(f"已禁用 {address}", retries=SEE_RETRIES)
        await user.should_see(kind=ui.item_label, content=address, retries=SEE_RETRIES)  # listed

    @step("/admin/settings")
    async def _() -> None:
        await user.open("/admin/settings")
        await user.should_see(marker="guest-rpm", retries=SEE_RETRIES)

    @step("/admin/settings: save")
    async def _() -> None:
        user.find(marker="settings-save").click()
        await user.should_see("设置已保存并立即生效", retries=SEE_RETRIES)

    @step("/ after the admin's changes (channels, block list, settings)")
    async def _() -> None:
        await user.open("/")
        await user.should_see(marker="message-input", retries=SEE_RETRIES)

    return steps


def sign_out_everyone() -> None:
    for key in ("token", "email", "admin_token"):
        app.storage.user.pop(key, None)


async def test_pages_and_handlers_do_not_block_the_loop(user: User, upstream: UpstreamServer) -> None:
    seed(upstream)
    state = app_state()
    # a first pass at full speed: what runs once per process (imports, templates, plotly's validators)
    for _name, action in user_journey(user, 0):
        await action()
    sign_out_everyone()
    measured: list[tuple[str, float, float]] = []
    watch = LoopWatch()
    # A full garbage collection holds the GIL for as long as it takes, from whichever thread set it
    # off; after the other page tests in this process that was up to 0.4 s, which the loop's thread
    # spends blocked on the GIL when a worker thread collects. Not what this test is about: no
    # collections while it measures.
    gc.collect()
    with slow_blocking_work(state.engine) as on_loop:
        watch.start()
        gc.disable()
        try:
            for name, action in user_journey(user, 1):
                watch.take()
                await action()
                await asyncio.sleep(0.1)  # what a handler started last may still be running
                measured.append((name, *watch.take()))
        finally:
            gc.enable()
            await watch.stop()
    report = "\n".join(
        f"{blocked * 1000:5.0f} ms blocked ({gap * 1000:4.0f} ms gap)  {name}"
        for name, blocked, gap in measured
    )
    culprits = "\n".join(sorted(on_loop)) or "none"
    print(f"\n{report}")  # shown with -s, or -rP
    assert max(blocked for _, blocked, _ in measured) < MAX_BLOCKED, (
        f"the event loop was blocked:\n{report}\nslow calls made on the loop:\n{culprits}"
    )
    assert not on_loop, f"slow calls made on the event loop's thread:\n{culprits}"


async def test_a_slow_database_makes_a_slow_page_not_an_error_page(user: User) -> None:
    """The settings page reads the database twice (the admin check, the settings): at 2 s a read it
    takes longer than the 3 s NiceGUI gives a page by default before serving an error page instead."""
    await user.open("/admin/login")
    user.find(marker="username").type("admin")
    user.find(marker="password").type(TEST_ADMIN_PASSWORD)
    user.find(marker="submit").click()
    await wait_until_async(
        lambda: user.back_history[-1:] == ["/admin/dashboard"], what="the sign-in navigation"
    )
    with slow_blocking_work(app_state().engine, seconds=2.0) as on_loop:
        await user.open("/admin/settings")
        await user.should_see(marker="settings-save", retries=SEE_RETRIES)
    assert not on_loop
