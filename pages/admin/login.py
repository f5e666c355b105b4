"""``/admin`` and ``/admin/login``: the admin sign-in (username + password, a 24-hour session)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from nicegui import ui

from app.state import AppState
from app.static_assets import module_url
from pages.admin.frame import current_admin
from pages.forms import FormError
from pages.i18n import language_switch, t
from pages.session import ADMIN_TOKEN_KEY, keep_token
from pages.theme import apply_theme, dark_mode_button
from pages.threads import PAGE_BUILD_SECONDS
from services import login as login_flow
from services.client_ip import client_ip
from services.errors import AuthenticationFailed, InvalidInput


def register(state: AppState) -> None:
    @ui.page("/admin", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def admin_root() -> None:
        ui.navigate.to("/admin/dashboard" if await current_admin(state) else "/admin/login")

    @ui.page("/admin/login", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def admin_login(request: Request) -> None:
        ui.page_title(t("auth.admin_title"))
        if await current_admin(state) is not None:
            ui.navigate.to("/admin/dashboard")
            return
        dark = apply_theme()

        def warm_up_charts() -> None:
            """Once the form is up, fetches the dashboard's plotly.js (0.96 MB compressed, 4.6 MB of script)
            and runs it here, in a chart that is never shown: the browser then has its compiled code, and
            the dashboard's first visit took 390–612 ms instead of 1,159–1,736 (docs/performance.md,
            session 12; either step alone gained little). The run holds this page's main thread for about
            0.8 s on a desktop, after the form has shown (keys typed meanwhile are kept); a phone's takes
            several times that, so phones and data savers are spared it (:func:`warm_up_wanted`)."""
            ui.element("link").props(f'rel=modulepreload href="{module_url("nicegui-plotly")}"')
            # not responsive: resizing a chart that is not displayed is an error in plotly.js
            warm_up = {"data": [], "layout": {}, "config": {"responsive": False}}
            ui.plotly(warm_up).classes("hidden").mark("charts-warm-up")

        if warm_up_wanted(request.headers):
            ui.timer(0, warm_up_charts, once=True)
        with ui.row().classes("w-full items-center p-3"):
            ui.link(t("auth.back_to_chat"), "/").classes("text-sm no-underline text-primary").mark(
                "back-to-chat"
            )
            ui.space()
            language_switch()
            dark_mode_button(dark)
        with (
            ui.column().classes("w-full items-center").style("margin-top: 8vh"),
            ui.card().classes("auth-card gap-3"),
        ):
            with ui.row().classes("items-center gap-2"):
                ui.icon("admin_panel_settings", size="30px", color="primary")
                ui.label(t("auth.admin_sign_in")).classes("text-xl font-semibold")
            username = (
                ui.input(t("auth.username"))
                .props("outlined autocomplete=username")
                .classes("w-full")
                .mark("username")
            )
            password = (
                ui.input(t("auth.password"), password=True, password_toggle_button=True)
                .props("outlined autocomplete=current-password")
                .classes("w-full")
                .mark("password")
            )
            error = FormError("form-error")

            async def sign_in() -> None:
                _admin, token = await login_flow.sign_in_admin(
                    engine=state.engine,
                    throttle=state.throttle,
                    username=username.value.strip(),
                    password=password.value,
                    ip=client_ip(request.scope),
                    secret=state.secret_key,
                )
                keep_token(state, ADMIN_TOKEN_KEY, token)

            async def submit() -> None:
                if not username.value or not password.value:
                    error.say(t("auth.need_both"))
                elif await error.attempt(sign_in, inline=(AuthenticationFailed, InvalidInput), button=button):
                    ui.navigate.to("/admin/dashboard")

            password.on("keydown.enter", submit)
            button = (
                ui.button(t("auth.sign_in"), on_click=submit)
                .props("unelevated")
                .classes("w-full")
                .mark("submit")
            )


def warm_up_wanted(headers: Mapping[str, str]) -> bool:
    """Whether the sign-in page should run the dashboard's plotly.js ahead: not for a data saver
    (``Save-Data: on``) nor a phone (``Mobi`` in the user agent, the usual test for one), where running
    4.6 MB of script would freeze the form for seconds."""
    if headers.get("save-data", "").strip().lower() == "on":
        return False
    return "mobi" not in headers.get("user-agent", "").lower()
