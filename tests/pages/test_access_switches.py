"""The guest access and registration switches with NiceGUI's simulated user: the settings page sets them,
the chat, register and login pages follow them on the next request."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, select

from app.models import User as Account
from tests.helpers import SEE_RETRIES
from tests.pages.conftest import app_state, set_limits
from tests.pages.test_admin import sign_in
from tests.pages.test_auth import make_account, new_email
from tests.upstream_server import ANSWER_WORDS


async def test_settings_page_sets_the_switches(user: User) -> None:
    await sign_in(user)
    await user.open("/admin/settings")
    await user.should_see("允许访客（未登录）使用")
    guest = user.find(marker="guest-enabled").elements.pop()
    registration = user.find(marker="registration-enabled").elements.pop()
    assert isinstance(guest, ui.switch) and guest.value is True and registration.value is True
    guest.set_value(False)
    registration.set_value(False)
    user.find(marker="settings-save").click()
    await user.should_see("设置已保存并立即生效", retries=SEE_RETRIES)
    current = app_state().system_settings.current()
    assert (current.guest_enabled, current.registration_enabled) == (False, False)

    await user.open("/admin/settings")  # shows what is stored
    await user.should_see("允许访客（未登录）使用")
    assert user.find(marker="guest-enabled").elements.pop().value is False
    assert user.find(marker="registration-enabled").elements.pop().value is False


async def test_chat_page_asks_a_guest_to_sign_in_while_guests_are_off(user: User, add_model) -> None:
    add_model("ok")
    set_limits(guest_enabled=False)
    await user.open("/")
    await user.should_see("本站已关闭访客使用，登录后即可开始对话。", marker="sign-in-required")
    await user.should_not_see(marker="model-select")  # no model to pick
    assert user.find(marker="message-input").elements.pop().enabled is False
    assert user.find(marker="send").elements.pop().enabled is False
    await user.should_not_see("有什么可以帮你？")
    user.find(marker="sign-in-to-chat").click()
    await user.should_see("登录后可享受更高的使用额度", marker="sign-in-dialog", retries=SEE_RETRIES)

    email = new_email()
    make_account(email)
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_see("有什么可以帮你？")  # a user chats as before
    user.find(marker="message-input").type("hello")
    user.find(marker="send").click()
    await user.should_see("".join(ANSWER_WORDS), retries=SEE_RETRIES)


async def test_a_guest_page_open_when_guests_are_switched_off_gets_the_sign_in_dialog(
    user: User, add_model
) -> None:
    add_model("ok")
    await user.open("/")
    await user.should_see("有什么可以帮你？")
    set_limits(guest_enabled=False)  # meanwhile, by the admin
    user.find(marker="message-input").type("hello")
    user.find(marker="send").click()
    await user.should_see("本站已关闭访客使用，请先登录", retries=SEE_RETRIES)
    await user.should_see(marker="dialog-sign-in")
    assert user.find(marker="message-input").elements.pop().value == "hello", "the text is kept"


async def test_register_page_says_registration_is_closed(user: User) -> None:
    set_limits(registration_enabled=False)
    await user.open("/register")
    await user.should_see("本站暂不开放注册，请联系管理员", marker="registration-closed")
    await user.should_not_see(marker="submit")
    await user.open("/login")
    await user.should_see("登录后可享受更高的使用额度")
    await user.should_not_see(marker="to-register")

    set_limits(registration_enabled=True)  # open again: the next page load has the form
    email = new_email()
    await user.open("/register")
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="confirm").type("password-1")
    set_limits(registration_enabled=False)  # closed while the form was being filled in
    user.find(marker="submit").click()
    await user.should_see("本站暂不开放注册，请联系管理员", marker="form-error", retries=SEE_RETRIES)
    with Session(app_state().engine) as session:
        assert session.exec(select(Account).where(Account.email == email)).first() is None
