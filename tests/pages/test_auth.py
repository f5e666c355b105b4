"""/register and /login pages: same rules and messages as the API; the login survives a refresh."""

from __future__ import annotations

import json
import uuid

from nicegui import app
from nicegui.testing import User
from sqlmodel import Session, select

from app.models import User as Account
from services import auth
from tests.helpers import SEE_RETRIES
from tests.pages.conftest import app_state, set_limits
from tests.upstream_server import ANSWER_WORDS


def new_email() -> str:
    return f"page-{uuid.uuid4().hex[:8]}@example.com"


def make_account(email: str, password: str = "password-1") -> None:
    with Session(app_state().engine) as session:
        auth.register_user(session=session, email=email, password=password)


async def test_register_logs_in_and_shows_the_user(user: User) -> None:
    email = new_email()
    await user.open("/register")
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="confirm").type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.open("/")  # a refresh keeps the login
    await user.should_see(marker="account")
    await user.should_not_see(marker="login")


async def test_register_validation_messages(user: User) -> None:
    existing = new_email()
    make_account(existing)
    await user.open("/register")
    user.find(marker="email").type("not-an-email")
    user.find(marker="password").type("short")
    user.find(marker="confirm").type("other")
    user.find(marker="submit").click()
    await user.should_see("邮箱格式不正确")
    await user.should_see("密码至少需要 8 位")
    user.find(marker="email").clear().type(existing)
    user.find(marker="password").clear().type("password-1")
    user.find(marker="confirm").clear().type("password-1")
    user.find(marker="submit").click()
    await user.should_see("该邮箱已被注册", retries=SEE_RETRIES)


async def test_login_and_logout(user: User, add_model) -> None:
    email = new_email()
    make_account(email)
    add_model("ok")
    await user.open("/login")
    user.find(marker="email").type(email)
    user.find(marker="password").type("wrong-password")
    user.find(marker="submit").click()
    await user.should_see("邮箱或密码错误", retries=SEE_RETRIES)
    user.find(marker="password").clear().type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_see(email)

    user.find(marker="message-input").type("as a user")
    user.find(marker="send").click()
    await user.should_see("".join(ANSWER_WORDS), retries=SEE_RETRIES)
    state = app_state()
    state.log_writer.flush()
    from sqlmodel import select

    from app.models import ChatLog

    with Session(state.engine) as session:
        rows = session.exec(select(ChatLog)).all()
    assert [row.username for row in rows] == [email]

    user.find(marker="logout").click()
    await user.should_see(marker="login", retries=SEE_RETRIES)
    await user.open("/login")
    await user.should_see("登录")


async def test_login_page_redirects_when_signed_in(user: User) -> None:
    email = new_email()
    make_account(email)
    await user.open("/login")
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.open("/login")
    await user.should_see(marker="account", retries=SEE_RETRIES)


async def register_on_the_page(user: User, email: str) -> None:
    await user.open("/register")
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="confirm").type("password-1")
    user.find(marker="submit").click()


async def test_registrations_beyond_the_limit_show_the_rate_limit_dialog(user: User) -> None:
    set_limits(register_per_ip_per_hour=1)
    first = new_email()
    await register_on_the_page(user, first)
    await user.should_see(marker="account", retries=SEE_RETRIES)
    app.storage.user.pop("token")  # signed out: the registration form again
    second = new_email()
    await register_on_the_page(user, second)
    await user.should_see("请求过于频繁", retries=SEE_RETRIES)  # the dialog of every 429
    await user.should_see("注册过于频繁，请稍后再试")
    assert "秒后可以重试" in user.find(marker="countdown").elements.pop().text
    with Session(app_state().engine) as session:
        assert session.exec(select(Account.email)).all() == [first]


async def test_a_control_character_in_the_password_is_refused_in_the_form(user: User) -> None:
    await user.open("/register")
    user.find(marker="email").type(new_email())
    user.find(marker="password").type("pass\x00word-1")
    user.find(marker="confirm").type("pass\x00word-1")
    user.find(marker="submit").click()
    await user.should_see("密码不能包含控制字符")


async def test_the_session_keeps_the_token_sealed(user: User) -> None:
    email = new_email()
    make_account(email)
    await user.open("/login")
    user.find(marker="email").type(email)
    user.find(marker="password").type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    stored = app.storage.user["token"]
    assert not stored.startswith("eyJ") and "." not in stored, "a Fernet token, not a JWT"
    assert email not in json.dumps(dict(app.storage.user)), "no e-mail kept in the session either"
