"""``/admin/users`` with NiceGUI's simulated user: list, search, order, pages, disable, own RPM,
temporary password, delete, create."""

from __future__ import annotations

from datetime import timedelta

from nicegui.testing import User
from sqlmodel import Session, select

from app.models import User as Account
from app.models import utcnow
from services import auth
from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state
from tests.pages.test_admin import sign_in
from tests.pages.test_auth import make_account


def account(email: str) -> Account:
    with Session(app_state().engine) as session:
        return session.exec(select(Account).where(Account.email == email)).one()


def emails_shown(user: User) -> list[str]:
    return [label.text for label in sorted(user.find(marker="user-row-email").elements, key=lambda e: e.id)]


async def test_the_users_page_is_in_the_menu_and_admin_only(user: User) -> None:
    await user.open("/admin/users")
    await user.should_see("管理员登录")
    await sign_in(user)
    user.find(marker="nav-users").click()
    await user.should_see("还没有用户", retries=SEE_RETRIES)


async def test_search_order_and_pages(user: User) -> None:
    for n in range(23):
        make_account(f"person-{n:02d}@example.com")
    make_account("someone-else@example.org")
    with Session(app_state().engine) as session:  # person-05 was active most recently, person-07 before
        for email, minutes in (("person-05@example.com", 1), ("person-07@example.com", 5)):
            row = session.exec(select(Account).where(Account.email == email)).one()
            row.last_active_at = utcnow() - timedelta(minutes=minutes)
            session.add(row)
        session.commit()
    await sign_in(user)
    await user.open("/admin/users")
    await user.should_see("共 24 个用户 · 第 1 / 2 页", marker="users-summary", retries=SEE_RETRIES)
    assert emails_shown(user)[0] == "someone-else@example.org"  # newest first
    assert len(emails_shown(user)) == 20
    user.find(marker="users-pager").elements.pop().set_value(2)
    await user.should_see("第 2 / 2 页", retries=SEE_RETRIES)
    assert emails_shown(user) == [f"person-{n:02d}@example.com" for n in (3, 2, 1, 0)]

    user.find(marker="users-search").type("PERSON-1")
    user.find(marker="users-search-apply").click()
    await user.should_see("找到 10 个用户 · 第 1 / 1 页", retries=SEE_RETRIES)
    assert emails_shown(user)[0] == "person-19@example.com"
    user.find(marker="users-sort").elements.pop().set_value("created")
    await wait_until_async(lambda: emails_shown(user)[0] == "person-10@example.com", what="oldest first")
    assert len(emails_shown(user)) == 10

    user.find(marker="users-search").clear()
    user.find(marker="users-search-apply").click()
    await user.should_see("共 24 个用户", retries=SEE_RETRIES)
    user.find(marker="users-sort").elements.pop().set_value("-last_active")
    await wait_until_async(
        lambda: emails_shown(user)[:2] == ["person-05@example.com", "person-07@example.com"],
        what="the most recently active first",
    )
    user.find(marker="users-sort").elements.pop().set_value("last_active")  # never active first, by id
    await wait_until_async(lambda: emails_shown(user)[0] == "person-00@example.com", what="idle first")

    user.find(marker="users-search").type("nobody-has-this")
    user.find(marker="users-search-apply").click()
    await user.should_see("没有匹配的用户", retries=SEE_RETRIES)


async def test_disable_rpm_password_and_delete(user: User) -> None:
    make_account("row@example.com")
    state = app_state()
    before = account("row@example.com")
    await sign_in(user)
    await user.open("/admin/users")
    await user.should_see(marker="user-row-email", content="row@example.com", retries=SEE_RETRIES)

    user.find(marker="user-toggle").elements.pop().set_value(False)
    await user.should_see("row@example.com 已停用", retries=SEE_RETRIES)
    disabled = account("row@example.com")
    assert disabled.disabled is True and disabled.token_version == before.token_version + 1
    user.find(marker="user-toggle").elements.pop().set_value(True)
    await user.should_see("row@example.com 已启用", retries=SEE_RETRIES)
    assert account("row@example.com").disabled is False

    user.find(marker="user-rpm").click()
    user.find(marker="user-rpm-input").elements.pop().set_value(0)
    user.find(marker="user-rpm-save").click()
    await user.should_see("请填写 1 到 1000000 之间的整数，或留空", retries=SEE_RETRIES)
    user.find(marker="user-rpm-input").elements.pop().set_value(7)
    user.find(marker="user-rpm-save").click()
    await user.should_see(marker="user-rpm", content="7", retries=SEE_RETRIES)
    assert account("row@example.com").rpm_limit == 7
    user.find(marker="user-rpm").click()
    user.find(marker="user-rpm-input").elements.pop().set_value(None)  # empty: the global setting
    user.find(marker="user-rpm-save").click()
    await user.should_see(marker="user-rpm", content="全局", retries=SEE_RETRIES)
    assert account("row@example.com").rpm_limit is None

    user.find(marker="user-password").click()
    generated = user.find(marker="user-new-password").elements.pop().value
    assert len(generated) == 16  # a temporary password is offered
    user.find(marker="user-new-password").clear().type("short")
    user.find(marker="user-password-save").click()
    await user.should_see("密码至少需要 8 位", retries=SEE_RETRIES)
    user.find(marker="user-new-password").clear().type("typed-temp-pass-1")
    user.find(marker="user-password-save").click()
    await user.should_see("临时密码已生效", retries=SEE_RETRIES)
    await user.should_see("typed-temp-pass-1", marker="user-temporary-password")
    user.find(marker="user-password-close").click()
    with Session(state.engine) as session:
        assert auth.authenticate_user(session=session, email="row@example.com", password="typed-temp-pass-1")

    user.find(marker="user-delete").click()
    user.find(marker="user-confirm-delete").click()
    await user.should_see("已删除 row@example.com", retries=SEE_RETRIES)
    await user.should_see("还没有用户", retries=SEE_RETRIES)
    with Session(state.engine) as session:
        assert session.exec(select(Account)).all() == []


async def test_create_user_dialog(user: User) -> None:
    make_account("taken@example.com")
    await sign_in(user)
    await user.open("/admin/users")
    user.find(marker="users-add").click()
    user.find(marker="user-new-email").type("taken@example.com")
    user.find(marker="user-create-save").click()
    await user.should_see("该邮箱已被注册", marker="user-create-error", retries=SEE_RETRIES)
    user.find(marker="user-new-email").clear().type("not-an-email")
    user.find(marker="user-create-save").click()
    await user.should_see("邮箱格式不正确", retries=SEE_RETRIES)
    user.find(marker="user-new-email").clear().type("Made@Example.com")
    password = user.find(marker="user-new-initial-password").elements.pop().value
    user.find(marker="user-create-save").click()
    await user.should_see("已创建 Made@Example.com", retries=SEE_RETRIES)
    await user.should_see(marker="user-row-email", content="made@example.com", retries=SEE_RETRIES)
    with Session(app_state().engine) as session:
        assert auth.authenticate_user(session=session, email="made@example.com", password=password)
