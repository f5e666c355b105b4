"""The chat page's account menu dialogs: change password and API keys (personal keys: list, create — the key
shown once with a copy button and the ready base URL — and revoke). The rules are the services'
(``services.login.change_password``, ``services.api_keys``); database work runs off the event loop."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nicegui import ui
from sqlmodel import Session

from app.models import ApiKey, utcnow
from app.state import AppState
from pages.forms import FormError
from pages.i18n import language, named_dialog, t
from pages.session import sign_in
from pages.threads import off_loop
from services import api_keys
from services import login as login_flow
from services.errors import DomainError, NotFound
from services.identity import Identity

EXPIRY_CHOICES = {
    0: "account.never_expires",
    7: "account.days_7",
    30: "account.days_30",
    90: "account.days_90",
    365: "account.year_1",
}
_FIELD_PREFIX = re.compile(r"^[a-z_]+(?:\uff1a|: )")


def _message(error: DomainError) -> str:
    """The error's message in the visitor's language, without the API's field name (``name: …``)."""
    return _FIELD_PREFIX.sub("", error.text(language()), count=1)


# ---- password -----------------------------------------------------------------------------------------
def open_password_dialog(state: AppState, user: Identity, ip: str) -> ui.dialog:
    title = t("account.change_password")
    with named_dialog(title) as dialog, ui.card().style("min-width: 340px").mark("password-dialog"):
        ui.label(title).classes("text-lg font-semibold")
        ui.label(t("account.password_note")).classes("text-sm text-gray-500")
        old = (
            ui.input(t("account.old_password"), password=True)
            .props("outlined dense")
            .classes("w-full")
            .mark("old-password")
        )
        new = (
            ui.input(t("account.new_password"), password=True, password_toggle_button=True)
            .props("outlined dense")
            .classes("w-full")
            .mark("new-password")
        )
        again = (
            ui.input(t("account.confirm_new_password"), password=True)
            .props("outlined dense")
            .classes("w-full")
            .mark("confirm-password")
        )
        error = FormError("password-error")

        async def submit() -> None:
            error.clear()
            if (new.value or "") != (again.value or ""):
                error.say(t("account.passwords_differ"))
                return
            button.disable()
            try:
                token = await login_flow.change_password(
                    engine=state.engine,
                    throttle=state.throttle,
                    identity=state.identity,
                    user_id=user.id,
                    email=user.email,
                    old_password=old.value or "",
                    new_password=new.value or "",
                    ip=ip,
                    secret=state.secret_key,
                    lifetime=timedelta(hours=state.settings.user_token_hours),
                )
            except DomainError as exc:
                error.say(_message(exc))
                return
            finally:
                button.enable()
            sign_in(state, token)
            dialog.close()
            ui.notify(t("account.password_changed"), type="positive")

        with ui.row().classes("w-full justify-end"):
            ui.button(t("account.cancel"), on_click=dialog.close).props("flat")
            button = (
                ui.button(t("account.confirm_change"), on_click=submit)
                .props("unelevated")
                .mark("password-submit")
            )
    dialog.open()
    return dialog


# ---- personal API keys --------------------------------------------------------------------------------
def _when(moment: datetime | None, zone: ZoneInfo, never: str = "—") -> str:
    if moment is None:
        return never
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _list(state: AppState, user_id: int) -> list[ApiKey]:
    with Session(state.engine, expire_on_commit=False) as session:
        return api_keys.list_keys(session=session, user_id=user_id)


def _create(state: AppState, user_id: int, name: str, days: int) -> tuple[ApiKey, str]:
    expires_at = utcnow() + timedelta(days=days) if days else None
    with Session(state.engine, expire_on_commit=False) as session:
        row, plain = api_keys.create_key(session=session, user_id=user_id, name=name, expires_at=expires_at)
    state.identity.keys_changed()
    return row, plain


def _revoke(state: AppState, user_id: int, key_id: int) -> None:
    with Session(state.engine) as session:
        if not api_keys.revoke_key(session=session, key_id=key_id, user_id=user_id):
            raise NotFound("errors.key_not_found")
    state.identity.keys_changed()


