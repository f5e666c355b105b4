"""Signing in and out on the chat page, in a dialog, without leaving the page (issue 19): the conversation,
the draft and the chosen model stay; the session holds the login, so a reload agrees with the page."""

from __future__ import annotations

from nicegui import app, ui
from nicegui.testing import User
from sqlmodel import Session, select

from app.models import ChatLog
from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state, set_limits
from tests.pages.test_auth import make_account, new_email
from tests.upstream_server import ANSWER_WORDS

ANSWER = "".join(ANSWER_WORDS)


async def send(user: User, text: str) -> None:
    user.find(marker="message-input").type(text)
    user.find(marker="send").click()


def logged_users() -> list[str | None]:
    state = app_state()
    state.log_writer.flush()
    with Session(state.engine) as session:
        return list(session.exec(select(ChatLog.username).order_by(ChatLog.id)).all())


def the(user: User, marker: str) -> ui.element:
    elements = user.find(marker=marker).elements
    assert len(elements) == 1, f"one {marker!r}, found {len(elements)}"
    return elements.pop()


async def guest_conversation(user: User, add_model) -> ui.element:
    """A guest's conversation on the second of two models, with a draft in the box; its message element."""
    add_model("ok", model="first-model")
    add_model("ok", model="second-model")
    await user.open("/")
    the(user, "model-select").set_value("second-model")
    await send(user, "asked as a guest")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    user.find(marker="message-input").type("a draft, not sent yet")
    return the(user, "user-message")


async def sign_in_in_the_dialog(user: User, opener: str, email: str, password: str = "password-1") -> None:
    user.find(marker=opener).click()
    await user.should_see(marker="sign-in-dialog", retries=SEE_RETRIES)
    user.find(marker="email").type(email)
    user.find(marker="password").type(password)
    user.find(marker="submit").click()


async def test_signing_in_in_the_dialog_keeps_the_conversation_and_the_next_message_is_the_users(
    user: User, add_model
) -> None:
    email = new_email()
    make_account(email)
    message = await guest_conversation(user, add_model)
    history = list(user.back_history)

    await sign_in_in_the_dialog(user, "login", email)
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_not_see(marker="sign-in-dialog")
    await user.should_not_see(marker="login")
    assert user.back_history == history, "no navigation: the same page"
    assert not message.is_deleted, "the same conversation, on the same page"
    await user.should_see("asked as a guest", marker="user-message")
    assert the(user, "message-input").value == "a draft, not sent yet"
    assert the(user, "model-select").value == "second-model"
    await user.should_see(email)

    set_limits(user_rpm=1)  # the user's own limit applies now, not the guests' (1000)
    user.find(marker="send").click()
    await user.should_see("a draft, not sent yet", marker="user-message")
    await wait_until_async(lambda: len(logged_users()) == 2, what="the user's call logged")
    assert logged_users() == [None, email]
    await send(user, "one more this minute")
    await user.should_see("请求过于频繁", retries=SEE_RETRIES)

    await user.open("/")  # a deliberate reload: still signed in
    await user.should_see(marker="account")
    await user.should_not_see(marker="login")


async def test_a_wrong_password_is_said_in_the_dialog(user: User, add_model) -> None:
    email = new_email()
    make_account(email)
    await guest_conversation(user, add_model)
    await sign_in_in_the_dialog(user, "login", email, password="wrong-password")
    await user.should_see("邮箱或密码错误", marker="form-error", retries=SEE_RETRIES)
    await user.should_see(marker="sign-in-dialog")
    await user.should_see(marker="login")
    assert not app.storage.user.get("token")
    user.find(marker="password").clear().type("password-1")  # the dialog is still there to try again
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)


