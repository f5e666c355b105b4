"""``/admin/settings``: guest RPM, user RPM, log retention and registrations per IP, effective at once."""

from __future__ import annotations

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services.errors import DomainError
from services.settings import MAX_VALUES, MIN_VALUES, SystemSettings, read_settings


# The number fields have no min, max, precision or format: NiceGUI would apply them on blur, changing
# what was typed (3.5 -> 3, 0 -> 1) without a word. mark_number says what is wrong instead.
def mark_number(field: ui.number, key: str) -> bool:
    """Whether the field holds a whole number in the setting's range; if not, the field says so in words
    (never the setting's internal key, and the value typed stays as typed: no clamping)."""
    low, high = MIN_VALUES.get(key, 1), MAX_VALUES[key]
    value = field.value
    if value is None or value != int(value) or not low <= value <= high:
        shown = "不能为空" if value is None else f"须是 {low} 到 {high:,} 之间的整数"
        field.props(f'error error-message="{shown}"')
        return False
    field.props(remove="error error-message")
    return True


def register(state: AppState) -> None:
    def load() -> SystemSettings:
        with Session(state.engine) as session:
            return read_settings(session=session, defaults=state.setting_defaults)

    def save(values: dict[str, int]) -> SystemSettings:
        with Session(state.engine) as session:
            return state.system_settings.update(session=session, changes=values)

    @ui.page("/admin/settings", title="设置 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def settings_page() -> None:
        async with admin_frame(state, "设置", "/admin/settings") as content:
            if content is None:
                return
            current = await off_loop(load)
            ui.label("系统设置").classes("text-xl font-semibold")
            with ui.card().classes("w-full max-w-xl gap-3"):
                guest = (
                    ui.number(
                        "未登录用户每分钟请求数（按 IP）",
                        value=current.guest_rpm,
                    )
                    .classes("w-full")
                    .mark("guest-rpm")
                )
                user = (
                    ui.number(
                        "已登录用户每分钟请求数（按用户）",
                        value=current.user_rpm,
                    )
                    .classes("w-full")
                    .mark("user-rpm")
                )
                retention = (
                    ui.number("日志保留天数", value=current.log_retention_days)
                    .classes("w-full")
                    .mark("retention-days")
                )
                register_limit = (
                    ui.number(
                        "每个 IP 每小时可注册账号数",
                        value=current.register_per_ip_per_hour,
                    )
                    .classes("w-full")
                    .mark("register-per-ip-per-hour")
                )
                ui.label("修改立即生效，无需重启。超过保留天数的日志每天自动删除。").classes(
                    "text-sm text-gray-500"
                )
                error = ui.label("").classes("text-negative text-sm").mark("settings-error")
                error.set_visibility(False)

                async def submit() -> None:
                    error.set_visibility(False)
                    values = {}
                    wrong = False
                    for key, field in (
                        ("guest_rpm", guest),
                        ("user_rpm", user),
                        ("log_retention_days", retention),
                        ("register_per_ip_per_hour", register_limit),
                    ):
                        if not mark_number(field, key):
                            wrong = True
                        elif field.value is not None:
                            values[key] = int(field.value)
                    if wrong:  # each field says what is wrong with it; nothing is changed behind its back
                        error.text = "请先修正标红的项"
                        error.set_visibility(True)
                        return
                    try:
                        await off_loop(save, values)
                    except DomainError as exc:
                        error.text = exc.message
                        error.set_visibility(True)
                        return
                    ui.notify("设置已保存并立即生效", type="positive")

                ui.button("保存", icon="save", on_click=submit).props("unelevated").mark("settings-save")
