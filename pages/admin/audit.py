"""``/admin/audit``: the admin audit log (who changed what, from where) with filters and server-side pages."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import audit_queries
from services.audit import ACTION_LABELS, GROUP_LABELS
from services.errors import InvalidInput

PAGE_SIZE = 20
COLUMNS = [
    {"name": "time", "label": "时间", "field": "time", "align": "left"},
    {"name": "admin", "label": "管理员", "field": "admin", "align": "left"},
    {"name": "ip", "label": "IP", "field": "ip", "align": "left"},
    {"name": "action", "label": "操作", "field": "action", "align": "left"},
    {"name": "target", "label": "对象", "field": "target", "align": "left", "style": "white-space: normal"},
    {
        "name": "changes",
        "label": "变更",
        "field": "changes",
        "align": "left",
        "style": "white-space: pre-line; min-width: 260px",
    },
]
FIELD_LABELS = {
    "name": "名称",
    "base_url": "Base URL",
    "models": "模型",
    "model_map": "模型映射",
    "priority": "优先级",
    "weight": "权重",
    "rpm_limit": "RPM",
    "is_enabled": "启用",
    "auto_paused": "自动暂停",
    "auto_pause_after": "连续失败自动暂停",
    "api_key": "API Key",
    "proxy": "代理",
    "guest_rpm": "访客每分钟请求数",
    "user_rpm": "用户每分钟请求数",
    "log_retention_days": "日志保留天数",
    "register_per_ip_per_hour": "每 IP 每小时注册数",
    "ip_address": "IP / 网段",
    "reason": "原因",
    "password": "密码",
    "disabled": "停用",
    "email": "邮箱",
}
SECRET_WORDS = {"set": "已设置", "changed": "已修改", "removed": "已移除"}
MAX_VALUE_CHARS = 120


def _field(name: str) -> str:
    if name.startswith("headers."):
        return f"请求头 {name.removeprefix('headers.')}"
    return FIELD_LABELS.get(name, name)


def _value(value: Any) -> str:
    if value is None:
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        text = ", ".join(str(item) for item in value) or "（空）"
    elif isinstance(value, dict):
        text = ", ".join(f"{k} → {v}" for k, v in value.items()) or "（空）"
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def describe_changes(changes: dict[str, Any]) -> str:
    """One line per field: ``名称：A → B``, a secret as ``API Key：已修改``."""
    lines = []
    for name, change in changes.items():
        if isinstance(change, str):
            lines.append(f"{_field(name)}：{SECRET_WORDS.get(change, change)}")
        elif isinstance(change, dict) and set(change) <= {"old", "new"}:
            old, new = change.get("old"), change.get("new")
            if old is None:
                lines.append(f"{_field(name)}：{_value(new)}")
            elif new is None:
                lines.append(f"{_field(name)}：{_value(old)} → （删除）")
            else:
                lines.append(f"{_field(name)}：{_value(old)} → {_value(new)}")
        else:  # a shape of a later version: shown as it is stored
            lines.append(f"{_field(name)}：{json.dumps(change, ensure_ascii=False)[:MAX_VALUE_CHARS]}")
    return "\n".join(lines) or "—"


def action_options() -> dict[str, str]:
    """The action filter: everything, each group, then each action."""
    options = {"": "全部"}
    options.update({group: f"{label}（全部）" for group, label in GROUP_LABELS.items()})
    options.update({action: f"{label}（{action}）" for action, label in ACTION_LABELS.items()})
    return options


def register(state: AppState) -> None:
    zone = state.settings.zone

    @ui.page("/admin/audit", title="审计日志 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def audit_page() -> None:
        async with admin_frame(state, "审计日志", "/admin/audit") as content:
            if content is None:
                return
            form: dict[str, str | None] = {"start": None, "end": None, "admin": None, "action": None}

            with ui.row().classes("w-full items-center"):
                ui.label("审计日志").classes("text-xl font-semibold")
                ui.label(
                    "管理员的每次修改和后台登录（含失败）；密钥、代理、请求头的值从不记录，只记录“已修改”。"
                ).classes("text-sm text-gray-500")
            with ui.card().classes("w-full"), ui.row().classes("w-full items-end gap-3"):
                start = ui.input("开始日期").props("type=date dense outlined stack-label").mark("a-start")
                end = ui.input("结束日期").props("type=date dense outlined stack-label").mark("a-end")
                admin = ui.input("管理员").props("dense outlined clearable").mark("a-admin")
                action = (
                    ui.select(action_options(), value="", label="操作")
                    .props("dense outlined")
                    .classes("min-w-[200px]")
                    .mark("a-action")
                )
                ui.button("查询", icon="search", on_click=lambda: apply()).props("unelevated").mark("a-apply")
                ui.button("重置", on_click=lambda: reset()).props("flat").mark("a-reset")
            error = ui.label("").classes("text-negative text-sm").mark("a-error")
            error.set_visibility(False)
            summary = ui.label("").classes("text-sm text-gray-500").mark("a-summary")
            table = (
                ui.table(columns=COLUMNS, rows=[], row_key="id")
                .classes("w-full")
                .props("flat bordered dense wrap-cells")
                .mark("audit-table")
            )
            pager = (
                ui.pagination(1, 1, direction_links=True, on_change=lambda e: load(e.value))
                .props("max-pages=7 boundary-numbers")
                .mark("a-pager")
            )

            async def load(number: int = 1) -> None:
                error.set_visibility(False)
                try:
                    flt = audit_queries.parse_filter(zone=zone, **form)
                except InvalidInput as exc:
                    error.text = exc.message
                    error.set_visibility(True)
                    return

                def query() -> audit_queries.AuditPage:
                    with Session(state.engine) as session:
                        return audit_queries.list_entries(
                            session=session, flt=flt, page=number, page_size=PAGE_SIZE
                        )

                result = await off_loop(query)
                table.rows = [
                    {
                        "id": item["id"],
                        "time": item["created_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                        "admin": item["admin"],
                        "ip": item["ip_address"],
                        "action": ACTION_LABELS.get(item["action"], item["action"]),
                        "target": item["target"] or "—",
                        "changes": describe_changes(item["changes"]),
                    }
                    for item in result.items
                ]
                pages = max(1, -(-result.total // PAGE_SIZE))
                pager.max = pages
                pager.set_value(number)
                summary.text = f"共 {result.total:,} 条 · 第 {number} / {pages} 页"

            async def apply() -> None:
                form.update(
                    start=start.value or None,
                    end=end.value or None,
                    admin=admin.value or None,
                    action=action.value or None,
                )
                await load(1)

            async def reset() -> None:
                for field in (start, end, admin):
                    field.value = ""
                action.value = ""
                await apply()

            await load(1)