async def test_registering_in_the_dialog_signs_in_on_the_page(user: User, add_model) -> None:
    email = new_email()
    await guest_conversation(user, add_model)
    user.find(marker="login").click()
    await user.should_see(marker="sign-in-dialog", retries=SEE_RETRIES)
    user.find(marker="to-register").click()
    await user.should_see(marker="confirm", retries=SEE_RETRIES)
    user.find(marker="email").type("not-an-email")
    user.find(marker="password").type("password-1")
    user.find(marker="confirm").type("password-1")
    user.find(marker="submit").click()
    await user.should_see("邮箱格式不正确")  # the /register page's rules and words
    user.find(marker="email").clear().type(email)
    user.find(marker="submit").click()
    await user.should_see("注册成功", retries=SEE_RETRIES)
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_see("asked as a guest", marker="user-message")
    assert the(user, "message-input").value == "a draft, not sent yet"
    user.find(marker="send").click()
    await wait_until_async(lambda: len(logged_users()) == 2, what="the new user's call logged")
    assert logged_users() == [None, email]


async def test_signing_out_keeps_the_conversation_and_chats_on_as_a_guest(user: User, add_model) -> None:
    email = new_email()
    make_account(email)
    add_model("ok")
    await user.open("/")
    await sign_in_in_the_dialog(user, "login", email)
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await send(user, "asked as a user")
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    message = the(user, "user-message")

    user.find(marker="logout").click()
    await user.should_see(marker="login", retries=SEE_RETRIES)
    await user.should_not_see(marker="account")
    assert not message.is_deleted
    await user.should_see("asked as a user", marker="user-message")
    await send(user, "asked as a guest")
    await wait_until_async(lambda: len(logged_users()) == 2, what="the guest's call logged")
    assert logged_users() == [email, None]

    await user.open("/")  # a deliberate reload: still signed out
    await user.should_see(marker="login")
    await user.should_not_see(marker="account")


async def test_with_guests_switched_off_signing_out_locks_the_page_and_the_dialog_unlocks_it(
    user: User, add_model
) -> None:
    email = new_email()
    make_account(email)
    add_model("ok")
    set_limits(guest_enabled=False)
    await user.open("/")
    await user.should_see(marker="sign-in-required")
    history = list(user.back_history)
    await sign_in_in_the_dialog(user, "sign-in-to-chat", email)
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_see("有什么可以帮你？")  # the models are listed now, the box is open
    assert user.back_history == history, "no navigation: the same page"
    assert the(user, "message-input").enabled and the(user, "send").enabled
    await send(user, "asked as a user")
    await user.should_see(ANSWER, retries=SEE_RETRIES)

    user.find(marker="logout").click()
    await user.should_see(marker="sign-in-required", retries=SEE_RETRIES)
    await user.should_see("asked as a user", marker="user-message")  # kept on screen, read only
    assert not the(user, "message-input").enabled and not the(user, "send").enabled
    await user.should_not_see(marker="model-select")

    await sign_in_in_the_dialog(user, "sign-in-to-chat", email)  # and back in, still the same page
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_not_see(marker="sign-in-required")
    await user.should_see("asked as a user", marker="user-message")
    assert the(user, "message-input").enabled
    assert user.back_history == history


async def test_the_sign_in_first_error_opens_the_dialog_and_keeps_the_message(user: User, add_model) -> None:
    email = new_email()
    make_account(email)
    add_model("ok")
    await user.open("/")
    set_limits(guest_enabled=False)  # while the guest's page is open
    await send(user, "sent once signed in")
    await user.should_see("本站已关闭访客使用，请先登录", retries=SEE_RETRIES)
    history = list(user.back_history)
    user.find(marker="dialog-sign-in").click()
    await user.should_see(marker="sign-in-dialog", retries=SEE_RETRIES)
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    assert user.back_history == history, "no navigation: the same page"
    assert the(user, "message-input").value == "sent once signed in"
    user.find(marker="send").click()
    await user.should_see(ANSWER, retries=SEE_RETRIES)
    await wait_until_async(lambda: len(logged_users()) == 1, what="the user's call logged")
    assert logged_users() == [email]
