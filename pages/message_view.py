"""How one message is shown: the user's bubble, and an assistant answer with a live thinking panel
(Markdown), Markdown that re-renders at most about eight times a second while streaming, code blocks with
their language and a copy button (also while streaming), math, and a row of actions under each bubble
(filled by the page). The Markdown is sanitised on the server (``pages.safe_markdown``): model output loads
nothing by itself."""

from __future__ import annotations

import re
import time
import weakref

from nicegui import ui

from pages.i18n import t
from pages.safe_markdown import answer_markdown

# seconds between two renders of one message while it streams, at least: each render also scrolls the page,
# and costs the server about 1.3 ms in all (NiceGUI's update and scroll messages, the scroll event back);
# a 3,000-token answer took 1.30 s of server CPU at 0.1, 1.16 s at 0.125 and 1.02 s at 0.15 (benchmark 7)
RENDER_INTERVAL = 0.125
RENDER_SHARE = 0.01  # share of one core that re-rendering one streaming message may take
RENDER_BUDGET = 0.25  # and all streaming messages of the process together
# and at most this many renders a second for the whole process: each is also a WebSocket message the
# server serializes and sends after the render (not in its measured time) and a frame the browser draws
PROCESS_RENDERS_PER_SECOND = 40
PIECE_CHARS = 1000  # a streaming answer's tail is settled into a piece of its own once this long
_STREAMING: weakref.WeakSet[AnswerView] = weakref.WeakSet()  # messages of this process still streaming


# a line that opens a block whose meaning may reach past a blank line: an indented line (code, a list
# item's continuation), a list item, a quote, raw HTML
_NOT_SELF_CONTAINED = re.compile(r"\s|(?:[-*+]|\d{1,9}[.)])(?:\s|$)|[>< ]")


def settled_length(text: str) -> int:
    """How much of ``text`` can be rendered on its own for good, however the stream goes on.

    The cut falls on a blank line between two blocks that each open at the margin with plain text (a
    paragraph, a heading, a table, a closed code fence): Markdown renders such blocks the same apart as
    together. Never inside a code fence, never next to a list, a quote, an indented or an HTML block,
    and never before a line still being written. 0 when there is no such place.
    """
    cut = 0
    fences = 0  # ``` seen so far: odd while inside a fenced block
    position = 0
    previous_first: str | None = None  # first line of the block before the blank line(s)
    current_first: str | None = None
    blank_before = False
    lines = text.split("\n")
    for line in lines[:-1]:  # the last piece has no newline yet: it may still change
        if not line.strip():
            blank_before = current_first is not None or blank_before
            if current_first is not None:
                previous_first, current_first = current_first, None
        else:
            if current_first is None:
                current_first = line
                if (
                    blank_before
                    and previous_first is not None
                    and fences % 2 == 0
                    and not _NOT_SELF_CONTAINED.match(previous_first)
                    and not _NOT_SELF_CONTAINED.match(line)
                ):
                    cut = position
            fences += line.count("```")
        position += len(line) + 1
    return cut


class UserView:
    """One message of the user: its bubble and, under it, its actions (filled by the page)."""

    def __init__(self, text: str) -> None:
        with (
            ui.row().classes("msg-row user") as self.row,
            ui.column().classes("user-stack gap-0") as self.stack,
        ):
            self.label = ui.label(text).classes("bubble user").mark("user-message")
            self.actions = ui.row().classes("msg-actions justify-end")


def user_bubble(text: str) -> ui.row:
    return UserView(text).row


