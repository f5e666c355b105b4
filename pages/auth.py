"""``/login`` and ``/register``: email + password with the same rules and messages as the API.

The two forms are built by :func:`sign_in_form` and :func:`register_form`, which the pages and the chat
page's sign-in dialog (:func:`open_sign_in_dialog`) share: one set of rules, messages and markers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from nicegui import ui

from app.state import AppState
from pages.forms import FormError
from pages.i18n import language, language_switch, named_dialog, t
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
    InvalidInput,
    RegistrationClosed,
)

SignedIn = Callable[[], Awaitable[None]]  # what follows a successful sign-in (or registration)
# the way to the other form: a page's address (a link), or a handler (in the dialog, which stays open)
Switch = str | Callable[[], Any]


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
            _heading(title, subtitle)
    return card


def _heading(title: str, subtitle: str) -> None:
    ui.label(title).classes("text-xl font-semibold")
    ui.label(subtitle).classes("text-gray-500 text-sm")


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


def _switch(prompt_key: str, label_key: str, switch: Switch, marker: str) -> None:
    with ui.row().classes("w-full justify-center items-center text-sm gap-1"):
        ui.label(t(prompt_key))
        if isinstance(switch, str):
            ui.link(t(label_key), switch).mark(marker)
        else:
            ui.button(t(label_key), on_click=switch).props("flat dense no-caps padding=0").mark(marker)


def _submit_button(text: str, submit: Callable[[], Awaitable[None]]) -> ui.button:
    return ui.button(text, on_click=submit).props("unelevated").classes("w-full").mark("submit")


async def _sign_in(state: AppState, ip: str, email: str, password: str) -> None:
    """Checks the password (the service's throttle and rules) and keeps the login in the session."""
    _user, token = await login_flow.sign_in_user(
        engine=state.engine,
        throttle=state.throttle,
        email=email,
        password=password,
        ip=ip,
        secret=state.secret_key,
        lifetime=timedelta(hours=state.settings.user_token_hours),
    )
    sign_in(state, token)


async def sign_in_form(state: AppState, ip: str, *, signed_in: SignedIn, to_register: Switch) -> None:
    """Email + password; a wrong password or a disabled account is said under the form, other refusals
    (too many attempts, …) in the error dialog."""
    email, password = _credential_inputs()
    error = FormError("form-error")

    async def submit() -> None:
        error.clear()
        if not (email.validate() & password.validate()):
            return
        if await error.attempt(
            lambda: _sign_in(state, ip, email.value, password.value),
            inline=(AuthenticationFailed, AccountDisabled),
            button=button,
        ):
            await signed_in()

    password.on("keydown.enter", submit)
    button = _submit_button(t("auth.sign_in"), submit)
    if (await rules_now(state)).registration_enabled:
        _switch("auth.no_account", "auth.register", to_register, "to-register")


async def register_form(state: AppState, ip: str, *, signed_in: SignedIn, to_sign_in: Switch) -> None:
    """Email, password and its confirmation; registers and signs in. While registration is closed, says so."""
    if not (await rules_now(state)).registration_enabled:
        ui.label(t(RegistrationClosed.default_key)).classes("text-gray-600").mark("registration-closed")
        _switch("auth.have_account", "auth.sign_in", to_sign_in, "to-login")
        return
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
    error = FormError("form-error")

    async def register_and_sign_in() -> None:
        await login_flow.register_user(
            engine=state.engine,
            throttle=state.throttle,
            email=email.value,
            password=password.value,
            ip=ip,
            rules=await state.system_settings.for_decision(),
        )
        await _sign_in(state, ip, email.value, password.value)

    async def submit() -> None:
        error.clear()
        if not (email.validate() & password.validate() & confirm.validate()):
            return
        if await error.attempt(
            register_and_sign_in, inline=(Conflict, InvalidInput, RegistrationClosed), button=button
        ):
            ui.notify(t("auth.registered"), type="positive")
            await signed_in()

    confirm.on("keydown.enter", submit)
    button = _submit_button(t("auth.register"), submit)
    _switch("auth.have_account", "auth.sign_in", to_sign_in, "to-login")


async def open_sign_in_dialog(
    state: AppState, ip: str, *, signed_in: SignedIn, register: bool = False
) -> None:
    """The sign-in form in a dialog over the page (which stays as it is), with the registration form a
    click away in the same dialog; ``signed_in`` runs once the login is kept in the session. Returns when
    the dialog has closed (signed in or dismissed)."""
    with (
        named_dialog(t("chat.sign_in")) as dialog,
        ui.card().classes("auth-card gap-3").mark("sign-in-dialog"),
    ):
        body = ui.column().classes("w-full gap-3")

    async def done() -> None:
        dialog.submit(True)
        await signed_in()

    async def show(registering: bool) -> None:
        body.clear()
        with body:
            if registering:
                _heading(t("auth.register"), t("auth.register_subtitle"))
                await register_form(state, ip, signed_in=done, to_sign_in=lambda: show(False))
            else:
                _heading(t("auth.sign_in"), t("auth.login_subtitle"))
                await sign_in_form(state, ip, signed_in=done, to_register=lambda: show(True))

    await show(register)
    await dialog
    dialog.delete()


def register(state: AppState) -> None:
    async def to_chat() -> None:
        ui.navigate.to("/")

    @ui.page("/login", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def login_page(request: Request) -> None:
        ui.page_title(t("auth.login_title"))
        if await current_user(state) is not None:
            ui.navigate.to("/")
            return
        with _frame(t("auth.sign_in"), t("auth.login_subtitle")):
            await sign_in_form(state, client_ip(request.scope), signed_in=to_chat, to_register="/register")

    @ui.page("/register", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def register_page(request: Request) -> None:
        ui.page_title(t("auth.register_title"))
        if await current_user(state) is not None:
            ui.navigate.to("/")
            return
        open_ = (await rules_now(state)).registration_enabled
        subtitle = t("auth.register_subtitle" if open_ else "auth.register_closed")
        with _frame(t("auth.register"), subtitle):
            await register_form(state, client_ip(request.scope), signed_in=to_chat, to_sign_in="/login")
