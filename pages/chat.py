"""``/``: the chat page. History lives only in this page (a refresh starts empty); every call goes
through ``services.chat`` so limits, IP blocks and logs are the same as for the API.

:class:`ChatPage` holds the page: its layout (header with the model picker and tools, the conversation,
the composer), the conversation's turns (``pages/turns.py``) and sending a message. Its other parts have
modules of their own: the answer being written (``pages/answering.py``), the actions under each message
and the Markdown export (``pages/turn_actions.py``), and the account menu with signing in and out
(``pages/chat_account.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from nicegui import app, events, ui

from app.state import AppState
from pages.answering import Answering
from pages.attachments import Attached, Attachments, show_in_message
from pages.chat_account import ChatAccount
from pages.chat_settings import ConversationSettings
from pages.follow import Follower
from pages.i18n import language_switch, named, t
from pages.message_view import UserView
from pages.restart_notice import HOOK_SCRIPT as RESTART_HOOK
from pages.restart_notice import restart_notice
from pages.session import current_user, rules_now
from pages.theme import apply_theme, dark_mode_button
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from pages.turn_actions import TurnActions
from pages.turns import Turn, upstream_messages
from services.call_log import Caller
from services.client_ip import client_ip
from services.i18n import translate
from services.identity import Identity
from services.images import has_images

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
        self.models = models
        # conversation settings and image attachments (pages/chat_settings.py, pages/attachments.py)
        self.conversation = ConversationSettings(state.model_settings, lambda: self.model_select.value)
        self.attachments = Attachments()
        self.answering = Answering(self)  # the answer being written, and stopping it
        self.actions = TurnActions(self)
        self.account = ChatAccount(self)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The messages as they go upstream: every turn with the answer version on screen."""
        return upstream_messages(self.turns)

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
                    named(
                        ui.button(icon="download", on_click=self.actions.export).props("flat round dense"),
                        "chat.export",
                    ).mark("export")
                    named(
                        ui.button(icon="add_comment", on_click=self.new_chat).props("flat round dense"),
                        "chat.new_chat",
                    ).mark("new-chat")
                language_switch()
                dark_mode_button(dark)
                self.account_slot = ui.row().classes("items-center no-wrap")
                self.account.menu(email)
            with ui.scroll_area(on_scroll=self._on_scroll).classes(
                "w-full grow chat-scroller"
            ) as self.scroller:
                self.column = ui.column().classes("chat-column")
            self.follower = Follower()
            self.empty_state()
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
            self.set_busy(False)
        self.attachments.accept_drops(composer, self.input)

    def set_busy(self, busy: bool) -> None:
        self.send_button.props(f"icon={'stop' if busy else 'arrow_upward'}")
        self.send_button.props(f"color={'negative' if busy else 'primary'}")
        name = t("chat.stop" if busy else "chat.send")
        self.send_button.props(f'aria-label="{name}"')
        self._send_tip.text = name

    def empty_state(self) -> None:
        with self.column, ui.column().classes("empty-state items-center gap-3") as self.empty:
            if self.sign_in_required:
                ui.icon("lock", size="40px", color="primary")
                ui.label(t("chat.sign_in_first")).classes("text-xl font-medium")
                ui.label(t("chat.guests_closed")).classes("caption").mark("sign-in-required")
                ui.button(t("chat.sign_in"), icon="login", on_click=self.account.open_sign_in).props(
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

    def follow(self) -> None:
        if self.follower.follow():
            self.scroller.scroll_to(pixels=BOTTOM)

    async def _on_key(self, event: events.KeyEventArguments) -> None:
        """Esc stops the answer being written."""
        if event.key.escape and event.action.keydown and self.answering.busy:
            await self.answering.stop()

    # ---- sending -----------------------------------------------------------------------------------
    async def _send_or_stop(self) -> None:
        if self.answering.busy:
            await self.answering.stop()
        else:
            await self.send()

    async def send(self) -> None:
        text = (self.input.value or "").strip()
        if not (text or self.attachments.images) or self.answering.busy:
            return
        if not await self.ready():
            return
        self.input.value = ""
        self.start_turn(text, self.attachments.take())

    async def ready(self) -> bool:
        model = self.model_select.value
        if not model:
            ui.notify(t("chat.choose_model"), type="warning")
            return False
        refusal = self._settings_refusal(str(model))
        if refusal is not None:
            ui.notify(refusal, type="warning")
            return False
        return not (self.caller.user_id is not None and await self.account.signed_in() is None)

    def _settings_refusal(self, model: str) -> str | None:
        """Why a message cannot go (images for a model without vision, a setting out of range)."""
        if self.state.model_settings.get(model).vision:
            return self.conversation.problem()
        if self.attachments.images:
            return t("convo.no_vision", model=model)
        if has_images(self.history):  # sent earlier, and sent again with every message
            return t("convo.no_vision_history", model=model)
        return self.conversation.problem()

    def start_turn(self, text: str, images: list[Attached]) -> None:
        self.empty.set_visibility(False)
        with self.column:  # (called from handlers whose own element may be gone: an edited message's)
            view = UserView(text)
            show_in_message(view.row, images)
            turn = Turn(text, view, images=images)
            self.turns.append(turn)
            self.actions.user_actions(turn)
            self.answering.ask(turn)

    async def new_chat(self) -> None:
        await self.answering.stop()
        self.turns.clear()
        self.column.clear()
        self.empty_state()
        self.input.value = ""

    async def refresh_models(self) -> None:
        self.models = await _models(self.state)
        self.model_select.set_options(self.models, value=self._initial_model())


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
        client.on_disconnect(
            page.answering.disconnected
        )  # closing or refreshing the tab ends the upstream request
