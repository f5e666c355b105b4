"""The chat page's account: the header's account menu (API keys, password, sign out) or sign-in button,
and signing in and out in a dialog without leaving the page (the conversation, the draft and the model
stay as they are). The session holds the login (as after a reload); the page checks it again before a
call of the user's and adopts whatever login it holds now."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nicegui import background_tasks, ui

from pages.account import KeysDialog, open_password_dialog
from pages.auth import open_sign_in_dialog
from pages.i18n import named, t
from pages.session import current_user, rules_now, sign_out
from services.identity import Identity

if TYPE_CHECKING:
    from pages.chat import ChatPage


class ChatAccount:
    """Who ``page`` belongs to: a signed-in user, a guest, or nobody yet while guests are switched off."""

    def __init__(self, page: ChatPage) -> None:
        self.page = page

    def menu(self, email: str | None) -> None:
        """The header's account button (in the page's ``account_slot``), drawn again for ``email``."""
        slot = self.page.account_slot
        slot.clear()
        with slot:
            if email:
                with (
                    named(ui.button(icon="account_circle").props("flat round dense"), "chat.account").mark(
                        "account"
                    ),
                    ui.menu(),
                ):
                    ui.menu_item(email).props("disable").mark("account-email")
                    ui.menu_item(t("chat.api_keys"), on_click=self._open_keys).mark("api-keys")
                    ui.menu_item(t("chat.change_password"), on_click=self._open_password).mark(
                        "change-password"
                    )
                    ui.menu_item(t("chat.sign_out"), on_click=self._logout).mark("logout")
            else:
                ui.button(t("chat.sign_in"), on_click=self.open_sign_in).props("flat dense no-caps").mark(
                    "login"
                )

    async def signed_in(self) -> Identity | None:
        """The page's user, checked again (password changed elsewhere, disabled, signed out
        everywhere): None, and off to the sign-in page, once the login is no longer valid."""
        page = self.page
        if page.caller.user_id is None:
            return None
        user = await current_user(page.state)
        if user is None or user.id != page.caller.user_id:
            ui.notify(t("chat.login_expired"), type="warning")
            await self.become(user)  # the login the session holds now (another tab's), or a guest
            if user is None:
                background_tasks.create(self.open_sign_in(), name="sign-in dialog")
            return None
        page.user = user
        page.caller = dataclasses.replace(page.caller, rpm_limit=user.rpm_limit, credential=user.credential)
        return user

    async def _open_keys(self) -> None:
        user = await self.signed_in()
        if user is not None:
            await KeysDialog(self.page.state, user, self.page.base_url).open()

    async def _open_password(self) -> None:
        user = await self.signed_in()
        if user is not None:
            open_password_dialog(self.page.state, user, self.page.caller.ip)

    async def open_sign_in(self) -> None:
        """The sign-in dialog over the page: the conversation, the draft and the model stay as they are."""
        page = self.page
        with page.column.client.layout:  # (also opened from a task of its own, which has no slot)
            await open_sign_in_dialog(page.state, page.caller.ip, signed_in=self._adopt_login)

    async def _adopt_login(self) -> None:
        """The login the dialog kept in the session (the one source of truth, as after a reload) becomes
        the page's: from the next message on, calls are the user's."""
        user = await current_user(self.page.state)
        await self.become(user)
        if user is not None:
            ui.notify(t("chat.signed_in", email=user.email), type="positive")

    async def _logout(self) -> None:
        sign_out()
        await self.become(None)
        ui.notify(t("chat.signed_out"), type="info")

    async def become(self, user: Identity | None) -> None:
        """The page is now ``user``'s (a guest's for None, or locked while guests are switched off)."""
        page = self.page
        locked = user is None and not (await rules_now(page.state)).guest_enabled
        if locked and page.answering.busy:  # the answer being written was the user's
            await page.answering.stop()
        was_locked = page.sign_in_required
        page.user = user
        page.sign_in_required = locked
        page.caller = dataclasses.replace(
            page.caller,
            user_id=user.id if user else None,
            username=user.email if user else None,
            rpm_limit=user.rpm_limit if user else None,
            credential=user.credential if user else None,
        )
        self.menu(user.email if user else None)
        if was_locked and not locked:  # the models were not listed for the locked page
            await page.refresh_models()
        page.model_select.set_visibility(not locked)
        page.input.set_enabled(bool(page.models) and not locked)
        page.send_button.set_enabled(bool(page.models) and not locked)
        if was_locked != locked:
            page.empty.delete()
            page.empty_state()  # after the conversation, which stays on screen: locked, it says why
            page.empty.set_visibility(locked or not page.turns)
