"""The answer the chat page is writing: one at a time, streamed from ``services.chat`` into its turn.

It ends when the stream does, when the user stops it (the stop button, Esc), when this page's IP gets
blocked, or when the page's connection drops (marked as interrupted, with a retry). An answer that never
started is taken back: the turn shows its previous version again, or goes, and its text returns to the
input box."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from nicegui import ui

from pages.dialogs import show_error
from pages.i18n import named, t
from pages.message_view import AnswerView
from pages.turns import Turn, upstream_messages
from services.chat_stream import ChatStream
from services.errors import DomainError, IPBlocked, ModelNotFound

if TYPE_CHECKING:
    from pages.chat import ChatPage


class Answering:
    """The page's answer task, its stream, and why it was cut."""

    def __init__(self, page: ChatPage) -> None:
        self.page = page
        self.task: asyncio.Task[None] | None = None
        self.stream: ChatStream | None = None  # the answer streaming now
        self.cut_by_block = False  # whether the answer being written was ended by a block of this IP
        self.cut_by_drop = False  # whether it was ended by the page's connection dropping

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def ask(self, turn: Turn) -> None:
        """A new answer (version) for ``turn``, streamed into the page."""
        page = self.page
        with page.column:
            answer = AnswerView()
            for earlier in turn.answers:
                earlier.set_shown(False)
            turn.answers.append(answer)
            turn.shown = len(turn.answers) - 1
            page.follower.resume()
            page.follow()
            page.set_busy(True)
            self.task = asyncio.create_task(self._answer(str(page.model_select.value), turn, answer))

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def disconnected(self) -> None:
        """The page's connection closed (tab closed, refreshed, network lost): its answer ends, marked
        as interrupted (the page stays on the server for a while, and shows it once the browser is back).
        When the server is shutting down, it was the server that closed it: the call is logged as cut by
        the shutdown."""
        if self.stream is not None and self.page.state.chat.calls.draining:
            self.stream.cut()
        if self.busy:
            self.cut_by_drop = True
        await self.stop()

    async def _answer(self, model: str, turn: Turn, answer: AnswerView) -> None:
        with self.page.column:  # this task creates UI (dialogs, notes): give it the page's slot
            self.cut_by_block = False
            self.cut_by_drop = False
            answering = asyncio.current_task()
            assert answering is not None
            guard = asyncio.create_task(self._cut_when_blocked(answering))
            try:
                await self._run(model, turn, answer)
            finally:
                guard.cancel()

    async def _cut_when_blocked(self, answering: asyncio.Task[None]) -> None:
        """A block of this page's IP (address or range) ends the answer being written: a change made on
        this instance reaches the block list at once, so the page stops well within a second."""
        await self.page.state.block_list.until_blocked(self.page.caller.ip)
        self.cut_by_block = True
        answering.cancel()

    async def _run(self, model: str, turn: Turn, answer: AnswerView) -> None:
        page = self.page
        index = page.turns.index(turn)
        body = page.conversation.request(model, upstream_messages(page.turns[: index + 1]))
        try:
            stream = await page.state.chat.open_stream(body=body, caller=page.caller)
        except asyncio.CancelledError:
            self._take_back(turn, answer)
            if self.cut_by_block:
                page.set_busy(False)
                show_error(IPBlocked())
            raise
        except DomainError as error:
            self._take_back(turn, answer)
            page.set_busy(False)
            if isinstance(error, ModelNotFound):
                await page.refresh_models()
            show_error(error, sign_in=page.account.open_sign_in)
            return
        failure: DomainError | None = None
        self.stream = stream
        try:
            async for piece in stream.pieces():
                if piece.error is not None:
                    failure = piece.error
                    break
                if answer.add(piece.content, piece.reasoning):
                    page.follow()  # one scroll per render, not one message to the browser per chunk
        except asyncio.CancelledError:
            self._end_cancelled(turn, answer)
            raise
        finally:
            self.stream = None
            await stream.aclose()
        if failure is not None:
            answer.finish(t("chat.upstream_failed"), error=True)
            show_error(failure)
        else:
            answer.finish()
        page.actions.answer_actions(turn)
        page.set_busy(False)
        page.follow()

    def _end_cancelled(self, turn: Turn, answer: AnswerView) -> None:
        page = self.page
        if self.cut_by_block:
            answer.finish(t("chat.blocked"), error=True)
        elif self.cut_by_drop:
            answer.finish(t("chat.interrupted"), error=True)
            with answer._notes:
                named(
                    ui.button(
                        t("chat.retry"), icon="refresh", on_click=lambda: page.actions.regenerate(turn)
                    ),
                    "chat.retry",
                ).props("flat dense no-caps size=sm").mark("retry")
        else:
            answer.finish(t("chat.stopped"))
        page.actions.answer_actions(turn)
        page.set_busy(False)
        if self.cut_by_block:
            show_error(IPBlocked())

    def _take_back(self, turn: Turn, answer: AnswerView) -> None:
        """An answer that never started is taken back: a regenerated one shows the previous version
        again; a new turn goes, and its text returns to the input box."""
        page = self.page
        answer.drop()
        turn.answers.remove(answer)
        if turn.answers:
            turn.shown = len(turn.answers) - 1
            turn.answers[turn.shown].set_shown(True)
            page.actions.answer_actions(turn)
            return
        if turn in page.turns:
            page.turns.remove(turn)
        turn.view.row.delete()
        page.attachments.give_back(turn.images)
        if not (page.input.value or "").strip():
            page.input.value = turn.text
        if not page.turns:
            page.empty.set_visibility(True)
