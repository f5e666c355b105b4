"""``/``: the chat page. History lives only in this page (a refresh starts empty); every call goes
through ``services.chat`` so limits, IP blocks and logs are the same as for the API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from fastapi import Request
from nicegui import app, events, ui

from app.state import AppState
from pages.account import KeysDialog, open_password_dialog
from pages.dialogs import show_error
from pages.follow import Follower
from pages.i18n import language_switch
from pages.message_view import AnswerView, user_bubble
from pages.session import current_user, rules_now, sign_out
from pages.theme import apply_theme, dark_mode_button
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services.call_log import Caller
from services.chat import ChatStream
from services.client_ip import client_ip
from services.errors import DomainError, IPBlocked, ModelNotFound
from services.identity import Identity

BLOCKED_NOTE = "回答中断：IP 已被禁用"
SUGGESTIONS = ["用三句话解释什么是大语言模型", "帮我写一个 Python 快速排序", "给我一个周末出游计划"]
# scrolled to by pixels, not by percent: the browser stops at the real bottom, while a percentage is
# taken of the scroll area's size from before the render that made it taller
BOTTOM = 10_000_000
# Enter sends, Shift+Enter adds a line; an Enter that confirms an IME candidate (Chinese input) does neither.
ENTER_TO_SEND = (
    "(e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) "
    "{ e.preventDefault(); emit(); } }"
)


class ChatPage:
    def __init__(
        self,
        state: AppState,
        caller: Caller,
        models: dict[str, str],
        user: Identity | None = None,
        base_url: str = "http://localhost:8000/v1",
        *,
        sign_in_required: bool = False,
    ) -> None:
        self.state = state
        self.sign_in_required = sign_in_required  # a guest while guests are switched off
        self.caller = caller
        self.user = user
        self.base_url = base_url
        self.history: list[dict[str, str]] = []
        self.task: asyncio.Task[None] | None = None
        self.stream: ChatStream | None = None  # the answer streaming now
        self.cut_by_block = False  # whether the answer being written was ended by a block of this IP
        self.models = models

    # ---- layout ------------------------------------------------------------------------------------
    def build(self, email: str | None) -> None:
        dark = apply_theme()
        with ui.column().classes("app-shell"):
            with ui.row().classes("app-header"):
                with ui.row().classes("items-center gap-2 no-wrap"):
                    ui.icon("forum", size="26px", color="primary")
                    ui.label("pyaichat").classes("brand brand-text")
                self.model_select = (
                    ui.select(self.models, value=self._initial_model(), on_change=self._remember_model)
                    .props("dense outlined options-dense")
                    .classes("model-select")
                    .style("min-width: 180px")
                    .mark("model-select")
                )
                ui.space()
                ui.button(icon="add_comment", on_click=self.new_chat).props("flat round dense").tooltip(
                    "新对话"
                ).mark("new-chat")
                language_switch()
                dark_mode_button(dark)
                self._account_menu(email)
            with ui.scroll_area(on_scroll=self._on_scroll).classes("w-full grow") as self.scroller:
                self.column = ui.column().classes("chat-column")
            self.follower = Follower()
            self._empty_state()
            with ui.row().classes("composer"):
                self.input = (
                    ui.textarea(placeholder="输入消息，Enter 发送，Shift+Enter 换行")
                    .props("autogrow outlined dense rows=1 maxlength=20000")
                    .classes("grow")
                    .style("max-height: 40vh; overflow-y: auto")
                    .mark("message-input")
                )
                self.input.on("keydown", self.send, js_handler=ENTER_TO_SEND)
                self.send_button = (
                    ui.button(icon="arrow_upward", on_click=self._send_or_stop)
                    .props("round unelevated")
                    .mark("send")
                )
            with ui.row().classes("w-full justify-center pb-1"):  # the way to the console (admins only)
                ui.link("管理后台", "/admin").classes("text-xs text-gray-400 no-underline").mark("to-console")
        if self.sign_in_required:
            self.model_select.set_visibility(False)
        if not self.models or self.sign_in_required:
            self.input.disable()
            self.send_button.disable()

    def _account_menu(self, email: str | None) -> None:
        if email:
            with ui.button(icon="account_circle").props("flat round dense").mark("account"), ui.menu():
                ui.menu_item(email).props("disable").mark("account-email")
                ui.menu_item("API 密钥", on_click=self._open_keys).mark("api-keys")
                ui.menu_item("修改密码", on_click=self._open_password).mark("change-password")
                ui.menu_item("退出登录", on_click=self._logout).mark("logout")
        else:
            ui.button("登录", on_click=lambda: ui.navigate.to("/login")).props("flat dense no-caps").mark(
                "login"
            )

    def _empty_state(self) -> None:
        with self.column, ui.column().classes("empty-state items-center gap-3") as self.empty:
            if self.sign_in_required:
                ui.icon("lock", size="40px", color="primary")
                ui.label("请先登录").classes("text-xl font-medium")
                ui.label("本站已关闭访客使用，登录后即可开始对话。").classes("text-gray-500").mark(
                    "sign-in-required"
                )
                ui.button("登录", icon="login", on_click=lambda: ui.navigate.to("/login")).props(
                    "unelevated"
                ).mark("sign-in-to-chat")
                return
            ui.icon("waving_hand", size="40px", color="primary")
            if not self.models:
                ui.label("管理员还没有配置可用的模型").classes("text-lg")
                return
            ui.label("有什么可以帮你？").classes("text-xl font-medium")
            with ui.row().classes("justify-center gap-2"):
                for text in SUGGESTIONS:
                    ui.chip(text, on_click=lambda t=text: self._use_suggestion(t)).props("outline clickable")

    def _initial_model(self) -> str | None:
        saved = app.storage.user.get("model")
        if isinstance(saved, str) and saved in self.models:
            return saved
        return next(iter(self.models), None)

    def _remember_model(self) -> None:
        app.storage.user["model"] = self.model_select.value

    def _use_suggestion(self, text: str) -> None:
        self.input.value = text
        self.input.run_method("focus")

    def _on_scroll(self, event: events.ScrollEventArguments) -> None:
        """Follow the answer until the reader scrolls up; follow again once they are back at the bottom."""
        at_bottom = event.vertical_percentage > 0.97 or event.vertical_size <= event.vertical_container_size
        back_to = self.follower.scrolled(event.vertical_position, at_bottom)
        if back_to is not None:
            self.scroller.scroll_to(pixels=back_to)

    def _follow(self) -> None:
        if self.follower.follow():
            self.scroller.scroll_to(pixels=BOTTOM)

    async def _signed_in(self) -> Identity | None:
        """The page's user, checked again (password changed elsewhere, disabled, signed out
        everywhere): None, and off to the sign-in page, once the login is no longer valid."""
        if self.caller.user_id is None:
            return None
        user = await current_user(self.state)
        if user is None or user.id != self.caller.user_id:
            ui.notify("登录已失效，请重新登录", type="warning")
            ui.navigate.to("/login")
            return None
        self.user = user
        self.caller = dataclasses.replace(self.caller, rpm_limit=user.rpm_limit)
        return user

    async def _open_keys(self) -> None:
        user = await self._signed_in()
        if user is not None:
            await KeysDialog(self.state, user, self.base_url).open()

    async def _open_password(self) -> None:
        user = await self._signed_in()
        if user is not None:
            open_password_dialog(self.state, user, self.caller.ip)

    def _logout(self) -> None:
        sign_out()
        ui.navigate.to("/")

    # ---- actions -----------------------------------------------------------------------------------
    async def _send_or_stop(self) -> None:
        if self.task is not None and not self.task.done():
            await self.stop()
        else:
            await self.send()

    async def send(self) -> None:
        text = (self.input.value or "").strip()
        if not text or (self.task is not None and not self.task.done()):
            return
        model = self.model_select.value
        if not model:
            ui.notify("请先选择模型", type="warning")
            return
        if self.caller.user_id is not None and await self._signed_in() is None:
            return
        self.input.value = ""
        self.empty.set_visibility(False)
        self.history.append({"role": "user", "content": text})
        with self.column:
            bubble = user_bubble(text)
            answer = AnswerView()
        self.follower.resume()
        self._follow()
        self._set_busy(True)
        self.task = asyncio.create_task(self._answer(model, text, bubble, answer))

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def disconnected(self) -> None:
        """The page's connection closed (tab closed, refreshed, network lost): its answer ends. When the
        server is shutting down, it was the server that closed it: the call is logged as cut by the
        shutdown."""
        if self.stream is not None and self.state.chat.calls.draining:
            self.stream.cut()
        await self.stop()

    async def new_chat(self) -> None:
        await self.stop()
        self.history.clear()
        self.column.clear()
        self._empty_state()
        self.input.value = ""

    def _set_busy(self, busy: bool) -> None:
        self.send_button.props(f"icon={'stop' if busy else 'arrow_upward'}")
        self.send_button.props(f"color={'negative' if busy else 'primary'}")
        self.send_button.tooltip("停止" if busy else "发送")

    async def _answer(self, model: str, text: str, bubble: ui.row, answer: AnswerView) -> None:
        with self.column:  # this task creates UI (dialogs, notes): give it the page's slot
            self.cut_by_block = False
            answering = asyncio.current_task()
            assert answering is not None
            guard = asyncio.create_task(self._cut_when_blocked(answering))
            try:
                await self._run_answer(model, text, bubble, answer)
            finally:
                guard.cancel()

    async def _cut_when_blocked(self, answering: asyncio.Task[None]) -> None:
        """A block of this page's IP (address or range) ends the answer being written: a change made on
        this instance reaches the block list at once, so the page stops well within a second."""
        await self.state.block_list.until_blocked(self.caller.ip)
        self.cut_by_block = True
        answering.cancel()

    async def _run_answer(self, model: str, text: str, bubble: ui.row, answer: AnswerView) -> None:
        body = {"model": model, "messages": list(self.history), "stream": True}
        try:
            stream = await self.state.chat.open_stream(body=body, caller=self.caller)
        except asyncio.CancelledError:
            answer.drop()
            self._undo_turn(text, bubble)
            if self.cut_by_block:
                self._set_busy(False)
                show_error(IPBlocked())
            raise
        except DomainError as error:
            answer.drop()
            self._undo_turn(text, bubble)
            self._set_busy(False)
            if isinstance(error, ModelNotFound):
                await self._refresh_models()
            show_error(error)
            return
        failure: DomainError | None = None
        self.stream = stream
        try:
            async for piece in stream.pieces():
                if piece.error is not None:
                    failure = piece.error
                    break
                if answer.add(piece.content, piece.reasoning):
                    self._follow()  # one scroll per render, not one message to the browser per chunk
        except asyncio.CancelledError:
            answer.finish(BLOCKED_NOTE if self.cut_by_block else "已停止生成", error=self.cut_by_block)
            self._keep_answer(answer)
            self._set_busy(False)
            if self.cut_by_block:
                show_error(IPBlocked())
            raise
        finally:
            self.stream = None
            await stream.aclose()
        if failure is not None:
            answer.finish("回答中断：上游渠道出错", error=True)
            self._keep_answer(answer)
            show_error(failure)
        else:
            answer.finish()
            self._keep_answer(answer)
        self._set_busy(False)
        self._follow()

    def _keep_answer(self, answer: AnswerView) -> None:
        if answer.content:
            self.history.append({"role": "assistant", "content": answer.content})

    def _undo_turn(self, text: str, bubble: ui.row) -> None:
        """A turn that produced nothing is taken back, and the typed text returns to the input box."""
        if self.history and self.history[-1] == {"role": "user", "content": text}:
            self.history.pop()
        bubble.delete()
        if not (self.input.value or "").strip():
            self.input.value = text
        if not self.history:
            self.empty.set_visibility(True)

    async def _refresh_models(self) -> None:
        self.models = await _models(self.state)
        self.model_select.set_options(self.models, value=self._initial_model())


async def _models(state: AppState) -> dict[str, str]:
    """Model id → name; off the loop, as the channel directory reads the database after a change."""
    return dict(await off_loop(state.chat.model_names))


def register(state: AppState) -> None:
    @ui.page("/", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def chat_page(request: Request) -> None:
        user = await current_user(state)
        caller = Caller(
            ip=client_ip(request.scope),
            user_id=user.id if user else None,
            username=user.email if user else None,
            path="/",
            rpm_limit=user.rpm_limit if user else None,
        )
        sign_in_required = user is None and not (await rules_now(state)).guest_enabled
        models = {} if sign_in_required else await _models(state)
        base_url = str(request.base_url).rstrip("/") + "/v1"
        page = ChatPage(state, caller, models, user, base_url, sign_in_required=sign_in_required)
        page.build(user.email if user else None)
        client = ui.context.client
        client.on_disconnect(page.disconnected)  # closing or refreshing the tab ends the upstream request
