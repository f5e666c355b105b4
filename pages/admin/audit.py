"""``/admin/audit``: the admin audit log (who changed what, from where) with filters and server-side pages."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame
from pages.admin.widgets import date_range, page_heading, query_buttons
from pages.forms import FormError
from pages.i18n import language, t
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import audit_queries
from services.audit import ACTIONS, GROUPS
from services.errors import InvalidInput

PAGE_SIZE = 20
COLUMNS = [
    {"name": "time", "field": "time", "align": "left"},
    {"name": "admin", "field": "admin", "align": "left"},
    {"name": "ip", "field": "ip", "align": "left"},
    {"name": "action", "field": "action", "align": "left"},
    {"name": "target", "field": "target", "align": "left", "style": "white-space: normal"},
    {
        "name": "changes",
        "field": "changes",
        "align": "left",
        "style": "white-space: pre-line; min-width: 260px",
    },
]

FIELD_LABELS = {  # the fields whose label is in the catalogue (admin.audit.field.<name>)
    "name",
    "base_url",
    "models",
    "model_map",
    "priority",
    "weight",
    "rpm_limit",
    "is_enabled",
    "auto_paused",
    "auto_pause_after",
    "api_key",
    "proxy",
    "guest_rpm",
    "user_rpm",
    "log_retention_days",
    "register_per_ip_per_hour",
    "ip_address",
    "reason",
    "password",
    "disabled",
    "email",
}
SECRET_WORDS = ("set", "changed", "removed")
MAX_VALUE_CHARS = 120


def _field(name: str) -> str:
    if name.startswith("headers."):
        return t("admin.audit.header_field", name=name.removeprefix("headers."))
    return t(f"admin.audit.field.{name}") if name in FIELD_LABELS else name


def _value(value: Any) -> str:
    if value is None:
        return t("admin.audit.empty")
    if isinstance(value, bool):
        return t("admin.audit.yes" if value else "admin.audit.no")
    if isinstance(value, list):
        text = ", ".join(str(item) for item in value) or t("admin.audit.empty")
    elif isinstance(value, dict):
        text = ", ".join(f"{k} → {v}" for k, v in value.items()) or t("admin.audit.empty")
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def describe_changes(changes: dict[str, Any]) -> str:
    """One line per field: ``Name: A → B``, a secret as ``API Key: changed`` (in the page's language)."""
    lines = []
    for name, change in changes.items():
        field = _field(name)
        if isinstance(change, str):
            word = t(f"admin.audit.secret.{change}") if change in SECRET_WORDS else change
            lines.append(t("admin.audit.line", field=field, value=word))
        elif isinstance(change, dict) and set(change) <= {"old", "new"}:
            old, new = change.get("old"), change.get("new")
            if old is None:
                lines.append(t("admin.audit.line", field=field, value=_value(new)))
            elif new is None:
                lines.append(t("admin.audit.line_removed", field=field, old=_value(old)))
            else:
                lines.append(t("admin.audit.line_change", field=field, old=_value(old), new=_value(new)))
        else:  # a shape of a later version: shown as it is stored
            shown = json.dumps(change, ensure_ascii=False)[:MAX_VALUE_CHARS]
            lines.append(t("admin.audit.line", field=field, value=shown))
    return "\n".join(lines) or "—"


def _action(action: str) -> str:
    return t(f"admin.audit.action.{action}") if action in ACTIONS else action


def action_options() -> dict[str, str]:
    """The action filter: everything, each group, then each action."""
    options = {"": t("admin.audit.all")}
    options.update(
        {group: t("admin.audit.group_all", label=t(f"admin.audit.group.{group}")) for group in GROUPS}
    )
    options.update(
        {action: t("admin.audit.action_option", label=_action(action), action=action) for action in ACTIONS}
    )
    return options


def register(state: AppState) -> None:
    zone = state.settings.zone

    @ui.page("/admin/audit", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def audit_page() -> None:
        async with admin_frame(state, "admin.nav.audit", "/admin/audit") as content:
            if content is None:
                return
            form: dict[str, str | None] = {"start": None, "end": None, "admin": None, "action": None}

            page_heading("audit")
            with ui.card().classes("w-full"), ui.row().classes("w-full items-end gap-3"):
                start, end = date_range("a")
                admin = ui.input(t("admin.audit.admin")).props("dense outlined clearable").mark("a-admin")
                action = (
                    ui.select(action_options(), value="", label=t("admin.audit.action"))
                    .props("dense outlined")
                    .classes("min-w-[200px]")
                    .mark("a-action")
                )
                query_buttons("a", lambda: apply(), lambda: reset())
            error = FormError("a-error")
            summary = ui.label("").classes("text-sm text-gray-500").mark("a-summary")
            table = (
                ui.table(
                    columns=[{**c, "label": t(f"admin.audit.col.{c['name']}")} for c in COLUMNS],
                    rows=[],
                    row_key="id",
                )
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
                error.clear()
                try:
                    flt = audit_queries.parse_filter(zone=zone, **form)
                except InvalidInput as exc:
                    error.say(exc.text(language()))
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
                        "action": _action(item["action"]),
                        "target": item["target"] or "—",
                        "changes": describe_changes(item["changes"]),
                    }
                    for item in result.items
                ]
                pages = max(1, -(-result.total // PAGE_SIZE))
                pager.max = pages
                pager.set_value(number)
                summary.text = t("admin.total_pages", count=f"{result.total:,}", page=number, pages=pages)

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
