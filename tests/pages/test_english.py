"""Every page but the chat page, switched to English, shows no Chinese text (only the switch's own "中文"),
and the switch in each header offers both languages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from nicegui import app
from nicegui.testing import User
from sqlmodel import Session

from app.models import utcnow
from services.auth import register_user
from services.logs import CallRecord
from tests.helpers import SEE_RETRIES, wait_until_async
from tests.pages.conftest import app_state, sign_in_admin

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
ADMIN_PAGES = [
    ("/admin/dashboard", "Overview"),
    ("/admin/channels", "Channels"),
    ("/admin/users", "Users"),
    ("/admin/logs", "Call logs"),
    ("/admin/ip", "IP block list"),
    ("/admin/settings", "System settings"),
    ("/admin/audit", "Audit log"),
]


def chinese_on_the_page(user: User) -> list[str]:
    """Each element's texts, props (labels, placeholders, hints, aria-labels, options) and tooltips that
    hold a Han character, the language switch's "中文" entry left out."""
    found = []
    for element in user.current_layout.descendants(include_self=True):
        if any(e.props.get("lang") == "zh-CN" for e in element.ancestors(include_self=True)):
            continue  # the switch names each language in its own words
        shown = json.dumps(element._to_dict(), ensure_ascii=False, default=str)
        if HAN.search(shown):
            found.append(f"{type(element).__name__}: {shown[:200]}")
    return found


async def switch_to_english(user: User, path: str) -> None:
    """English chosen for this visitor (as the switch keeps it), then ``path`` opened again. The switch's
    own click is tested in test_the_switch_changes_the_language (its reload would race a second open)."""
    await user.open(path)
    app.storage.user["lang"] = "en"
    await user.open(path)


async def test_auth_pages_in_english(user: User) -> None:
    await switch_to_english(user, "/login")
    for path, heading in (
        ("/login", "Sign in"),
        ("/register", "Register"),
        ("/admin/login", "Admin sign-in"),
    ):
        await user.open(path)
        await user.should_see(heading, retries=SEE_RETRIES)
        [switch] = user.find(marker="language").elements
        [dark] = user.find(marker="dark-mode").elements
        assert (switch.props.get("aria-label"), dark.props.get("aria-label")) == ("Language", "Dark mode"), (
            path
        )
        assert chinese_on_the_page(user) == [], path


async def test_english_errors_in_the_login_form(user: User) -> None:
    await switch_to_english(user, "/login")
    user.find(marker="email").type("nobody@example.com")
    user.find(marker="password").type("not-the-password")
    user.find(marker="submit").click()
    await user.should_see("Wrong email or password", retries=SEE_RETRIES)
    assert chinese_on_the_page(user) == []


async def test_admin_pages_in_english(user: User, add_model: Callable[..., str]) -> None:
    state = app_state()
    add_model("ok", name="Main channel")
    with Session(state.engine) as session:
        register_user(session=session, email="someone@example.com", password="password-1")
        state.block_list.add(session=session, ip_address="203.0.113.9", reason="spam", actor=None)
    state.log_writer.record(
        CallRecord(
            user_id=None,
            username=None,
            ip_address="10.1.1.1",
            channel_id=None,
            model_id="ok",
            prompt_tokens=3,
            completion_tokens=4,
            created_at=utcnow(),
            status="ok",
            tokens_estimated=False,
            duration_ms=1,
        )
    )
    state.log_writer.flush()
    await sign_in_admin(user)  # its audit row ("admin.login") shows on the audit page
    await switch_to_english(user, "/admin/dashboard")
    for path, heading in ADMIN_PAGES:
        await user.open(path)
        await user.should_see(heading, retries=SEE_RETRIES)
        assert user.find(marker="language").elements and user.find(marker="dark-mode").elements, path
        menu = user.find(marker="admin-menu").elements.pop()
        assert menu.props.get("aria-label") == "Menu"
        assert chinese_on_the_page(user) == [], path
    await user.open("/admin/users")
    await user.should_see("someone@example.com", retries=SEE_RETRIES)
    await user.open("/admin/audit")
    table = user.find(marker="audit-table").elements.pop()
    assert "Admin sign-in" in [row["action"] for row in getattr(table, "rows", [])]


async def test_the_switch_changes_the_language(user: User) -> None:
    await user.open("/login")
    [chinese] = user.find(marker="language-zh-CN").elements
    assert [getattr(e, "text", None) for e in chinese.descendants()] == ["中文"]
    [english] = user.find(marker="language-en").elements
    assert [getattr(e, "text", None) for e in english.descendants()] == ["English"]
    user.find(marker="language-en").click()
    await wait_until_async(lambda: app.storage.user.get("lang") == "en", what="English chosen")
    await user.should_see("Signed-in users get a higher usage limit", retries=SEE_RETRIES)
    user.find(marker="language-zh-CN").click()
    await wait_until_async(lambda: app.storage.user.get("lang") == "zh-CN", what="Chinese chosen")
    await user.should_see("登录后可享受更高的使用额度", retries=SEE_RETRIES)
