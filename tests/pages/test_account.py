"""The chat page's account menu with NiceGUI's simulated user: the API key dialog, and logins that end
(a disabled account at the login form, a session ended by a password change elsewhere)."""

from __future__ import annotations

import uuid

from nicegui.testing import User
from sqlmodel import Session, select

from app.models import ApiKey
from app.models import User as Account
from services import auth
from tests.helpers import SEE_RETRIES
from tests.pages.conftest import app_state


def make_account(password: str = "password-1") -> Account:
    email = f"account-{uuid.uuid4().hex[:8]}@example.com"
    with Session(app_state().engine, expire_on_commit=False) as session:
        return auth.register_user(session=session, email=email, password=password)


async def sign_in_on_the_page(user: User, account: Account) -> None:
    await user.open("/login")
    user.find(marker="email").type(account.email)
    user.find(marker="password").type("password-1")
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)


def keys_of(account: Account) -> list[ApiKey]:
    with Session(app_state().engine) as session:
        return list(session.exec(select(ApiKey).where(ApiKey.user_id == account.id)).all())


async def test_the_key_dialog_creates_shows_once_and_revokes(user: User) -> None:
    account = make_account()
    await sign_in_on_the_page(user, account)
    user.find(marker="api-keys").click()
    await user.should_see(marker="key-empty", retries=SEE_RETRIES)
    user.find(marker="key-name").type("Open WebUI")
    user.find(marker="key-create").click()
    await user.should_see(marker="key-created", retries=SEE_RETRIES)
    [row] = keys_of(account)
    shown = next(iter(user.find(marker="new-key").elements)).value
    assert shown.startswith(row.prefix) and len(shown) > 40 and row.key_hash != shown
    assert next(iter(user.find(marker="base-url").elements)).value.endswith("/v1")
    # the list shows the new key once it has reloaded (the name is also in the "created" notice above it)
    await user.should_see(marker=f"key-revoke-{row.id}", retries=SEE_RETRIES)
    user.find(marker=f"key-revoke-{row.id}").click()
    await user.should_see(marker="revoke-confirm", retries=SEE_RETRIES)
    user.find(marker="revoke-confirm").click()
    await user.should_see(marker="key-empty", retries=SEE_RETRIES)
    assert keys_of(account)[0].revoked_at is not None


async def test_a_disabled_account_is_told_at_the_login_form(user: User) -> None:
    account = make_account()
    with Session(app_state().engine) as session:
        stored = session.get(Account, account.id)
        assert stored is not None
        stored.disabled = True
        session.add(stored)
        session.commit()
    assert account.id is not None
    app_state().identity.user_changed(account.id)
    await user.open("/login")
    user.find(marker="email").type(account.email)
    user.find(marker="password").type("password-1")
    user.find(marker="submit").click()
    await user.should_see("账号已被停用，请联系管理员", retries=SEE_RETRIES)


async def test_a_session_ended_elsewhere_is_noticed_at_the_next_message(user: User, add_model) -> None:
    add_model("ok")
    account = make_account()
    await sign_in_on_the_page(user, account)
    assert account.id is not None
    with Session(app_state().engine) as session:  # the password changed on another device
        auth.change_password(
            session=session, user_id=account.id, old_password="password-1", new_password="password-2"
        )
    app_state().identity.user_changed(account.id)
    user.find(marker="message-input").type("still signed in?")
    user.find(marker="send").click()
    await user.should_see(marker="sign-in-dialog", retries=SEE_RETRIES)  # the login form, over the page
    await user.should_see(marker="email")
    await user.should_see("登录已失效，请重新登录")
    await user.should_see(marker="login")  # the page is a guest's now, the message not sent
    assert user.find(marker="message-input").elements.pop().value == "still signed in?"
    user.find(marker="password").type("password-2")
    user.find(marker="email").type(account.email)
    user.find(marker="submit").click()
    await user.should_see(marker="account", retries=SEE_RETRIES)
    await user.should_not_see(marker="login")
