"""``/admin/users``: the users (search by e-mail, pages and order on the server), disable / enable,
temporary password, own RPM, delete, create. Every change goes through ``state.users``
(``services.users.UserAdmin``), as the REST API's do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame, page_actor
from pages.admin.widgets import page_heading
from pages.forms import FormError
from pages.i18n import language, named_dialog, t
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import users
from services.audit import Actor
from services.errors import DomainError
from services.users import UserPage, UserRow

PAGE_SIZE = 20
SORT_LABELS = {  # sort → its label's key
    "-created": "admin.users.sort_created_desc",
    "created": "admin.users.sort_created_asc",
    "-last_active": "admin.users.sort_active_desc",
    "last_active": "admin.users.sort_active_asc",
}
COLUMNS = "minmax(200px,2fr) 140px 140px 90px minmax(110px,1fr) 150px"
Reload = Callable[[], Awaitable[None]]


@dataclass
class Query:
    q: str = ""
    sort: str = users.DEFAULT_SORT
    page: int = 1


def _when(moment: datetime | None, zone: Any) -> str:
    return "—" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def _password_field(label: str) -> ui.input:
    """A password input with a button that fills in a fresh temporary password and one that copies it."""
    field = ui.input(label, value=users.new_temporary_password()).props("outlined").classes("w-full")
    with field.add_slot("append"):
        ui.button(icon="casino", on_click=lambda: field.set_value(users.new_temporary_password())).props(
            f'flat round dense aria-label="{t("admin.users.regenerate")}"'
        ).tooltip(t("admin.users.regenerate"))
        ui.button(icon="content_copy", on_click=lambda: _copy(field.value or "")).props(
            f'flat round dense aria-label="{t("admin.copy")}"'
        ).tooltip(t("admin.copy")).mark("user-copy-password")
    return field


def _copy(text: str) -> None:
    ui.clipboard.write(text)
    ui.notify(t("admin.copied"))


class UsersPage:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.zone = state.settings.zone
        self.query = Query()

    # ---- work on a worker thread -------------------------------------------------------------------
    def _fetch(self, query: Query) -> UserPage:
        with Session(self.state.engine) as session:
            return users.list_users(
                session=session, q=query.q, page=query.page, page_size=PAGE_SIZE, sort=query.sort
            )

    def _change(self, action: str, actor: Actor, **values: Any) -> None:
        with Session(self.state.engine) as session:
            getattr(self.state.users, action)(session=session, actor=actor, **values)

    async def _apply(self, action: str, done: str, **values: Any) -> bool:
        """Runs a change (audited under the admin, checked again); a refusal (the user deleted meanwhile,
        a bad value) is shown, not raised."""
        if (actor := await page_actor(self.state)) is None:
            return False
        try:
            await off_loop(self._change, action, actor, **values)
        except DomainError as exc:
            ui.notify(exc.text(language()), type="negative")
            await self.load()
            return False
        ui.notify(done, type="positive")
        return True

    # ---- layout ------------------------------------------------------------------------------------
    async def build(self) -> None:
        with page_heading("users"):
            ui.space()
            ui.button(t("admin.users.create"), icon="person_add", on_click=self.open_create).props(
                "unelevated"
            ).mark("users-add")
        with ui.card().classes("w-full"), ui.row().classes("w-full items-end gap-3"):
            self.search = (
                ui.input(t("admin.users.search_label"), placeholder=t("admin.users.search_hint"))
                .props("dense outlined clearable")
                .classes("min-w-[260px]")
                .mark("users-search")
            )
            self.search.on("keydown.enter", self.apply_search)
            self.search.on("clear", self.apply_search)
            ui.button(t("admin.search"), icon="search", on_click=self.apply_search).props("unelevated").mark(
                "users-search-apply"
            )
            ui.space()
            self.sort = (
                ui.select(
                    {sort: t(key) for sort, key in SORT_LABELS.items()},
                    value=self.query.sort,
                    label=t("admin.users.sort"),
                    on_change=self.apply_sort,
                )
                .props("dense outlined")
                .classes("min-w-[190px]")
                .mark("users-sort")
            )
        self.summary = ui.label("").classes("text-sm text-gray-500").mark("users-summary")
        self.table_slot = ui.column().classes("w-full gap-0")
        self.pager = (
            ui.pagination(1, 1, direction_links=True, on_change=lambda e: self.load(e.value))
            .props("max-pages=7 boundary-numbers")
            .mark("users-pager")
        )
        await self.load()

    async def load(self, page: int | None = None) -> None:
        if page is not None:
            self.query.page = page
        result = await off_loop(self._fetch, self.query)
        pages = max(1, -(-result.total // PAGE_SIZE))
        if result.page > pages and result.total:  # the last page emptied (a delete): show the one before
            await self.load(pages)
            return
        self.pager.max = pages
        self.pager.set_value(result.page)
        found = t("admin.users.found" if self.query.q else "admin.users.total", count=f"{result.total:,}")
        self.summary.text = t("admin.page_of", found=found, page=result.page, pages=pages)
        self.table_slot.clear()
        with self.table_slot:
            self._table(result.items)

    async def apply_search(self) -> None:
        self.query.q = (self.search.value or "").strip()
        await self.load(1)

    async def apply_sort(self) -> None:
        self.query.sort = self.sort.value or users.DEFAULT_SORT
        await self.load(1)

    def _table(self, rows: list[UserRow]) -> None:
        if not rows:
            with ui.card().classes("w-full items-center p-8 text-gray-500"):
                ui.icon("group", size="40px")
                ui.label(t("admin.users.no_match" if self.query.q else "admin.users.none")).mark(
                    "users-empty"
                )
            return
        with (
            ui.card().classes("w-full p-0 overflow-x-auto"),
            ui.grid()
            .style(f"grid-template-columns: {COLUMNS}")
            .classes("w-full min-w-[860px] gap-0 items-center text-sm"),
        ):
            for title in ("email", "created", "last_active", "enabled", "rpm", "actions"):
                ui.label(t(f"admin.users.col.{title}")).classes(
                    "px-3 py-2 font-medium text-gray-500 border-b"
                )
            for row in rows:
                self._row(row)

    def _row(self, row: UserRow) -> None:
        email = ui.label(row.email).classes("px-3 py-2 font-medium break-all").mark("user-row-email")
        if row.disabled:
            email.classes("text-gray-500 line-through")
        ui.label(_when(row.created_at, self.zone)).classes("px-3 py-2 text-gray-500")
        ui.label(_when(row.last_active_at, self.zone)).classes("px-3 py-2 text-gray-500")
        with ui.element("div").classes("px-2"):
            ui.switch(value=not row.disabled, on_change=lambda e, r=row: self.set_enabled(r, e.value)).props(
                f'aria-label="{t("admin.users.enabled_of", email=row.email)}"'
            ).mark("user-toggle").tooltip(t("admin.users.disable_tip"))
        rpm = t("admin.users.global") if row.rpm_limit is None else str(row.rpm_limit)
        ui.button(rpm, on_click=lambda r=row: self.open_rpm(r)).props("flat dense no-caps").classes(
            "mx-2"
        ).tooltip(t("admin.users.rpm_tip")).mark("user-rpm")
        with ui.row().classes("px-2 gap-0 no-wrap"):
            ui.button(icon="password", on_click=lambda r=row: self.open_password(r)).props(
                f'flat round dense aria-label="{t("admin.users.reset_password")}"'
            ).tooltip(t("admin.users.reset_password")).mark("user-password")
            ui.button(icon="delete", on_click=lambda r=row: self.confirm_delete(r)).props(
                f'flat round dense color=negative aria-label="{t("admin.delete")}"'
            ).tooltip(t("admin.delete")).mark("user-delete")

    # ---- actions -----------------------------------------------------------------------------------
    async def set_enabled(self, row: UserRow, enabled: bool) -> None:
        if enabled == (not row.disabled):
            return
        if await self._apply(
            "update",
            t("admin.users.now_enabled" if enabled else "admin.users.now_disabled", email=row.email),
            user_id=row.id,
            disabled=not enabled,
        ):
            await self.load()

    def open_rpm(self, row: UserRow) -> None:
        title = t("admin.users.rpm_of", email=row.email)
        with named_dialog(title) as dialog, ui.card().classes("w-[min(420px,94vw)] gap-2"):
            ui.label(title).classes("text-lg font-semibold")
            field = (
                ui.number(
                    t("admin.users.rpm_label"),
                    value=row.rpm_limit,
                    min=users.MIN_RPM,
                    max=users.MAX_RPM,
                    precision=0,
                    format="%d",
                )
                .props("outlined clearable")
                .classes("w-full")
                .mark("user-rpm-input")
            )
            error = FormError("user-rpm-error")

            async def save() -> None:
                value = field.value
                if value is not None and (int(value) != value or not users.MIN_RPM <= value <= users.MAX_RPM):
                    error.say(t("admin.users.rpm_range", low=users.MIN_RPM, high=users.MAX_RPM))
                    return
                rpm = None if value is None else int(value)
                if await self._apply("update", t("admin.saved"), user_id=row.id, rpm_limit=rpm):
                    dialog.delete()
                    await self.load()

            with ui.row().classes("w-full justify-end"):
                ui.button(t("admin.cancel"), on_click=dialog.delete).props("flat")
                ui.button(t("admin.save"), on_click=save).props("unelevated").mark("user-rpm-save")
        dialog.on("hide", dialog.delete)
        dialog.open()

    def open_password(self, row: UserRow) -> None:
        title = t("admin.users.reset_of", email=row.email)
        with named_dialog(title) as dialog, ui.card().classes("w-[min(460px,94vw)] gap-2") as card:
            ui.label(title).classes("text-lg font-semibold")
            ui.label(t("admin.users.reset_note")).classes("text-sm text-gray-500")
            field = _password_field(t("admin.users.temporary_password")).mark("user-new-password")
            error = FormError("user-password-error")

            async def save() -> None:
                password = field.value or ""
                error.clear()
                if (actor := await page_actor(self.state)) is None:
                    return
                if not await error.attempt(
                    lambda: off_loop(self._change, "set_password", actor, user_id=row.id, password=password)
                ):
                    return
                card.clear()
                with card:
                    ui.label(t("admin.users.password_set")).classes("text-lg font-semibold").mark(
                        "user-password-done"
                    )
                    ui.label(t("admin.users.tell", email=row.email)).classes("text-sm")
                    with ui.row().classes("items-center gap-2"):
                        ui.label(password).classes("font-mono text-base").mark("user-temporary-password")
                        ui.button(icon="content_copy", on_click=lambda: _copy(password)).props(
                            f'flat round dense aria-label="{t("admin.copy")}"'
                        ).tooltip(t("admin.copy"))
                    with ui.row().classes("w-full justify-end"):
                        ui.button(t("admin.done"), on_click=dialog.delete).props("unelevated").mark(
                            "user-password-close"
                        )

            with ui.row().classes("w-full justify-end"):
                ui.button(t("admin.cancel"), on_click=dialog.delete).props("flat")
                ui.button(t("admin.users.set_password"), on_click=save).props("unelevated").mark(
                    "user-password-save"
                )
        dialog.on("hide", dialog.delete)
        dialog.open()

    def confirm_delete(self, row: UserRow) -> None:
        title = t("admin.users.delete_question", email=row.email)
        with named_dialog(title) as dialog, ui.card():
            ui.label(title).classes("text-lg font-semibold")
            ui.label(t("admin.users.delete_note")).classes("text-gray-500")

            async def do_delete() -> None:
                deleted = await self._apply(
                    "delete", t("admin.users.deleted", email=row.email), user_id=row.id
                )
                dialog.delete()
                if deleted:
                    await self.load()

            with ui.row().classes("w-full justify-end"):
                ui.button(t("admin.cancel"), on_click=dialog.delete).props("flat")
                ui.button(t("admin.delete"), on_click=do_delete).props("unelevated color=negative").mark(
                    "user-confirm-delete"
                )
        dialog.on("hide", dialog.delete)
        dialog.open()

    def open_create(self) -> None:
        with named_dialog(t("admin.users.create")) as dialog, ui.card().classes("w-[min(460px,94vw)] gap-2"):
            ui.label(t("admin.users.create")).classes("text-lg font-semibold")
            ui.label(t("admin.users.create_note")).classes("text-sm text-gray-500")
            email = (
                ui.input(t("admin.users.email"))
                .props("outlined type=email")
                .classes("w-full")
                .mark("user-new-email")
            )
            password = _password_field(t("admin.users.initial_password")).mark("user-new-initial-password")
            error = FormError("user-create-error")

            async def create() -> None:
                error.clear()
                if (actor := await page_actor(self.state)) is None:
                    return
                if not await error.attempt(
                    lambda: off_loop(
                        self._change, "create", actor, email=email.value or "", password=password.value or ""
                    )
                ):
                    return
                ui.notify(t("admin.users.created", email=email.value), type="positive")
                dialog.delete()
                await self.load()

            with ui.row().classes("w-full justify-end"):
                ui.button(t("admin.cancel"), on_click=dialog.delete).props("flat")
                ui.button(t("admin.create"), on_click=create).props("unelevated").mark("user-create-save")
        dialog.on("hide", dialog.delete)
        dialog.open()


def register(state: AppState) -> None:
    @ui.page("/admin/users", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def users_page() -> None:
        async with admin_frame(state, "admin.nav.users", "/admin/users") as content:
            if content is None:
                return
            await UsersPage(state).build()
