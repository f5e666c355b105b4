"""``/admin/channels``: the channel table, add/edit dialog, delete with confirmation, connectivity test."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError
from sqlmodel import Session

from app.models import Channel, ChannelCreate, ChannelPublic, ChannelUpdate
from app.state import AppState
from pages.admin.channel_form import ChannelForm, all_errors
from pages.admin.frame import admin_frame, page_actor
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import channels
from services.audit import Actor
from services.channel_test import probe_channel
from services.errors import DomainError

COLUMNS = (
    "minmax(120px,1.2fr) minmax(110px,1fr) minmax(180px,2fr) 110px 70px minmax(130px,1.2fr) 70px 150px 190px"
)
STATUS_WORDS = {"enabled": "正常", "disabled": "已停用", "auto_paused": "自动暂停"}


def _list(state: AppState) -> list[ChannelPublic]:
    """Every channel with its key masked (each key is decrypted to mask it: run on a worker thread)."""
    with Session(state.engine) as session:
        return [channels.to_public(row, state.cipher) for row in channels.list_channels(session=session)]


def register(state: AppState) -> None:
    zone = state.settings.zone

    def save(data: dict[str, Any], channel_id: int | None, actor: Actor) -> ChannelPublic:
        with Session(state.engine) as session:
            if channel_id is None:
                row = state.directory.create(session=session, data=ChannelCreate(**data), actor=actor)
            else:
                row = state.directory.update(
                    session=session, channel_id=channel_id, data=ChannelUpdate(**data), actor=actor
                )
            return channels.to_public(row, state.cipher)

    def fetch(channel_id: int) -> Channel:
        with Session(state.engine) as session:
            return channels.get_channel(session=session, channel_id=channel_id)

    def resume_now(channel_id: int, actor: Actor) -> None:
        with Session(state.engine) as session:
            state.directory.resume(session=session, channel_id=channel_id, actor=actor)

    def status_cell(channel: ChannelPublic) -> None:
        """正常 / 已停用 / 自动暂停, with the last error (its reason in words) and the average latency."""
        with ui.column().classes("px-3 py-2 gap-0"):
            color = {"enabled": "text-positive", "auto_paused": "text-negative"}.get(
                channel.status, "text-gray-500"
            )
            ui.label(STATUS_WORDS[channel.status]).classes(f"font-medium {color}").mark("ch-status")
            if channel.latency_ms is not None:
                ui.label(f"{channel.latency_ms} ms").classes("text-xs text-gray-500")
            if channel.last_error and (channel.status == "auto_paused" or channel.consecutive_failures):
                ui.label(f"连续失败 {channel.consecutive_failures} 次：{channel.last_error}").classes(
                    "text-xs text-negative break-all"
                ).mark("ch-last-error")

    def remove(channel_id: int, actor: Actor) -> None:
        with Session(state.engine) as session:
            state.directory.delete(session=session, channel_id=channel_id, actor=actor)

    @ui.page("/admin/channels", title="渠道 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def channels_page() -> None:
        async with admin_frame(state, "渠道", "/admin/channels") as content:
            if content is None:
                return

            def open_editor(channel: ChannelPublic | None = None) -> None:
                with ui.dialog() as dialog, ui.card().classes("w-[min(620px,96vw)] gap-2"):
                    ui.label("编辑渠道" if channel else "添加渠道").classes("text-lg font-semibold")
                    form = ChannelForm(channel)
                    form.build()
                    error = ui.label("").classes("text-negative text-sm whitespace-pre-line").mark("ch-error")
                    error.set_visibility(False)

                    async def submit() -> None:
                        if (actor := await page_actor(state)) is None:
                            return
                        try:
                            await off_loop(save, form.data(), channel.id if channel else None, actor)
                        except ValidationError as exc:
                            error.text = all_errors(exc)
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
                        if (actor := await page_actor(state)) is None:
                            return
                        await off_loop(remove, channel.id, actor)
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
                if (actor := await page_actor(state)) is None:
                    return
                await off_loop(save, {"is_enabled": value}, channel.id, actor)
                ui.notify(f"{channel.name} 已{'启用' if value else '停用'}")

            async def test(channel: ChannelPublic, button: ui.button) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                button.props("loading")
                try:
                    row = await off_loop(fetch, channel.id)
                    result = await probe_channel(
                        channel=row,
                        cipher=state.cipher,
                        client=state.http_client,
                        wait_seconds=state.settings.upstream_first_byte_timeout,
                    )
                    if result.ok and row.auto_paused:
                        assert row.id is not None
                        await off_loop(state.health.resumed, row.id, result.latency_ms, actor)
                except DomainError as exc:  # deleted meanwhile (in another tab or by another admin)
                    ui.notify(f"{channel.name}：{exc.message}", type="negative")
                    await reload()
                    return
                finally:
                    button.props(remove="loading")
                if result.ok:
                    ui.notify(
                        f"{channel.name}：连接正常（非流式与流式调用均通过），延迟 {result.latency_ms} ms",
                        type="positive",
                    )
                    await reload()  # a passing test resumes an auto-paused channel
                else:
                    ui.notify(
                        f"{channel.name}：{result.error}", type="negative", multi_line=True, timeout=8000
                    )

            async def resume(channel: ChannelPublic) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                await off_loop(resume_now, channel.id, actor)
                ui.notify(f"{channel.name} 已恢复", type="positive")
                await reload()

            with ui.row().classes("w-full items-center"):
                ui.label("渠道").classes("text-xl font-semibold")
                ui.label(
                    "同一模型的渠道按优先级先后、同优先级按权重分担；失败或达到 RPM 时自动切换。"
                ).classes("text-sm text-gray-500")
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
                        "状态",
                        "启用",
                        "创建 / 更新",
                        "操作",
                    ):
                        ui.label(title).classes("px-3 py-2 font-medium text-gray-500 border-b")
                    for channel in rows:
                        ui.label(channel.name).classes("px-3 py-2 font-medium").mark("ch-row-name")
                        ui.label(", ".join(channel.models)).classes("px-3 py-2 break-all")
                        ui.label(channel.base_url).classes("px-3 py-2 break-all text-gray-500").tooltip(
                            f"调用地址：{channel.call_url}"
                        )
                        key = ui.label(channel.api_key_masked).classes("px-3 py-2 font-mono")
                        if not channel.api_key_readable:
                            key.classes("text-negative").tooltip(
                                "ENCRYPTION_KEY 与保存时不同，请重新填写 API Key"
                            )
                        ui.label(str(channel.rpm_limit)).classes("px-3 py-2")
                        status_cell(channel)
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
                            if channel.status == "auto_paused":
                                ui.button(icon="play_arrow", on_click=lambda c=channel: resume(c)).props(
                                    "flat round dense color=positive"
                                ).tooltip("恢复").mark("ch-resume")
                            ui.button(icon="edit", on_click=lambda c=channel: open_editor(c)).props(
                                "flat round dense"
                            ).tooltip("编辑").mark("ch-edit")
                            ui.button(icon="delete", on_click=lambda c=channel: confirm_delete(c)).props(
                                "flat round dense color=negative"
                            ).tooltip("删除").mark("ch-delete")

            table(await off_loop(_list, state))
