"""``/admin/channels``: the channel table, add/edit dialog, delete with confirmation, connectivity test."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError
from sqlmodel import Session

from app.models import Channel, ChannelCreate, ChannelPublic, ChannelUpdate
from app.state import AppState
from pages.admin.frame import admin_frame
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import channels
from services.channel_test import probe_channel
from services.errors import DomainError

COLUMNS = "minmax(120px,1.2fr) minmax(110px,1fr) minmax(180px,2fr) 110px 70px 70px 150px 150px"


def _list(state: AppState) -> list[ChannelPublic]:
    """Every channel with its key masked (each key is decrypted to mask it: run on a worker thread)."""
    with Session(state.engine) as session:
        return [channels.to_public(row, state.cipher) for row in channels.list_channels(session=session)]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = {
        "name": "渠道名称",
        "base_url": "Base URL",
        "api_key": "API Key",
        "model_id": "Model ID",
        "rpm_limit": "RPM 限制",
    }.get(str(error["loc"][0]) if error["loc"] else "", "输入")
    readable = {
        "string_too_short": "不能为空",
        "greater_than_equal": f"不能小于 {error.get('ctx', {}).get('ge')}",
        "less_than_equal": f"不能大于 {error.get('ctx', {}).get('le')}",
        "string_too_long": "太长了",
    }.get(error["type"], error["msg"].removeprefix("Value error, "))
    return f"{field}：{readable}"


def register(state: AppState) -> None:
    zone = state.settings.zone

    def save(data: dict[str, Any], channel_id: int | None) -> ChannelPublic:
        with Session(state.engine) as session:
            if channel_id is None:
                row = state.directory.create(session=session, data=ChannelCreate(**data))
            else:
                row = state.directory.update(
                    session=session, channel_id=channel_id, data=ChannelUpdate(**data)
                )
            return channels.to_public(row, state.cipher)

    def fetch(channel_id: int) -> Channel:
        with Session(state.engine) as session:
            return channels.get_channel(session=session, channel_id=channel_id)

    def remove(channel_id: int) -> None:
        with Session(state.engine) as session:
            state.directory.delete(session=session, channel_id=channel_id)

    @ui.page("/admin/channels", title="渠道 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def channels_page() -> None:
        async with admin_frame(state, "渠道", "/admin/channels") as content:
            if content is None:
                return

            def open_editor(channel: ChannelPublic | None = None) -> None:
                with ui.dialog() as dialog, ui.card().classes("w-[min(520px,94vw)] gap-2"):
                    ui.label("编辑渠道" if channel else "添加渠道").classes("text-lg font-semibold")
                    name = (
                        ui.input("渠道名称", value=channel.name if channel else "")
                        .classes("w-full")
                        .mark("ch-name")
                    )
                    base_url = (
                        ui.input(
                            "Base URL",
                            value=channel.base_url if channel else "",
                            placeholder="https://api.openai.com/v1",
                        )
                        .classes("w-full")
                        .mark("ch-base-url")
                    )
                    api_key = (
                        ui.input(
                            "API Key",
                            password=True,
                            password_toggle_button=True,
                            placeholder=f"留空则保持不变（{channel.api_key_masked}）" if channel else "sk-…",
                        )
                        .classes("w-full")
                        .mark("ch-api-key")
                    )
                    model_id = (
                        ui.input(
                            "Model ID", value=channel.model_id if channel else "", placeholder="gpt-4o-mini"
                        )
                        .classes("w-full")
                        .mark("ch-model")
                    )
                    rpm = (
                        ui.number(
                            "RPM 限制（每分钟请求数）",
                            value=channel.rpm_limit if channel else 60,
                            min=1,
                            precision=0,
                            format="%d",
                        )
                        .classes("w-full")
                        .mark("ch-rpm")
                    )
                    enabled = ui.switch("启用", value=channel.is_enabled if channel else True).mark(
                        "ch-enabled"
                    )
                    error = ui.label("").classes("text-negative text-sm").mark("ch-error")
                    error.set_visibility(False)

                    async def submit() -> None:
                        data = {
                            "name": name.value or "",
                            "base_url": base_url.value or "",
                            "model_id": model_id.value or "",
                            "is_enabled": bool(enabled.value),
                            "rpm_limit": int(rpm.value) if rpm.value is not None else 0,
                        }
                        if api_key.value or channel is None:
                            data["api_key"] = api_key.value or ""
                        try:
                            await off_loop(save, data, channel.id if channel else None)
                        except ValidationError as exc:
                            error.text = _first_error(exc)
                            error.set_visibility(True)
                            return
                        except DomainError as exc:
                            error.text = exc.message
                            error.set_visibility(True)
                            return
                        ui.notify("已保存", type="positive")
                        dialog.delete()  # with its inputs: the plain key leaves the page once stored
                        await reload()

                    with ui.row().classes("w-full justify-end"):
                        ui.button("取消", on_click=dialog.delete).props("flat")
                        ui.button("保存", on_click=submit).props("unelevated").mark("ch-save")
                dialog.on("hide", dialog.delete)
                dialog.open()

            def confirm_delete(channel: ChannelPublic) -> None:
                with ui.dialog() as dialog, ui.card():
                    ui.label(f"删除渠道「{channel.name}」？").classes("text-lg font-semibold")
                    ui.label("删除后无法恢复，使用该渠道的模型将不再经过它。").classes("text-gray-500")

                    async def do_delete() -> None:
                        await off_loop(remove, channel.id)
                        ui.notify("已删除", type="positive")
                        dialog.delete()
                        await reload()

                    with ui.row().classes("w-full justify-end"):
                        ui.button("取消", on_click=dialog.delete).props("flat")
                        ui.button("删除", on_click=do_delete).props("unelevated color=negative").mark(
                            "ch-confirm-delete"
                        )
                dialog.on("hide", dialog.delete)
                dialog.open()

            async def toggle(channel: ChannelPublic, value: bool) -> None:
                await off_loop(save, {"is_enabled": value}, channel.id)
                ui.notify(f"{channel.name} 已{'启用' if value else '停用'}")

            async def test(channel: ChannelPublic, button: ui.button) -> None:
                button.props("loading")
                try:
                    row = await off_loop(fetch, channel.id)
                    result = await probe_channel(
                        channel=row,
                        cipher=state.cipher,
                        client=state.http_client,
                        wait_seconds=state.settings.upstream_first_byte_timeout,
                    )
                except DomainError as exc:  # deleted meanwhile (in another tab or by another admin)
                    ui.notify(f"{channel.name}：{exc.message}", type="negative")
                    await reload()
                    return
                finally:
                    button.props(remove="loading")
                if result.ok:
                    ui.notify(f"{channel.name}：连接正常，延迟 {result.latency_ms} ms", type="positive")
                else:
                    ui.notify(
                        f"{channel.name}：{result.error}", type="negative", multi_line=True, timeout=8000
                    )

            with ui.row().classes("w-full items-center"):
                ui.label("渠道").classes("text-xl font-semibold")
                ui.label("同一模型的多个启用渠道轮流分担请求，失败或达到 RPM 时自动切换。").classes(
                    "text-sm text-gray-500"
                )
                ui.space()
                ui.button("添加渠道", icon="add", on_click=lambda: open_editor()).props("unelevated").mark(
                    "add-channel"
                )

            async def reload() -> None:
                table.refresh(await off_loop(_list, state))

            @ui.refreshable
            def table(rows: list[ChannelPublic]) -> None:
                if not rows:
                    with ui.card().classes("w-full items-center p-8 text-gray-500"):
                        ui.icon("hub", size="40px")
                        ui.label("还没有渠道。添加一个上游（OpenAI 兼容接口）后，用户即可选择它的模型。")
                    return
                with (
                    ui.card().classes("w-full p-0 overflow-x-auto"),
                    ui.grid()
                    .style(f"grid-template-columns: {COLUMNS}")
                    .classes("w-full min-w-[980px] gap-0 items-center text-sm"),
                ):
                    for title in (
                        "名称",
                        "模型",
                        "Base URL",
                        "API Key",
                        "RPM",
                        "启用",
                        "创建 / 更新",
                        "操作",
                    ):
                        ui.label(title).classes("px-3 py-2 font-medium text-gray-500 border-b")
                    for channel in rows:
                        ui.label(channel.name).classes("px-3 py-2 font-medium").mark("ch-row-name")
                        ui.label(channel.model_id).classes("px-3 py-2")
                        ui.label(channel.base_url).classes("px-3 py-2 break-all text-gray-500")
                        key = ui.label(channel.api_key_masked).classes("px-3 py-2 font-mono")
                        if not channel.api_key_readable:
                            key.classes("text-negative").tooltip(
                                "ENCRYPTION_KEY 与保存时不同，请重新填写 API Key"
                            )
                        ui.label(str(channel.rpm_limit)).classes("px-3 py-2")
                        with ui.element("div").classes("px-2"):
                            ui.switch(
                                value=channel.is_enabled,
                                on_change=lambda e, c=channel: toggle(c, e.value),
                            ).mark("ch-toggle")
                        ui.label(
                            f"{channel.created_at.astimezone(zone):%Y-%m-%d %H:%M}\n"
                            f"{channel.updated_at.astimezone(zone):%Y-%m-%d %H:%M}"
                        ).classes("px-3 py-2 whitespace-pre text-gray-500 text-xs")
                        with ui.row().classes("px-2 gap-0 no-wrap"):
                            test_button = (
                                ui.button(icon="network_check").props("flat round dense").tooltip("测试")
                            )
                            test_button.on_click(lambda _, c=channel, b=test_button: test(c, b))
                            test_button.mark("ch-test")
                            ui.button(icon="edit", on_click=lambda c=channel: open_editor(c)).props(
                                "flat round dense"
                            ).tooltip("编辑").mark("ch-edit")
                            ui.button(icon="delete", on_click=lambda c=channel: confirm_delete(c)).props(
                                "flat round dense color=negative"
                            ).tooltip("删除").mark("ch-delete")

            table(await off_loop(_list, state))
