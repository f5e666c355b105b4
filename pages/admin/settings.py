"""``/admin/settings``: guest access and registration switches, guest RPM, user RPM, log retention,
registrations per IP and the channels' default ``auto_pause_after``, effective at once on every instance."""

from __future__ import annotations

from nicegui import ui
from sqlmodel import Session

from app.state import AppState
from pages.admin.frame import admin_frame, page_actor
from pages.forms import FormError
from pages.i18n import t
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services.audit import Actor
from services.settings import MAX_VALUES, MIN_VALUES, SettingValue, SystemSettings, read_settings


# The number fields have no min, max, precision or format: NiceGUI would apply them on blur, changing
# what was typed (3.5 -> 3, 0 -> 1) without a word. mark_number says what is wrong instead.
def mark_number(field: ui.number, key: str) -> bool:
    """Whether the field holds a whole number in the setting's range; if not, the field says so in words
    (never the setting's internal key, and the value typed stays as typed: no clamping)."""
    low, high = MIN_VALUES.get(key, 1), MAX_VALUES[key]
    value = field.value
    if value is None or value != int(value) or not low <= value <= high:
        shown = (
            t("admin.settings.empty")
            if value is None
            else t("admin.settings.range", low=low, high=f"{high:,}")
        )
        field.props(f'error error-message="{shown}"')
        return False
    field.props(remove="error error-message")
    return True


def _auto_pause_field(value: int) -> ui.number:
    """The default of ``auto_pause_after`` for channels without their own (0: never pause)."""
    field = ui.number(t("admin.settings.auto_pause"), value=value)
    field.classes("w-full").mark("auto-pause-after")
    ui.label(t("admin.settings.auto_pause_note")).classes("text-xs text-gray-500 -mt-2")
    return field


def register(state: AppState) -> None:
    def load() -> SystemSettings:
        with Session(state.engine) as session:
            return read_settings(session=session, defaults=state.setting_defaults)

    def save(values: dict[str, SettingValue], actor: Actor) -> SystemSettings:
        with Session(state.engine) as session:
            return state.system_settings.update(session=session, changes=values, actor=actor)

    @ui.page("/admin/settings", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def settings_page() -> None:
        async with admin_frame(state, "admin.nav.settings", "/admin/settings") as content:
            if content is None:
                return
            current = await off_loop(load)
            ui.label(t("admin.settings.title")).classes("text-xl font-semibold")
            with ui.card().classes("w-full max-w-xl gap-3"):
                guest_enabled = ui.switch(
                    t("admin.settings.guest_enabled"), value=current.guest_enabled
                ).mark("guest-enabled")
                ui.label(t("admin.settings.guest_note")).classes("text-sm text-gray-500 -mt-2")
                registration_enabled = ui.switch(
                    t("admin.settings.registration_enabled"), value=current.registration_enabled
                ).mark("registration-enabled")
                ui.label(t("admin.settings.registration_note")).classes("text-sm text-gray-500 -mt-2")
                guest = (
                    ui.number(
                        t("admin.settings.guest_rpm"),
                        value=current.guest_rpm,
                    )
                    .classes("w-full")
                    .mark("guest-rpm")
                )
                user = (
                    ui.number(
                        t("admin.settings.user_rpm"),
                        value=current.user_rpm,
                    )
                    .classes("w-full")
                    .mark("user-rpm")
                )
                retention = (
                    ui.number(t("admin.settings.retention"), value=current.log_retention_days)
                    .classes("w-full")
                    .mark("retention-days")
                )
                register_limit = (
                    ui.number(
                        t("admin.settings.register_limit"),
                        value=current.register_per_ip_per_hour,
                    )
                    .classes("w-full")
                    .mark("register-per-ip-per-hour")
                )
                auto_pause = _auto_pause_field(current.auto_pause_after)
                ui.label(t("admin.settings.note")).classes("text-sm text-gray-500")
                error = FormError("settings-error")

                async def submit() -> None:
                    error.clear()
                    values: dict[str, SettingValue] = {
                        "guest_enabled": bool(guest_enabled.value),
                        "registration_enabled": bool(registration_enabled.value),
                    }
                    wrong = False
                    for key, field in (
                        ("guest_rpm", guest),
                        ("user_rpm", user),
                        ("log_retention_days", retention),
                        ("register_per_ip_per_hour", register_limit),
                        ("auto_pause_after", auto_pause),
                    ):
                        if not mark_number(field, key):
                            wrong = True
                        elif field.value is not None:
                            values[key] = int(field.value)
                    if wrong:  # each field says what is wrong with it; nothing is changed behind its back
                        error.say(t("admin.settings.fix_marked"))
                        return
                    if (actor := await page_actor(state)) is None:
                        return
                    if await error.attempt(lambda: off_loop(save, values, actor)):
                        ui.notify(t("admin.settings.saved"), type="positive")

                ui.button(t("admin.save"), icon="save", on_click=submit).props("unelevated").mark(
                    "settings-save"
                )