class KeysDialog:
    """The list of one's keys, a create form, and the one-time display of a new key."""

    def __init__(self, state: AppState, user: Identity, base_url: str) -> None:
        self.state = state
        self.user = user
        self.base_url = base_url
        self.zone = state.settings.zone

    async def open(self) -> None:
        with (
            named_dialog(t("account.api_keys")) as self.dialog,
            ui.card().style("min-width: min(640px, 95vw)").mark("keys-dialog"),
        ):
            with ui.row().classes("w-full items-center"):
                ui.label(t("account.api_keys")).classes("text-lg font-semibold")
                ui.space()
                ui.button(icon="close", on_click=self.dialog.close).props(
                    f'flat round dense aria-label="{t("account.close")}"'
                )
            ui.label(t("account.keys_intro", base_url=self.base_url)).classes("text-sm text-gray-500")
            self.created = ui.column().classes("w-full")
            with ui.row().classes("w-full items-end gap-2 no-wrap"):
                self.name = (
                    ui.input(t("account.key_name"), placeholder=t("account.key_name_example"))
                    .props("outlined dense maxlength=100")
                    .classes("grow")
                    .mark("key-name")
                )
                self.expiry = (
                    ui.select(
                        {days: t(key) for days, key in EXPIRY_CHOICES.items()},
                        value=0,
                        label=t("account.expiry"),
                    )
                    .props("outlined dense")
                    .style("min-width: 120px")
                    .mark("key-expiry")
                )
                ui.button(t("account.create_key"), on_click=self.create).props("unelevated no-caps").mark(
                    "key-create"
                )
            self.error = FormError("key-error")
            self.table = ui.column().classes("w-full gap-1").mark("key-list")
        self.dialog.open()
        await self.refresh()

    async def refresh(self) -> None:
        keys = await off_loop(_list, self.state, self.user.id)
        self.table.clear()
        with self.table:
            if not keys:
                ui.label(t("account.no_keys")).classes("text-gray-500 text-sm").mark("key-empty")
            for key in keys:
                self._row(key)

    def _row(self, key: ApiKey) -> None:
        ends = key.expires_at
        expired = ends is not None and (ends if ends.tzinfo else ends.replace(tzinfo=UTC)) <= utcnow()
        with ui.row().classes("w-full items-center no-wrap gap-3").mark(f"key-row-{key.id}"):
            with ui.column().classes("grow gap-0"):
                ui.label(key.name).classes("font-medium")
                ui.label(f"{key.prefix}…").classes("text-xs text-gray-500 font-mono")
            with ui.column().classes("gap-0 text-xs text-gray-500"):
                ui.label(t("account.created_at", when=_when(key.created_at, self.zone)))
                ui.label(t("account.last_used", when=_when(key.last_used_at, self.zone, t("account.never"))))
                expiry = _when(key.expires_at, self.zone, t("account.never_expires"))
                ui.label(t("account.expired_at" if expired else "account.expires_at", when=expiry))
            assert key.id is not None
            ui.button(icon="delete", on_click=self._confirm_revoke(key.id, key.name)).props(
                f'flat round dense color=negative aria-label="{t("account.revoke")}"'
            ).tooltip(t("account.revoke")).mark(f"key-revoke-{key.id}")

    def _confirm_revoke(self, key_id: int, name: str) -> Callable[[], None]:
        def ask() -> None:
            title = t("account.revoke_question", name=name)
            with named_dialog(title) as confirm, ui.card().mark("revoke-dialog"):
                ui.label(title).classes("font-semibold")
                ui.label(t("account.revoke_note")).classes("text-sm text-gray-500")

                async def revoke() -> None:
                    confirm.close()
                    try:
                        await off_loop(_revoke, self.state, self.user.id, key_id)
                    except DomainError as exc:
                        ui.notify(exc.text(language()), type="warning")
                    else:
                        ui.notify(t("account.revoked"), type="positive")
                    await self.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(t("account.cancel"), on_click=confirm.close).props("flat")
                    ui.button(t("account.revoke"), on_click=revoke).props("unelevated color=negative").mark(
                        "revoke-confirm"
                    )
            confirm.open()

        return ask

    async def create(self) -> None:
        self.error.clear()
        try:
            row, plain = await off_loop(
                _create, self.state, self.user.id, self.name.value or "", int(self.expiry.value or 0)
            )
        except DomainError as exc:
            self.error.say(_message(exc))
            return
        self.name.value = ""
        self.created.clear()
        with self.created, ui.card().classes("w-full bg-green-50").props("flat bordered").mark("key-created"):
            ui.label(t("account.key_created", name=row.name)).classes("text-sm")
            self._copyable(plain, "new-key", t("account.copy_key"))
            self._copyable(self.base_url, "base-url", t("account.copy_base_url"))
        await self.refresh()

    @staticmethod
    def _copyable(text: str, mark: str, tip: str) -> None:
        with ui.row().classes("w-full items-center no-wrap gap-1"):
            ui.input(value=text).props("outlined dense readonly").classes("grow font-mono").mark(mark)

            def copy() -> None:
                ui.clipboard.write(text)
                ui.notify(t("account.copied"), type="positive")

            ui.button(icon="content_copy", on_click=copy).props(
                f'flat round dense aria-label="{tip}"'
            ).tooltip(tip).mark(f"{mark}-copy")
