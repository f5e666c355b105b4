"""The admin pages' frame: the session check, the left navigation and the header.

``async with admin_frame(state, title, path) as content:`` checks the admin's session on a worker thread
first (the page is sent once the page function returns), then builds the frame and yields its content
column, or None after sending anyone but the admin to the login page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nicegui import ui
from sqlmodel import Session

from app.models import Admin
from app.state import AppState
from pages.i18n import language_switch, t
from pages.session import ADMIN_TOKEN_KEY, forget_token, stored_token
from pages.theme import apply_theme, dark_mode_button
from pages.threads import off_loop
from services import auth
from services.audit import Actor
from services.client_ip import UNKNOWN, client_ip
from services.errors import AuthenticationFailed

NAVIGATION = [
    ("/admin/dashboard", "admin.nav.dashboard", "dashboard"),
    ("/admin/channels", "admin.nav.channels", "hub"),
    ("/admin/users", "admin.nav.users", "group"),
    ("/admin/logs", "admin.nav.logs", "receipt_long"),
    ("/admin/ip", "admin.nav.ip", "shield"),
    ("/admin/settings", "admin.nav.settings", "tune"),
    ("/admin/models", "models.nav", "smart_toy"),  # pages/admin/models.py
    ("/admin/audit", "admin.nav.audit", "fact_check"),
]
SESSION_CHECK_SECONDS = 60


def _admin_for_token(state: AppState, token: str) -> Admin:
    with Session(state.engine, expire_on_commit=False) as session:
        return auth.admin_from_token(session=session, token=token, secret=state.secret_key)


async def current_admin(state: AppState) -> Admin | None:
    """The signed-in admin (token sealed in the browser session, valid 24 h and while ADMIN_PASSWORD is
    unchanged; read on a worker thread), or None."""
    token = stored_token(state, ADMIN_TOKEN_KEY)
    if not token:
        return None
    try:
        return await off_loop(_admin_for_token, state, token)
    except AuthenticationFailed:  # expired, or ADMIN_PASSWORD changed since
        forget_token(ADMIN_TOKEN_KEY)
        return None


async def page_actor(state: AppState) -> Actor | None:
    """Who makes a change from an admin page, for its audit row: the admin, checked again (the session
    may have ended since the page was built), and the browser's address as the page's request had it.
    None, after sending the browser to the login page, when the admin is signed out."""
    admin = await current_admin(state)
    if admin is None:
        ui.navigate.to("/admin/login")
        return None
    request = ui.context.client.request
    return Actor(admin=admin.username, ip_address=client_ip(request.scope) if request else UNKNOWN)


def sign_out_admin() -> None:
    forget_token(ADMIN_TOKEN_KEY)
    ui.navigate.to("/admin/login")


def _header(admin: Admin, title: str, dark: ui.dark_mode) -> ui.button:
    """The header; returns its menu button (which opens the navigation on narrow screens)."""
    with ui.header().classes("admin-header items-center gap-2 shadow-sm no-wrap").props("bordered"):
        menu = (
            ui.button(icon="menu")
            .props(f'flat round dense aria-label="{t("admin.menu")}"')
            .classes("lg:hidden")
        )
        menu.mark("admin-menu")
        ui.icon("admin_panel_settings", size="26px", color="primary")
        ui.label(t("admin.header", title=title)).classes("text-lg font-semibold truncate min-w-0")
        ui.space()
        ui.button(icon="forum", on_click=lambda: ui.navigate.to("/")).props(
            f'flat round dense aria-label="{t("admin.to_chat")}"'
        ).tooltip(t("admin.to_chat_tip")).mark("to-chat")
        language_switch()
        dark_mode_button(dark)
        account = ui.button(icon="account_circle").props(
            f'flat round dense aria-label="{t("admin.account")}"'
        )
        with account.mark("admin-account"), ui.menu():
            ui.menu_item(admin.username).props("disable")
            ui.menu_item(t("admin.sign_out"), on_click=sign_out_admin).mark("admin-logout")
    return menu


def _navigation(path: str) -> ui.left_drawer:
    with (
        # Open from 1024 px up (Quasar's show-if-above, which reports the opening as a value change),
        # closed behind the "Menu" button below. Not NiceGUI's value=None: that asks the browser for the
        # state once connected, and an answer arriving after a quick tap on Menu closed the drawer again.
        ui.left_drawer(value=False)
        .props("bordered width=220 breakpoint=1024 show-if-above")
        .classes("admin-nav pt-4") as drawer,
        ui.list(),
    ):
        for target, label, icon in NAVIGATION:
            with (
                ui.item(on_click=lambda t=target: ui.navigate.to(t))
                .classes("active" if target == path else "")
                .mark(f"nav-{target.rsplit('/', 1)[-1]}")
            ):
                with ui.item_section().props("avatar"):
                    ui.icon(icon)
                ui.item_section(t(label))
    return drawer


def _session_check(state: AppState) -> None:
    async def check() -> None:  # the 24 h token may expire while the page stays open
        if await current_admin(state) is None:
            ui.navigate.to("/admin/login")

    # not immediate: the frame has just checked
    ui.timer(SESSION_CHECK_SECONDS, check, immediate=False).mark("session-check")


@asynccontextmanager
async def admin_frame(state: AppState, title: str, path: str) -> AsyncIterator[ui.column | None]:
    """``title``: the page's catalogue key. Yields the content column, or None (after redirecting to the
    login page) for anyone but the admin."""
    admin = await current_admin(state)
    if admin is None:
        ui.navigate.to("/admin/login")
        yield None
        return
    title = t(title)
    ui.page_title(t("admin.page_title", title=title))
    dark = apply_theme()
    ui.add_css(
        ".admin-nav .q-item { border-radius: 10px; margin: 2px 8px; } "
        ".admin-nav .active { background: rgba(79,70,229,.12); color: #4f46e5; font-weight: 600; } "
        ".body--dark .admin-nav .active { color: #c7d2fe; }"  # 4.5:1 or more on its tint in both themes
    )
    menu = _header(admin, title, dark)
    drawer = _navigation(path)
    menu.on_click(drawer.toggle)
    _session_check(state)
    with ui.column().classes("w-full max-w-6xl mx-auto p-4 gap-4") as content:
        yield content
