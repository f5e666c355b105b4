"""``/admin/settings``: guest access and registration switches, guest RPM, user RPM, log retention and
registrations per IP, effective at once on every instance. (The channels' default ``auto_pause_after``
joins this page on main, from another branch.)"""

from __future__ import annotations

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services.errors import DomainError
from services.settings import SettingValue, SystemSettings, read_settings


def register(state: AppState) -> None:
    def load() -> SystemSettings:
        with Session(state.engine) as session:
            return read_settings(session=session, defaults=state.setting_defaults)

    def save(values: dict[str, SettingValue]) -> SystemSettings:
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
                guest_enabled = ui.switch("允许访客（未登录）使用", value=current.guest_enabled).mark(
                    "guest-enabled"
                )
                ui.label("关闭后，未登录的访问者需先登录才能对话，API 对无令牌的请求返回 401。").classes(
                    "text-sm text-gray-500 -mt-2"
                )
                registration_enabled = ui.switch("开放注册", value=current.registration_enabled).mark(
                    "registration-enabled"
                )
                ui.label("关闭后注册页面提示暂不开放注册；管理员仍可在“用户”页面创建用户。").classes(
                    "text-sm text-gray-500 -mt-2"
                )
                guest = (
                    ui.number(
                        "未登录用户每分钟请求数（按 IP）",
                        value=current.guest_rpm,
                        min=1,
                        precision=0,
                        format="%d",
                    )
                    .classes("w-full")
                    .mark("guest-rpm")
                )
                user = (
                    ui.number(
                        "已登录用户每分钟请求数（按用户）",
                        value=current.user_rpm,
                        min=1,
                        precision=0,
                        format="%d",
                    )
                    .classes("w-full")
                    .mark("user-rpm")
                )
                retention = (
                    ui.number(
                        "日志保留天数", value=current.log_retention_days, min=1, precision=0, format="%d"
                    )
                    .classes("w-full")
                    .mark("retention-days")
                )
                register_limit = (
                    ui.number(
                        "每个 IP 每小时可注册账号数",
                        value=current.register_per_ip_per_hour,
                        min=1,
                        precision=0,
                        format="%d",
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
                    values: dict[str, SettingValue] = {
                        "guest_enabled": bool(guest_enabled.value),
                        "registration_enabled": bool(registration_enabled.value),
                    }
                    for key, field in (
                        ("guest_rpm", guest),
                        ("user_rpm", user),
                        ("log_retention_days", retention),
                        ("register_per_ip_per_hour", register_limit),
                    ):
                        if field.value is None or int(field.value) != field.value:
                            error.text = "请填写正整数"
                            error.set_visibility(True)
                            return
                        values[key] = int(field.value)
                    try:
                        await off_loop(save, values)
                    except DomainError as exc:
                        error.text = exc.message
                        error.set_visibility(True)
                        return
                    ui.notify("设置已保存并立即生效", type="positive")

                ui.button("保存", icon="save", on_click=submit).props("unelevated").mark("settings-save")
