"""``/login`` and ``/register``: email + password with the same rules and messages as the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import Request
from nicegui import ui

from app.state import AppState
from pages.dialogs import show_error
from pages.i18n import language, language_switch, t
from pages.session import current_user, rules_now, sign_in
from pages.theme import apply_theme, dark_mode_button
from pages.threads import PAGE_BUILD_SECONDS
from services import login as login_flow
from services.auth import check_password_rules, normalize_email
from services.client_ip import client_ip
from services.errors import (
    AccountDisabled,
    AuthenticationFailed,
    Conflict,
    DomainError,
    InvalidInput,
    RateLimited,
    RegistrationClosed,
)


def _rule_message(check: Callable[[str], str], value: str) -> str | None:
    try:
        check(value)
    except InvalidInput as error:
        return error.text(language())
    return None


def _frame(title: str, subtitle: str) -> ui.card:
    dark = apply_theme()
    with ui.row().classes("w-full justify-end items-center gap-1 p-3"):
        language_switch()
        dark_mode_button(dark)
    with ui.column().classes("w-full items-center").style("margin-top: 6vh"):
        with ui.link(target="/").classes("no-underline"), ui.row().classes("items-center gap-2 mb-4"):
            ui.icon("forum", size="30px", color="primary")
            ui.label("pyaichat").classes("text-2xl font-bold text-primary")
        card = ui.card().classes("auth-card gap-3")
        with card:
            ui.label(title).classes("text-xl font-semibold")
            ui.label(subtitle).classes("text-gray-500 text-sm")
    return card


def _credential_inputs() -> tuple[ui.input, ui.input]:
    email = (
        ui.input(t("auth.email"), validation=lambda v: _rule_message(normalize_email, v or ""))
        .props("outlined autocomplete=email type=email")
        .classes("w-full")
        .mark("email")
    )
    email.without_auto_validation()
    password = (
        ui.input(
            t("auth.password"),
            password=True,
            password_toggle_button=True,
            validation=lambda v: _rule_message(check_password_rules, v or ""),
        )
        .props("outlined")
        .classes("w-full")
        .mark("password")
    )
    password.without_auto_validation()
    return email, password


def register(state: AppState) -> None:
    lifetime = timedelta(hours=state.settings.user_token_hours)

    async def _sign_in(request: Request, email: str, password: str) -> None:
        _user, token = await login_flow.sign_in_user(
            engine=state.engine,
            throttle=state.throttle,
            email=email,
            password=password,
            ip=client_ip(request.scope),
            secret=state.secret_key,
            lifetime=lifetime,
        )
        sign_in(state, token)

    @ui.page("/login", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def login_page(request: Request) -> None:
        ui.page_title(t("auth.login_title"))
        if await current_user(state) is not None:
            ui.navigate.to("/")
            return
        with _frame(t("auth.sign_in"), t("auth.login_subtitle")):
            email, password = _credential_inputs()
            error = ui.label("").classes("text-negative text-sm").mark("form-error")
            error.set_visibility(False)

            async def submit() -> None:
                error.set_visibility(False)
                if not (email.validate() & password.validate()):
                    return
                button.props("loading")
                try:
                    await _sign_in(request, email.value, password.value)
                except (AuthenticationFailed, AccountDisabled) as failure:  # said under the form
                    error.text = failure.text(language())
                    error.set_visibility(True)
                    return
                except RateLimited as failure:
                    show_error(failure)
                    return
                except DomainError as failure:
                    show_error(failure)
                    return
                finally:
                    button.props(remove="loading")
                ui.navigate.to("/")

            password.on("keydown.enter", submit)
            button = (
                ui.button(t("auth.sign_in"), on_click=submit)
                .props("unelevated")
                .classes("w-full")
                .mark("submit")
            )
            if (await rules_now(state)).registration_enabled:
                with ui.row().classes("w-full justify-center text-sm gap-1"):
                    ui.label(t("auth.no_account"))
                    ui.link(t("auth.register"), "/register").mark("to-register")

    @ui.page("/register", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def register_page(request: Request) -> None:
        ui.page_title(t("auth.register_title"))
        if await current_user(state) is not None:
            ui.navigate.to("/")
            return
        if not (await rules_now(state)).registration_enabled:
            with _frame(t("auth.register"), t("auth.register_closed")):
                ui.label(t(RegistrationClosed.default_key)).classes("text-gray-600").mark(
                    "registration-closed"
                )
                with ui.row().classes("w-full justify-center text-sm gap-1"):
                    ui.label(t("auth.have_account"))
                    ui.link(t("auth.sign_in"), "/login").mark("to-login")
            return
        with _frame(t("auth.register"), t("auth.register_subtitle")):
            email, password = _credential_inputs()
            confirm = (
                ui.input(
                    t("auth.confirm_password"),
                    password=True,
                    password_toggle_button=True,
                    validation=lambda v: None if v == password.value else t("auth.passwords_differ"),
                )
                .props("outlined")
                .classes("w-full")
                .mark("confirm")
            )
            confirm.without_auto_validation()
            error = ui.label("").classes("text-negative text-sm").mark("form-error")
            error.set_visibility(False)

            async def submit() -> None:
                error.set_visibility(False)
                if not (email.validate() & password.validate() & confirm.validate()):
                    return
                button.props("loading")
                try:
                    await login_flow.register_user(
                        engine=state.engine,
                        throttle=state.throttle,
                        email=email.value,
                        password=password.value,
                        ip=client_ip(request.scope),
                        rules=await state.system_settings.for_decision(),
                    )
                    await _sign_in(request, email.value, password.value)
                except (Conflict, InvalidInput, RegistrationClosed) as failure:
                    error.text = failure.text(language())
                    error.set_visibility(True)
                    return
                except DomainError as failure:
                    show_error(failure)
                    return
                finally:
                    button.props(remove="loading")
                ui.notify(t("auth.registered"), type="positive")
                ui.navigate.to("/")

            confirm.on("keydown.enter", submit)
            button = (
                ui.button(t("auth.register"), on_click=submit)
                .props("unelevated")
                .classes("w-full")
                .mark("submit")
            )
            with ui.row().classes("w-full justify-center text-sm gap-1"):
                ui.label(t("auth.have_account"))
                ui.link(t("auth.sign_in"), "/login").mark("to-login")