class AnswerView:
    """One assistant message being streamed into the page."""

    def __init__(self) -> None:
        self.copy_label = t("chat.copy")
        self.finished = False
        self.note: str | None = None  # why the answer ended early (stopped, interrupted, failed)
        self.content = ""
        self.reasoning = ""
        self._started = time.monotonic()
        self._thinking_seconds: float | None = None
        self._last_render = 0.0
        self._interval = RENDER_INTERVAL
        self._dirty = False
        _STREAMING.add(self)
        with ui.row().classes("msg-row assistant") as self.row:
            with ui.element("div").classes("avatar"):
                ui.icon("auto_awesome", size="18px")
            with ui.column().classes("bubble assistant gap-0") as self.bubble:
                self._thinking_slot = ui.column().classes("w-full gap-0")
                with ui.element("div").classes("typing").mark("typing") as self.typing:
                    for _ in range(3):
                        ui.element("span")
                # the answer: settled pieces rendered once, then the live tail, the only part re-rendered
                with ui.element("div").classes("w-full answer").mark("answer") as self.body:
                    self._pieces = ui.element("div").classes("w-full")
                    self._live = answer_markdown(copy_label=self.copy_label).classes("w-full")
                self.body.set_visibility(False)
                self._notes = ui.column().classes("w-full gap-0")
                self.actions = ui.row().classes("msg-actions")
        self._settled = 0  # characters of content rendered for good into self._pieces
        self.thinking: ui.expansion | None = None
        self._thinking_label = ""
        self.thinking_text: ui.markdown | None = None

    def add(self, content: str, reasoning: str) -> bool:
        """Take a piece of the stream; True when the message was rendered again (and may have grown).

        Markdown is converted on the server and a render converts the whole answer so far, so renders
        are spaced by what they cost: after a render that took ``t``, the next waits ``t ÷ RENDER_SHARE``,
        or ``t × streaming messages ÷ RENDER_BUDGET`` when more. A long answer, or many at once, render
        less often instead of taking the server's CPU (the API and the other pages stay fast); short
        ones still render eight times a second.
        """
        if reasoning:
            self.reasoning += reasoning
            self._dirty = True
        if content:
            if not self.content and self.reasoning and self._thinking_seconds is None:
                self._thinking_seconds = time.monotonic() - self._started
            self.content += content
            self._dirty = True
        if self._dirty and time.monotonic() - self._last_render >= self._interval:
            self.render()
            return True
        return False

    def render(self, *, content: bool = True) -> None:
        self._dirty = False
        started = time.monotonic()
        if self.reasoning:
            self._show_thinking()
        if self.content and content:
            self.typing.set_visibility(False)
            self.body.set_visibility(True)
            self._render_content()
        self._last_render = time.monotonic()
        spent = self._last_render - started
        streaming = len(_STREAMING)
        self._interval = max(
            RENDER_INTERVAL,
            spent / RENDER_SHARE,
            spent * streaming / RENDER_BUDGET,
            streaming / PROCESS_RENDERS_PER_SECOND,
        )

    def _render_content(self) -> None:
        """Only the tail since the last settled piece is converted and sent again: a render costs the
        server and the browser the size of that tail, not of the whole answer so far."""
        tail = self.content[self._settled :]
        if len(tail) >= PIECE_CHARS and (cut := settled_length(tail)) > 0:
            with self._pieces:
                answer_markdown(tail[:cut], copy_label=self.copy_label).classes("w-full settled")
            self._settled += cut
            tail = tail[cut:]
        self._live.set_content(tail)

    def _show_thinking(self) -> None:
        if self.thinking is None:
            self._thinking_label = t("chat.thinking")
            with self._thinking_slot:
                self.thinking = ui.expansion(self._thinking_label, icon="psychology", value=True).classes(
                    "thinking w-full"
                )
                self.thinking.mark("thinking")
                with self.thinking:
                    self.thinking_text = (
                        answer_markdown(copy_label=self.copy_label)
                        .classes("thinking-text")
                        .mark("thinking-text")
                    )
        assert self.thinking_text is not None
        self.thinking_text.set_content(self.reasoning)
        if (
            self._thinking_seconds is not None
            and self.thinking.value
            and self.thinking.text == self._thinking_label
        ):
            self.thinking.text = t("chat.thought", seconds=f"{self._thinking_seconds:.1f}")
            self.thinking.value = False  # collapse once the answer starts

    def drop(self) -> None:
        """Remove a message that never got an answer."""
        _STREAMING.discard(self)
        self.row.delete()

    def finish(self, note: str | None = None, *, error: bool = False) -> None:
        """Final render; ``note`` marks a stopped, interrupted or failed answer."""
        _STREAMING.discard(self)
        self.finished = True
        if self.reasoning and self._thinking_seconds is None:
            self._thinking_seconds = time.monotonic() - self._started
        self.render()
        self.typing.set_visibility(False)
        if self.thinking is not None and self.thinking.text == self._thinking_label:
            self.thinking.text = t("chat.thought", seconds=f"{self._thinking_seconds or 0:.1f}")
        if note:
            self.note = note
            with self._notes:
                ui.label(note).classes("status-note" + (" error" if error else "")).mark("status-note")

    def set_shown(self, shown: bool) -> None:
        self.row.set_visibility(shown)
