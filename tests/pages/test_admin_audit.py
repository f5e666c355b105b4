"""The audit log in the admin console (NiceGUI's simulated user): changes made from the pages are
recorded like the API's, and ``/admin/audit`` lists them with filters, pages and readable changes."""

from __future__ import annotations

from typing import Any

from nicegui.testing import User
from sqlmodel import Session, select

from app.models import AuditLog
from services import audit
from services.audit import Actor
from tests.helpers import SEE_RETRIES, TEST_ADMIN_PASSWORD
from tests.pages.conftest import app_state
from tests.pages.test_admin import sign_in
from tests.upstream_server import UpstreamServer


def _rows() -> list[AuditLog]:
    with Session(app_state().engine) as session:
        return list(session.exec(select(AuditLog).order_by(AuditLog.id)).all())  # type: ignore[arg-type]


def _table_rows(user: User) -> list[dict[str, Any]]:
    table = user.find(marker="audit-table").elements.pop()
    return list(table.rows)


async def test_changes_made_from_the_pages_are_recorded(user: User, upstream: UpstreamServer) -> None:
    await user.open("/admin/login")
    user.find(marker="username").type("admin")
    user.find(marker="password").type("wrong-password-9")
    user.find(marker="submit").click()
    await user.should_see("用户名或密码错误", retries=SEE_RETRIES)
    await sign_in(user)

    await user.open("/admin/channels")
    user.find(marker="add-channel").click()
    user.find(marker="ch-name").type("PageMade")
    user.find(marker="ch-base-url").type(upstream.base_url("ok"))
    user.find(marker="ch-api-key").type("sk-page-secret-abcdef123456")
    user.find(marker="ch-model").type("page-model")
    user.find(marker="ch-save").click()
    await user.should_see(marker="ch-row-name", content="PageMade", retries=SEE_RETRIES)
    user.find(marker="ch-toggle").elements.pop().set_value(False)
    await user.should_see("已停用", retries=SEE_RETRIES)

    await user.open("/admin/settings")
    user.find(marker="guest-rpm").elements.pop().set_value(7)
    user.find(marker="settings-save").click()
    await user.should_see("设置已保存并立即生效", retries=SEE_RETRIES)

    await user.open("/admin/ip")
    user.find(marker="ip-address").type("192.0.2.0/24")
    user.find(marker="ip-add").click()
    await user.should_see("已禁用 192.0.2.0/24", retries=SEE_RETRIES)
    await user.should_see(marker="ip-rule", retries=SEE_RETRIES)  # the list has reloaded
    user.find(marker="ip-delete").click()
    await user.should_see("已移除", retries=SEE_RETRIES)

    rows = _rows()
    assert [(row.action, row.admin) for row in rows] == [
        ("admin.login_failed", "admin"),
        ("admin.login", "admin"),
        ("channel.create", "admin"),
        ("channel.update", "admin"),
        ("settings.update", "admin"),
        ("ip_rule.create", "admin"),
        ("ip_rule.delete", "admin"),
    ]
    assert all(row.ip_address for row in rows)
    stored = " ".join(row.changes for row in rows)
    for secret in ("sk-page-secret-abcdef123456", "wrong-password-9", TEST_ADMIN_PASSWORD):
        assert secret not in stored
    assert '"api_key":"set"' in rows[2].changes
    assert rows[3].changes == '{"is_enabled":{"old":true,"new":false}}'


async def test_audit_page_lists_filters_and_pages(user: User) -> None:
    state = app_state()
    actor = Actor(admin="admin", ip_address="198.51.100.4")
    for i in range(23):
        audit.record(
            state.engine,
            actor,
            "settings.update",
            target="system_config",
            changes={"guest_rpm": {"old": i, "new": i + 1}},
        )
    audit.record(
        state.engine,
        Actor(admin="other", ip_address="198.51.100.5"),
        "channel.update",
        target="channel 4 (Main)",
        changes={"name": {"old": "Old", "new": "Main"}, "api_key": "changed", "headers.X-Org": "removed"},
    )
    await sign_in(user)  # one more row: admin.login
    user.find(marker="nav-audit").click()
    await user.should_see("共 25 条 · 第 1 / 2 页", retries=SEE_RETRIES)
    rows = _table_rows(user)
    assert len(rows) == 20
    assert rows[0]["action"] == "管理员登录"
    assert rows[1]["admin"] == "other" and rows[1]["target"] == "channel 4 (Main)"
    assert rows[1]["changes"] == "名称：Old → Main\nAPI Key：已修改\n请求头 X-Org：已移除"

    user.find(marker="a-pager").elements.pop().set_value(2)
    await user.should_see("共 25 条 · 第 2 / 2 页", retries=SEE_RETRIES)
    assert len(_table_rows(user)) == 5

    user.find(marker="a-action").elements.pop().set_value("channel")
    user.find(marker="a-apply").click()
    await user.should_see("共 1 条 · 第 1 / 1 页", retries=SEE_RETRIES)
    user.find(marker="a-action").elements.pop().set_value("")
    user.find(marker="a-admin").type("admin")
    user.find(marker="a-apply").click()
    await user.should_see("共 24 条", retries=SEE_RETRIES)
    assert _table_rows(user)[-1]["changes"] == "访客每分钟请求数：4 → 5"  # newest first: 22→23 … 4→5

    user.find(marker="a-start").elements.pop().set_value("2026-02-02")
    user.find(marker="a-end").elements.pop().set_value("2026-02-01")
    user.find(marker="a-apply").click()
    await user.should_see("end：开始时间必须早于结束时间", retries=SEE_RETRIES)
    user.find(marker="a-reset").click()
    await user.should_see("共 25 条", retries=SEE_RETRIES)


async def test_audit_page_is_for_the_admin_only(user: User) -> None:
    await user.open("/admin/audit")
    await user.should_see("管理员登录")
    await user.should_not_see("审计日志")
