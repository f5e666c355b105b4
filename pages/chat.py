"""``/``: the chat page. History lives only in this page (a refresh starts empty); every call goes
through ``services.chat`` so limits, IP blocks and logs are the same as for the API.

The conversation is a list of turns: the user's message and the answers it got (a regenerated answer is
one more version, browsable as 1/2, 2/2). Each message has its actions (copy, edit, regenerate, delete),
the header exports the whole conversation as a Markdown file (made in memory, sent to the browser)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from typing import Any

from fastapi import Request
from nicegui import app, background_tasks, events, ui

from app.state import AppState
from pages.account import KeysDialog, open_password_dialog
from pages.attachments import Attached, Attachments, show_in_message
from pages.auth import open_sign_in_dialog
from pages.chat_settings import ConversationSettings
from pages.dialogs import show_error
from pages.follow import Follower
from pages.i18n import language_switch, t
from pages.message_view import AnswerView, UserView
from pages.restart_notice import HOOK_SCRIPT as RESTART_HOOK
from pages.restart_notice import restart_notice
from pages.session import current_user, rules_now, sign_out
from pages.theme import apply_theme, dark_mode_button
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services.call_log import Caller
from services.chat import ChatStream
from services.client_ip import client_ip
from services.errors import DomainError, IPBlocked, ModelNotFound
from services.i18n import translate
from services.identity import Identity
from services.images import has_images, user_content

BLOCKED_NOTE = translate("chat.blocked", "zh-CN")  # the Chinese text (tests look for it)
SUGGESTIONS = ["chat.suggestion_1", "chat.suggestion_2", "chat.suggestion_3"]
# a dropped connection keeps the page (conversation, draft) this long on the server for the browser to
# come back to (NiceGUI's default is 3 s)
RECONNECT_SECONDS = 300.0
SEARCHABLE_MODELS = 10  # a picker with more models than this gets a search box
# scrolled to by pixels, not by percent: the browser stops at the real bottom, while a percentage is
# taken of the scroll area's size from before the render that made it taller
BOTTOM = 10_000_000
# Enter sends, Shift+Enter adds a line; an Enter that confirms an IME candidate (Chinese input) does neither.
ENTER_TO_SEND = (
    "(e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) "
    "{ e.preventDefault(); emit(); } }"
)
# in the browser, no round trip: "/" focuses the message box (unless typing elsewhere), closing or reloading
# a tab with a conversation asks first (the browser's own prompt), and a code block's copy button copies its
# code (buttons in sanitised answers carry no handler of their own)
PAGE_SCRIPT = """<script>
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
  const el = document.activeElement;
  if (el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName))) return;
  const box = document.querySelector('.composer textarea');
  if (box) { e.preventDefault(); box.focus(); }
});
window.addEventListener('beforeunload', (e) => {
  if (window.pyaichatNewChat) return;  // the restart notice's New chat: asked for
  if (document.querySelector('.bubble.user')) { e.preventDefault(); e.returnValue = ''; }
});
document.addEventListener('click', (e) => {
  const button = e.target.closest && e.target.closest('.code-copy');
  if (!button) return;
  const code = button.closest('.code-block').querySelector('pre').innerText;
  const done = () => {
    button.classList.add('copied'); setTimeout(() => button.classList.remove('copied'), 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(code).then(done); return;
  }
  const area = document.createElement('textarea');
  area.value = code; area.style.position = 'fixed'; area.style.opacity = '0';
  document.body.appendChild(area); area.select(); document.execCommand('copy'); area.remove(); done();
});
</script>"""


def _named(element: ui.button, key: str) -> ui.button:
    """An icon button's accessible name and tooltip, in the page's language."""
    name = t(key)
    return element.props(f'aria-label="{name}"').tooltip(name)


@dataclasses.dataclass(eq=False)
class Turn:
    """One message of the user and the answers it got; ``shown`` is the version on screen."""

    text: str
    view: UserView
    answers: list[AnswerView] = dataclasses.field(default_factory=list)
    shown: int = 0
    images: list[Attached] = dataclasses.field(default_factory=list)  # sent along, never stored

    @property
    def answer(self) -> AnswerView | None:
        return self.answers[self.shown] if self.answers else None

    def delete(self) -> None:
        self.view.row.delete()
        for answer in self.answers:
            answer.drop()


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
        self.turns: list[Turn] = []
        self.task: asyncio.Task[None] | None = None
        self.stream: ChatStream | None = None  # the answer streaming now
        self.cut_by_block = False  # whether the answer being written was ended by a block of this IP
        self.cut_by_drop = False  # whether it was ended by the page's connection dropping
        self.models = models
        # conversation settings and image attachments (pages/chat_settings.py, pages/attachments.py)
        self.conversation = ConversationSettings(state.model_settings, lambda: self.model_select.value)
        self.attachments = Attachments()

    @property
    def history(self) -> list[dict[str, Any]]:
        """The messages as they go upstream: every turn with the answer version on screen."""
        return self._messages(len(self.turns))

    def _messages(self, upto: int) -> list[dict[str, Any]]:
        """User content with images is OpenAI content parts."""
        messages: list[dict[str, Any]] = []
        for index, turn in enumerate(self.turns[:upto]):
            messages.append(
                {"role": "user", "content": user_content(turn.text, [i.url for i in turn.images])}
            )
            answer = turn.answer
            if answer is not None and answer.content and index < upto:
                messages.append({"role": "assistant", "content": answer.content})
        return messages

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    # ---- layout ------------------------------------------------------------------------------------
    def build(self, email: str | None) -> None:
        dark = apply_theme()
        ui.add_body_html(PAGE_SCRIPT)
        with ui.column().classes("app-shell"):
            with ui.row().classes("app-header"):
                with ui.row().classes("items-center gap-2 no-wrap"):
                    ui.icon("forum", size="26px", color="primary")
                    ui.label("pyaichat").classes("brand brand-text")
                self._model_picker()
                ui.space()
                self.header_tools = ui.row().classes("items-center gap-1 no-wrap")  # hooks (settings, …)
                with self.header_tools:
                    self.conversation.button()
                    _named(
                        ui.button(icon="download", on_click=self.export).props("flat round dense"),
                        "chat.export",
                    ).mark("export")
                    _named(
                        ui.button(icon="add_comment", on_click=self.new_chat).props("flat round dense"),
                        "chat.new_chat",
                    ).mark("new-chat")
                language_switch()
                dark_mode_button(dark)
                self.account_slot = ui.row().classes("items-center no-wrap")
                self._account_menu(email)
            with ui.scroll_area(on_scroll=self._on_scroll).classes(
                "w-full grow chat-scroller"
            ) as self.scroller:
                self.column = ui.column().classes("chat-column")
            self.follower = Follower()
            self._empty_state()
            self.attachments.build()
            restart_notice()
            self._composer()
            self.conversation.build()
            with ui.row().classes("w-full justify-center pb-1"):  # the way to the console (admins only)
                ui.link(t("chat.to_console"), "/admin").classes("console-link no-underline").mark(
                    "to-console"
                )
        ui.keyboard(on_key=self._on_key, ignore=[])
        ui.run_javascript(RESTART_HOOK)  # a restarted server leaves the page on screen, with a notice
        if self.sign_in_required:
            self.model_select.set_visibility(False)
        if not self.models or self.sign_in_required:
            self.input.disable()
            self.send_button.disable()

    def _model_picker(self) -> None:
        searchable = len(self.models) > SEARCHABLE_MODELS
        self.model_select = (
            ui.select(
                self.models,
                value=self._initial_model(),
                on_change=self._remember_model,
                with_input=searchable,
            )
            .props(f'dense outlined options-dense aria-label="{t("chat.model")}"')
            .classes("model-select")
            .style("min-width: 180px")
            .mark("model-select")
        )
        if searchable:
            self.model_select.props(f'input-debounce=0 placeholder="{t("chat.search_model")}"')

    def _composer(self) -> None:
        with ui.row().classes("composer") as composer:
            self.attachments.button()
            self.input = (
                ui.textarea(placeholder=t("chat.placeholder"))
                .props(f'autogrow outlined dense rows=1 maxlength=20000 aria-label="{t("chat.message_box")}"')
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
            with self.send_button:
                self._send_tip = ui.tooltip("")
            self._set_busy(False)
        self.attachments.accept_drops(composer, self.input)

    def _account_menu(self, email: str | None) -> None:
        self.account_slot.clear()
        with self.account_slot:
            self._account_button(email)

    def _account_button(self, email: str | None) -> None:
        if email:
            with (
                _named(ui.button(icon="account_circle").props("flat round dense"), "chat.account").mark(
                    "account"
                ),
                ui.menu(),
            ):
                ui.menu_item(email).props("disable").mark("account-email")
                ui.menu_item(t("chat.api_keys"), on_click=self._open_keys).mark("api-keys")
                ui.menu_item(t("chat.change_password"), on_click=self._open_password).mark("change-password")
                ui.menu_item(t("chat.sign_out"), on_click=self._logout).mark("logout")
        else:
            ui.button(t("chat.sign_in"), on_click=self.open_sign_in).props("flat dense no-caps").mark("login")

    def _empty_state(self) -> None:
        with self.column, ui.column().classes("empty-state items-center gap-3") as self.empty:
            if self.sign_in_required:
                ui.icon("lock", size="40px", color="primary")
                ui.label(t("chat.sign_in_first")).classes("text-xl font-medium")
                ui.label(t("chat.guests_closed")).classes("caption").mark("sign-in-required")
                ui.button(t("chat.sign_in"), icon="login", on_click=self.open_sign_in).props(
                    "unelevated"
                ).mark("sign-in-to-chat")
                return
            ui.icon("waving_hand", size="40px", color="primary")
            if not self.models:
                ui.label(t("chat.no_models")).classes("text-lg")
                return
            ui.label(t("chat.greeting")).classes("text-xl font-medium")
            with ui.row().classes("justify-center gap-2"):
                for key in SUGGESTIONS:
                    text = t(key)
                    ui.chip(text, on_click=lambda t=text: self._use_suggestion(t)).props("outline clickable")

    def _initial_model(self) -> str | None:
        saved = app.storage.user.get("model")
        if isinstance(saved, str) and saved in self.models:
            return saved
        return next(iter(self.models), None)

    def _remember_model(self) -> None:
        app.storage.user["model"] = self.model_select.value
        self.conversation.show_defaults()

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

    async def _on_key(self, event: events.KeyEventArguments) -> None:
        """Esc stops the answer being written."""
        if event.key.escape and event.action.keydown and self.busy:
            await self.stop()

    async def _signed_in(self) -> Identity | None:
        """The page's user, checked again (password changed elsewhere, disabled, signed out
        everywhere): None, and off to the sign-in page, once the login is no longer valid."""
        if self.caller.user_id is None:
            return None
        user = await current_user(self.state)
        if user is None or user.id != self.caller.user_id:
            ui.notify(t("chat.login_expired"), type="warning")
            await self._become(user)  # the login the session holds now (another tab's), or a guest
            if user is None:
                background_tasks.create(self.open_sign_in(), name="sign-in dialog")
            return None
        self.user = user
        self.caller = dataclasses.replace(self.caller, rpm_limit=user.rpm_limit, credential=user.credential)
        return user

    async def _open_keys(self) -> None:
        user = await self._signed_in()
        if user is not None:
            await KeysDialog(self.state, user, self.base_url).open()

    async def _open_password(self) -> None:
        user = await self._signed_in()
        if user is not None:
            open_password_dialog(self.state, user, self.caller.ip)

    # ---- signing in and out, without leaving the page ----------------------------------------------
    async def open_sign_in(self) -> None:
        """The sign-in dialog over the page: the conversation, the draft and the model stay as they are."""
        with self.column.client.layout:  # (also opened from a task of its own, which has no slot)
            await open_sign_in_dialog(self.state, self.caller.ip, signed_in=self._adopt_login)

    async def _adopt_login(self) -> None:
        """The login the dialog kept in the session (the one source of truth, as after a reload) becomes
        the page's: from the next message on, calls are the user's."""
        user = await current_user(self.state)
        await self._become(user)
        if user is not None:
            ui.notify(t("chat.signed_in", email=user.email), type="positive")

    async def _logout(self) -> None:
        sign_out()
        await self._become(None)
        ui.notify(t("chat.signed_out"), type="info")

    async def _become(self, user: Identity | None) -> None:
        """The page is now ``user``'s (a guest's for None, or locked while guests are switched off)."""
        locked = user is None and not (await rules_now(self.state)).guest_enabled
        if locked and self.busy:  # the answer being written was the user's
            await self.stop()
        was_locked = self.sign_in_required
        self.user = user
        self.sign_in_required = locked
        self.caller = dataclasses.replace(
            self.caller,
            user_id=user.id if user else None,
            username=user.email if user else None,
            rpm_limit=user.rpm_limit if user else None,
            credential=user.credential if user else None,
        )
        self._account_menu(user.email if user else None)
        if was_locked and not locked:  # the models were not listed for the locked page
            await self._refresh_models()
        self.model_select.set_visibility(not locked)
        self.input.set_enabled(bool(self.models) and not locked)
        self.send_button.set_enabled(bool(self.models) and not locked)
        if was_locked != locked:
            self.empty.delete()
            self._empty_state()  # after the conversation, which stays on screen: locked, it says why
            self.empty.set_visibility(locked or not self.turns)

    # ---- sending and stopping ----------------------------------------------------------------------
    async def _send_or_stop(self) -> None:
        if self.busy:
            await self.stop()
        else:
            await self.send()

    async def send(self) -> None:
        text = (self.input.value or "").strip()
        if not (text or self.attachments.images) or self.busy:
            return
        if not await self._ready():
            return
        self.input.value = ""
        self._start_turn(text, self.attachments.take())

    async def _ready(self) -> bool:
        model = self.model_select.value
        if not model:
            ui.notify(t("chat.choose_model"), type="warning")
            return False
        refusal = self._settings_refusal(str(model))
        if refusal is not None:
            ui.notify(refusal, type="warning")
            return False
        return not (self.caller.user_id is not None and await self._signed_in() is None)

    def _settings_refusal(self, model: str) -> str | None:
        """Why a message cannot go (images for a model without vision, a setting out of range)."""
        if self.state.model_settings.get(model).vision:
            return self.conversation.problem()
        if self.attachments.images:
            return t("convo.no_vision", model=model)
        if has_images(self.history):  # sent earlier, and sent again with every message
            return t("convo.no_vision_history", model=model)
        return self.conversation.problem()

    def _start_turn(self, text: str, images: list[Attached]) -> None:
        self.empty.set_visibility(False)
        with self.column:  # (called from handlers whose own element may be gone: an edited message's)
            view = UserView(text)
            show_in_message(view.row, images)
            turn = Turn(text, view, images=images)
            self.turns.append(turn)
            self._user_actions(turn)
            self._ask(turn)

    def _ask(self, turn: Turn) -> None:
        """A new answer (version) for ``turn``, streamed into the page."""
        with self.column:
            answer = AnswerView()
            for earlier in turn.answers:
                earlier.set_shown(False)
            turn.answers.append(answer)
            turn.shown = len(turn.answers) - 1
            self.follower.resume()
            self._follow()
            self._set_busy(True)
            self.task = asyncio.create_task(self._answer(str(self.model_select.value), turn, answer))

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
        if self.stream is not None and self.state.chat.calls.draining:
            self.stream.cut()
        if self.busy:
            self.cut_by_drop = True
        await self.stop()

    async def new_chat(self) -> None:
        await self.stop()
        self.turns.clear()
        self.column.clear()
        self._empty_state()
        self.input.value = ""

    def _set_busy(self, busy: bool) -> None:
        self.send_button.props(f"icon={'stop' if busy else 'arrow_upward'}")
        self.send_button.props(f"color={'negative' if busy else 'primary'}")
        name = t("chat.stop" if busy else "chat.send")
        self.send_button.props(f'aria-label="{name}"')
        self._send_tip.text = name

    async def _answer(self, model: str, turn: Turn, answer: AnswerView) -> None:
        with self.column:  # this task creates UI (dialogs, notes): give it the page's slot
            self.cut_by_block = False
            self.cut_by_drop = False
            answering = asyncio.current_task()
            assert answering is not None
            guard = asyncio.create_task(self._cut_when_blocked(answering))
            try:
                await self._run_answer(model, turn, answer)
            finally:
                guard.cancel()

    async def _cut_when_blocked(self, answering: asyncio.Task[None]) -> None:
        """A block of this page's IP (address or range) ends the answer being written: a change made on
        this instance reaches the block list at once, so the page stops well within a second."""
        await self.state.block_list.until_blocked(self.caller.ip)
        self.cut_by_block = True
        answering.cancel()

    async def _run_answer(self, model: str, turn: Turn, answer: AnswerView) -> None:
        index = self.turns.index(turn)
        body = self.conversation.request(model, self._messages(index + 1))
        try:
            stream = await self.state.chat.open_stream(body=body, caller=self.caller)
        except asyncio.CancelledError:
            self._take_back(turn, answer)
            if self.cut_by_block:
                self._set_busy(False)
                show_error(IPBlocked())
            raise
        except DomainError as error:
            self._take_back(turn, answer)
            self._set_busy(False)
            if isinstance(error, ModelNotFound):
                await self._refresh_models()
            show_error(error, sign_in=self.open_sign_in)
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
        self._answer_actions(turn)
        self._set_busy(False)
        self._follow()

    def _end_cancelled(self, turn: Turn, answer: AnswerView) -> None:
        if self.cut_by_block:
            answer.finish(t("chat.blocked"), error=True)
        elif self.cut_by_drop:
            answer.finish(t("chat.interrupted"), error=True)
            with answer._notes:
                _named(
                    ui.button(t("chat.retry"), icon="refresh", on_click=lambda: self.regenerate(turn)),
                    "chat.retry",
                ).props("flat dense no-caps size=sm").mark("retry")
        else:
            answer.finish(t("chat.stopped"))
        self._answer_actions(turn)
        self._set_busy(False)
        if self.cut_by_block:
            show_error(IPBlocked())

    def _take_back(self, turn: Turn, answer: AnswerView) -> None:
        """An answer that never started is taken back: a regenerated one shows the previous version
        again; a new turn goes, and its text returns to the input box."""
        answer.drop()
        turn.answers.remove(answer)
        if turn.answers:
            turn.shown = len(turn.answers) - 1
            turn.answers[turn.shown].set_shown(True)
            self._answer_actions(turn)
            return
        if turn in self.turns:
            self.turns.remove(turn)
        turn.view.row.delete()
        self.attachments.give_back(turn.images)
        if not (self.input.value or "").strip():
            self.input.value = turn.text
        if not self.turns:
            self.empty.set_visibility(True)

    async def _refresh_models(self) -> None:
        self.models = await _models(self.state)
        self.model_select.set_options(self.models, value=self._initial_model())

    # ---- message actions ---------------------------------------------------------------------------
    def _user_actions(self, turn: Turn) -> None:
        actions = turn.view.actions
        actions.clear()
        with actions:
            self._action("content_copy", "chat.copy", "copy", lambda: self._copy(turn.text))
            self._action("edit", "chat.edit", "edit", lambda: self._edit(turn))

    def _answer_actions(self, turn: Turn) -> None:
        answer = turn.answer
        if answer is None:
            return
        answer.actions.clear()
        with answer.actions:
            if len(turn.answers) > 1:
                self._action(
                    "chevron_left", "chat.previous_answer", "previous-answer", lambda: self._show(turn, -1)
                )
                ui.label(f"{turn.shown + 1}/{len(turn.answers)}").classes("answer-index").mark("answer-index")
                self._action("chevron_right", "chat.next_answer", "next-answer", lambda: self._show(turn, 1))
            self._action("content_copy", "chat.copy", "copy", lambda: self._copy(answer.content))
            self._action("refresh", "chat.regenerate", "regenerate", lambda: self.regenerate(turn))
            self._action("delete_outline", "chat.delete", "delete", lambda: self.delete(turn))

    @staticmethod
    def _action(
        icon: str, key: str, marker: str, handler: events.Handler[events.ClickEventArguments]
    ) -> ui.button:
        return _named(ui.button(icon=icon, on_click=handler).props("flat round dense size=sm"), key).mark(
            marker
        )

    def _copy(self, text: str) -> None:
        ui.clipboard.write(text)
        ui.notify(t("chat.copied"), type="positive", timeout=1200)

    def _show(self, turn: Turn, step: int) -> None:
        """Browse the versions of a regenerated answer."""
        shown = turn.shown + step
        if not 0 <= shown < len(turn.answers):
            return
        turn.answers[turn.shown].set_shown(False)
        turn.shown = shown
        turn.answers[shown].set_shown(True)
        self._answer_actions(turn)

    def _drop_after(self, turn: Turn) -> None:
        """The turns after ``turn`` go: what follows an edited or regenerated message no longer fits."""
        index = self.turns.index(turn)
        for later in self.turns[index + 1 :]:
            later.delete()
        del self.turns[index + 1 :]

    async def regenerate(self, turn: Turn) -> None:
        await self.stop()
        if turn not in self.turns or not await self._ready():
            return
        self._drop_after(turn)
        self._ask(turn)

    async def delete(self, turn: Turn) -> None:
        """Delete a message and its answers (the pair)."""
        if self.busy and turn is self.turns[-1]:
            await self.stop()
        if turn not in self.turns:
            return
        self.turns.remove(turn)
        turn.delete()
        if not self.turns:
            self.empty.set_visibility(True)

    def _edit(self, turn: Turn) -> None:
        """Edit a message in place; saving sends it again, and what followed it goes."""
        view = turn.view
        view.label.set_visibility(False)
        view.actions.set_visibility(False)
        with view.stack, ui.column().classes("edit-box w-full gap-1") as editor:
            box = (
                ui.textarea(value=turn.text)
                .props(f'autogrow outlined dense aria-label="{t("chat.edit_box")}"')
                .classes("w-full")
                .mark("edit-box")
            )
            with ui.row().classes("justify-end gap-1 w-full"):

                def cancel() -> None:
                    editor.delete()
                    view.label.set_visibility(True)
                    view.actions.set_visibility(True)

                async def save() -> None:
                    text = (box.value or "").strip()
                    if not text:
                        return
                    await self.stop()
                    if turn not in self.turns or not await self._ready():
                        return
                    index = self.turns.index(turn)
                    for later in self.turns[index:]:
                        later.delete()
                    del self.turns[index:]
                    self._start_turn(text, turn.images)

                ui.button(t("chat.cancel"), on_click=cancel).props("flat dense no-caps").mark("edit-cancel")
                ui.button(t("chat.save_and_send"), on_click=save).props("unelevated dense no-caps").mark(
                    "edit-save"
                )
        box.run_method("focus")

    def export_markdown(self) -> str:
        """The conversation as Markdown: each message under its speaker, answers as they were written."""
        lines = [f"# {t('chat.export_title')} · pyaichat", ""]
        model = self.model_select.value
        for turn in self.turns:
            lines += [f"## {t('chat.export_user')}", "", turn.text, ""]
            answer = turn.answer
            if answer is not None and answer.content:
                lines += [f"## {t('chat.export_assistant')} ({model})", "", answer.content, ""]
                if answer.note:
                    lines += [f"*{answer.note}*", ""]
        return "\n".join(lines)

    def export(self) -> None:
        if not self.turns:
            ui.notify(t("chat.nothing_to_export"), type="info")
            return
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        ui.download.content(
            self.export_markdown().encode("utf-8"), f"pyaichat-{stamp}.md", media_type="text/markdown"
        )


async def _models(state: AppState) -> dict[str, str]:
    """Model id → name; off the loop, as the channel directory reads the database after a change."""
    return dict(await off_loop(state.chat.model_names))


def register(state: AppState) -> None:
    @ui.page("/", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS, reconnect_timeout=RECONNECT_SECONDS)
    async def chat_page(request: Request) -> None:
        user = await current_user(state)
        caller = Caller(
            ip=client_ip(request.scope),
            user_id=user.id if user else None,
            username=user.email if user else None,
            path="/",
            rpm_limit=user.rpm_limit if user else None,
            credential=user.credential if user else None,
        )
        sign_in_required = user is None and not (await rules_now(state)).guest_enabled
        models = {} if sign_in_required else await _models(state)
        base_url = str(request.base_url).rstrip("/") + "/v1"
        page = ChatPage(state, caller, models, user, base_url, sign_in_required=sign_in_required)
        page.build(user.email if user else None)
        client = ui.context.client
        client.on_disconnect(page.disconnected)  # closing or refreshing the tab ends the upstream request
