"""``/admin/channels``: the channel table in server-side pages (search, status filter, sort), add/edit dialog,
bulk enable/disable/delete, and connectivity tests whose results stay in the table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from nicegui import ui
from pydantic import ValidationError
from sqlmodel import Session

from app.models import Channel, ChannelCreate, ChannelListItem, ChannelPublic, ChannelUpdate
from app.state import AppState
from pages.admin.channel_form import ChannelForm, all_errors
from pages.admin.frame import admin_frame, page_actor
from pages.threads import PAGE_BUILD_SECONDS, off_loop
from services import channels
from services.audit import Actor
from services.channel_test import ProbeResult, probe_channel
from services.errors import DomainError

COLUMNS = "40px minmax(150px,1.6fr) 96px minmax(130px,1fr) 76px minmax(170px,1.8fr) 72px 64px 150px"
STATUS_WORDS = {"enabled": "正常", "disabled": "已停用", "auto_paused": "自动暂停"}
STATUS_FILTER = {"": "全部状态", "enabled": "正常", "auto_paused": "自动暂停", "disabled": "已停用"}
SORTS = {
    "id": "最早添加",
    "-id": "最新添加",
    "name": "名称",
    "-priority": "优先级（高→低）",
    "status": "状态",
    "latency_ms": "延迟（低→高）",
    "-latency_ms": "延迟（高→低）",
    "-last_error_at": "最近出错",
    "-consecutive_failures": "连续失败次数",
}
PAGE_SIZES = [20, 50, 100]
TEST_CONCURRENCY = 4  # "test all" probes this many channels at a time


@dataclass
class Tested:
    """A test run from this page: kept in the table (not a toast) until the page is left."""

    at: datetime
    result: ProbeResult | None = None  # None: running
    failure: str | None = None  # the channel could not be tested (deleted meanwhile)


@dataclass
class View:
    page: int = 1
    page_size: int = 20
    q: str = ""
    status: str = ""
    sort: str = "id"
    selected: set[int] = field(default_factory=set)
    tests: dict[int, Tested] = field(default_factory=dict)
    loads: int = 0  # loads started: only the latest one's answer is shown


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def register(state: AppState) -> None:
    zone = state.settings.zone

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "—"
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return f"{moment.astimezone(zone):%m-%d %H:%M}"

    def load(view: View) -> tuple[list[ChannelListItem], int]:
        request = channels.channel_query(
            page=view.page, page_size=view.page_size, q=view.q, status=view.status or None, sort=view.sort
        )
        with Session(state.engine) as session:
            return channels.list_page(session=session, request=request, cipher=state.cipher, zone=zone)

    def save(data: dict[str, Any], channel_id: int | None, actor: Actor) -> ChannelPublic:
        with Session(state.engine) as session:
            if channel_id is None:
                row = state.directory.create(session=session, data=ChannelCreate(**data), actor=actor)
            else:
                row = state.directory.update(
                    session=session, channel_id=channel_id, data=ChannelUpdate(**data), actor=actor
                )
            return channels.to_public(row, state.cipher)

    def bulk(ids: list[int], action: str, actor: Actor) -> int:
        """Enable, disable or delete each channel; returns how many were changed (gone ones are skipped)."""
        done = 0
        with Session(state.engine) as session:
            for channel_id in ids:
                try:
                    if action == "delete":
                        state.directory.delete(session=session, channel_id=channel_id, actor=actor)
                    else:
                        data = ChannelUpdate(is_enabled=action == "enable")
                        state.directory.update(session=session, channel_id=channel_id, data=data, actor=actor)
                except DomainError:
                    continue
                done += 1
        return done

    def fetch(channel_id: int) -> Channel:
        with Session(state.engine) as session:
            return channels.get_channel(session=session, channel_id=channel_id)

    def resume_now(channel_id: int, actor: Actor) -> None:
        with Session(state.engine) as session:
            state.directory.resume(session=session, channel_id=channel_id, actor=actor)

    def remove(channel_id: int, actor: Actor) -> None:
        with Session(state.engine) as session:
            state.directory.delete(session=session, channel_id=channel_id, actor=actor)

    async def run_test(channel_id: int, actor: Actor) -> Tested:
        tested = Tested(at=datetime.now(UTC))
        try:
            row = await off_loop(fetch, channel_id)
        except DomainError as exc:  # deleted meanwhile (in another tab or by another admin)
            tested.failure = exc.message
            return tested
        tested.result = await probe_channel(
            channel=row,
            cipher=state.cipher,
            client=state.http_client,
            wait_seconds=state.settings.upstream_first_byte_timeout,
        )
        if tested.result.ok and row.auto_paused:  # a passing test resumes an auto-paused channel
            await off_loop(state.health.resumed, channel_id, tested.result.latency_ms, actor)
        return tested

    def status_cell(channel: ChannelListItem) -> None:
        color = {"enabled": "text-positive", "auto_paused": "text-negative"}.get(
            channel.status, "text-gray-500"
        )
        with ui.column().classes("px-2 py-2 gap-0"):
            ui.label(STATUS_WORDS[channel.status]).classes(f"font-medium {color}").mark("ch-status")
            if channel.consecutive_failures:
                ui.label(f"连续失败 {channel.consecutive_failures} 次").classes("text-xs text-negative")

    def last_test_cell(channel: ChannelListItem, tested: Tested | None) -> None:
        """This page's test of the channel if there was one, else the latest success or failure stored."""
        with ui.column().classes("px-2 py-2 gap-0").mark("ch-last-test"):
            if tested is not None:
                if tested.failure is not None:
                    ui.label(tested.failure).classes("text-negative text-xs")
                elif tested.result is None:
                    ui.spinner(size="sm")
                    ui.label("测试中…").classes("text-xs text-gray-500")
                elif tested.result.ok:
                    ui.label("✓ 通过").classes("text-positive font-medium").mark("ch-test-ok")
                    ui.label(f"{when(tested.at)} · 本页测试").classes("text-xs text-gray-500")
                else:
                    ui.label("✗ 失败").classes("text-negative font-medium").mark("ch-test-failed")
                    ui.label(f"{when(tested.at)} · 本页测试").classes("text-xs text-gray-500")
                return
            success, error = channel.last_success_at, channel.last_error_at
            if success is None and error is None:
                ui.label("未检测").classes("text-gray-500")
                return
            failed = error is not None and (success is None or error > success)
            ui.label("✗ 失败" if failed else "✓ 成功").classes(
                "text-negative font-medium" if failed else "text-positive font-medium"
            )
            ui.label(when(error if failed else success)).classes("text-xs text-gray-500")

    def error_cell(channel: ChannelListItem, tested: Tested | None) -> None:
        if tested is not None and tested.result is not None and not tested.result.ok:
            text = tested.result.error or "失败"
        elif tested is not None and tested.result is not None:
            text = f"连接正常（非流式与流式均通过），{tested.result.latency_ms} ms"
        else:
            text = channel.last_error or ""
        label = ui.label(text or "—").classes("px-2 py-2 text-xs break-words min-w-0").mark("ch-last-error")
        if text and not (tested is not None and tested.result is not None and tested.result.ok):
            label.classes("text-negative")
        if channel.last_error_at and not tested:
            label.tooltip(f"最近出错：{when(channel.last_error_at)}")

    @ui.page("/admin/channels", title="渠道 · pyaichat 管理", response_timeout=PAGE_BUILD_SECONDS)
    async def channels_page() -> None:
        async with admin_frame(state, "渠道", "/admin/channels") as content:
            if content is None:
                return
            view = View()
            shown: list[ChannelListItem] = []

            def open_editor(channel: ChannelPublic | None = None) -> None:
                with ui.dialog() as dialog, ui.card().classes("w-[min(620px,96vw)] gap-2"):
                    ui.label("编辑渠道" if channel else "添加渠道").classes("text-lg font-semibold")
                    form = ChannelForm(channel)
                    form.build()
                    error = ui.label("").classes("text-negative text-sm whitespace-pre-line").mark("ch-error")
                    error.set_visibility(False)

                    async def submit() -> None:
                        form.clear_errors()
                        if (actor := await page_actor(state)) is None:
                            return
                        try:
                            await off_loop(save, form.data(), channel.id if channel else None, actor)
                        except ValidationError as exc:
                            form.show_errors(exc)
                            error.text = all_errors(exc, form.missing())
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

            def confirm(title: str, note: str, action: Any, label: str = "删除") -> None:
                with ui.dialog() as dialog, ui.card():
                    ui.label(title).classes("text-lg font-semibold")
                    ui.label(note).classes("text-gray-500")

                    async def go() -> None:
                        dialog.close()  # deleted after the action, which runs in this dialog's context
                        try:
                            await action()
                        finally:
                            dialog.delete()

                    with ui.row().classes("w-full justify-end"):
                        ui.button("取消", on_click=dialog.delete).props("flat")
                        ui.button(label, on_click=go).props("unelevated color=negative").mark(
                            "ch-confirm-delete"
                        )
                dialog.on("hide", dialog.delete)
                dialog.open()

            def confirm_delete(channel: ChannelPublic) -> None:
                async def do_delete() -> None:
                    if (actor := await page_actor(state)) is None:
                        return
                    await off_loop(remove, channel.id, actor)
                    view.selected.discard(channel.id)
                    ui.notify("已删除", type="positive")
                    await reload()

                confirm(
                    f"删除渠道「{channel.name}」？",
                    "删除后无法恢复，使用该渠道的模型将不再经过它。",
                    do_delete,
                )

            async def toggle(channel: ChannelPublic, value: bool) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                await off_loop(save, {"is_enabled": value}, channel.id, actor)
                ui.notify(f"{channel.name} 已{'启用' if value else '停用'}")
                await reload()

            async def test(channel_ids: list[int]) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                for channel_id in channel_ids:
                    view.tests[channel_id] = Tested(at=datetime.now(UTC))
                table.refresh()
                gate = asyncio.Semaphore(TEST_CONCURRENCY)

                async def one(channel_id: int) -> None:
                    async with gate:
                        view.tests[channel_id] = await run_test(channel_id, actor)

                names = {channel.id: channel.name for channel in shown}
                await asyncio.gather(*(one(channel_id) for channel_id in channel_ids))
                for channel_id in channel_ids:  # a channel gone meanwhile leaves the table: said once here
                    if (failure := view.tests[channel_id].failure) is not None:
                        ui.notify(f"{names.get(channel_id, channel_id)}：{failure}", type="negative")
                await reload()  # a passing test resumes an auto-paused channel; latency and errors change

            async def test_all() -> None:
                ids = [channel.id for channel in shown]
                if ids:
                    await test(ids)
                    passed = sum(1 for i in ids if (t := view.tests.get(i)) and t.result and t.result.ok)
                    tests_done.text = f"本页测试完成：{passed} / {len(ids)} 个通过（结果见表格）"

            async def resume(channel: ChannelPublic) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                await off_loop(resume_now, channel.id, actor)
                ui.notify(f"{channel.name} 已恢复", type="positive")
                await reload()

            async def bulk_action(action: str) -> None:
                ids = sorted(view.selected)
                if not ids:
                    ui.notify("请先勾选渠道")
                    return

                async def go() -> None:
                    if (actor := await page_actor(state)) is None:
                        return
                    done = await off_loop(bulk, ids, action, actor)
                    words = {"enable": "启用", "disable": "停用", "delete": "删除"}[action]
                    ui.notify(f"已{words} {done} 个渠道", type="positive")
                    view.selected.clear()
                    selection.text = ""
                    await reload()

                if action == "delete":
                    confirm(f"删除选中的 {len(ids)} 个渠道？", "删除后无法恢复。", go)
                else:
                    await go()

            with ui.row().classes("w-full items-center"):
                ui.label("渠道").classes("text-xl font-semibold")
                ui.label(
                    "同一模型的渠道按优先级先后、同优先级按权重分担；失败或达到 RPM 时自动切换。"
                ).classes("text-sm text-gray-500")
                ui.space()
                ui.button("添加渠道", icon="add", on_click=lambda: open_editor()).props("unelevated").mark(
                    "add-channel"
                )

            async def search() -> None:
                await choose(q=(query.value or "").strip())

            async def choose(**changes: Any) -> None:
                """A new search, filter, order or page size: back to page 1, nothing selected."""
                for name, value in changes.items():
                    setattr(view, name, value)
                view.page = 1
                view.selected.clear()
                selection.text = ""
                await reload()

            with ui.card().classes("w-full"), ui.row().classes("w-full items-end gap-3"):
                query = (
                    ui.input("搜索名称 / 模型 / Base URL")
                    .props("dense outlined clearable debounce=400")
                    .classes("min-w-[200px] grow")
                    .mark("ch-search")
                )
                query.on("keydown.enter", search)
                query.on("clear", search)
                query.on_value_change(search)
                ui.select(
                    STATUS_FILTER, value="", label="状态", on_change=lambda e: choose(status=e.value)
                ).props("dense outlined").classes("min-w-[120px]").mark("ch-status-filter")
                ui.select(SORTS, value="id", label="排序", on_change=lambda e: choose(sort=e.value)).props(
                    "dense outlined"
                ).classes("min-w-[150px]").mark("ch-sort")
            with ui.row().classes("w-full items-center gap-2"):
                ui.button("启用", icon="check_circle", on_click=lambda: bulk_action("enable")).props(
                    "outline dense"
                ).mark("ch-bulk-enable")
                ui.button("停用", icon="block", on_click=lambda: bulk_action("disable")).props(
                    "outline dense"
                ).mark("ch-bulk-disable")
                ui.button("删除", icon="delete", on_click=lambda: bulk_action("delete")).props(
                    "outline dense color=negative"
                ).mark("ch-bulk-delete")
                selection = ui.label("").classes("text-sm text-gray-500").mark("ch-selected")
                ui.space()
                ui.button("测试本页全部", icon="network_check", on_click=test_all).props(
                    "outline dense"
                ).mark("ch-test-all")
            with ui.row().classes("w-full items-center gap-3"):
                summary = ui.label("").classes("text-sm text-gray-500").mark("ch-summary")
                tests_done = ui.label("").classes("text-sm").mark("ch-tests-done")

            def select_one(channel_id: int, on: bool) -> None:
                (view.selected.add if on else view.selected.discard)(channel_id)
                selection.text = f"已选 {len(view.selected)} 个" if view.selected else ""

            def select_page(on: bool) -> None:
                for channel in shown:
                    select_one(channel.id, on)
                table.refresh()

            @ui.refreshable
            def table() -> None:
                if not shown:
                    with ui.card().classes("w-full items-center p-8 text-gray-500"):
                        ui.icon("hub", size="40px")
                        if view.q or view.status:
                            ui.label("没有符合条件的渠道。")
                        else:
                            ui.label("还没有渠道。添加一个上游（OpenAI 兼容接口）后，用户即可选择它的模型。")
                    return
                with (
                    ui.card().classes("w-full p-0 table-scroll").mark("ch-table"),
                    ui.grid()
                    .style(f"grid-template-columns: {COLUMNS}")
                    .classes("w-full min-w-[900px] gap-0 items-center text-sm"),
                ):
                    with ui.element("div").classes("px-1 border-b"):
                        ui.checkbox(
                            value=bool(shown) and all(c.id in view.selected for c in shown),
                            on_change=lambda e: select_page(e.value),
                        ).props("dense").mark("ch-select-page")
                    for title in (
                        "名称 / 模型 / 地址",
                        "状态",
                        "最近检测",
                        "延迟",
                        "最近错误",
                        "今日调用",
                        "启用",
                        "操作",
                    ):
                        ui.label(title).classes("px-2 py-2 font-medium text-gray-500 border-b")
                    for channel in shown:
                        tested = view.tests.get(channel.id)
                        with ui.element("div").classes("px-1"):
                            ui.checkbox(
                                value=channel.id in view.selected,
                                on_change=lambda e, i=channel.id: select_one(i, e.value),
                            ).props("dense").mark("ch-select")
                        with ui.column().classes("px-2 py-2 gap-0 min-w-0"):
                            ui.label(channel.name).classes("font-medium break-all").mark("ch-row-name")
                            ui.label(", ".join(channel.models)).classes("text-xs break-all")
                            ui.label(f"{_host(channel.base_url)} · {channel.api_key_masked}").classes(
                                "text-xs text-gray-500 break-words"
                            ).tooltip(f"调用地址：{channel.call_url}")
                            if not channel.api_key_readable:
                                ui.label("API Key 无法解密，请重新填写").classes("text-xs text-negative")
                        status_cell(channel)
                        last_test_cell(channel, tested)
                        latency = (
                            tested.result.latency_ms
                            if tested and tested.result and tested.result.ok
                            else None
                        ) or channel.latency_ms
                        ui.label("—" if latency is None else f"{latency} ms").classes("px-2 py-2").mark(
                            "ch-latency"
                        )
                        error_cell(channel, tested)
                        ui.label(f"{channel.calls_today:,}").classes("px-2 py-2 text-right").mark("ch-calls")
                        with ui.element("div").classes("px-2"):
                            ui.switch(
                                value=channel.is_enabled,
                                on_change=lambda e, c=channel: toggle(c, e.value),
                            ).props("dense").mark("ch-toggle")
                        with ui.row().classes("px-1 gap-0 no-wrap"):
                            ui.button(icon="network_check", on_click=lambda c=channel: test([c.id])).props(
                                "flat round dense"
                            ).tooltip("测试").mark("ch-test")
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

            table()
            with ui.row().classes("w-full items-center gap-3"):
                pager = (
                    ui.pagination(1, 1, direction_links=True, on_change=lambda e: go_to(e.value))
                    .props("max-pages=7 boundary-numbers")
                    .mark("ch-pager")
                )
                ui.space()
                ui.select(
                    {n: f"每页 {n} 条" for n in PAGE_SIZES},
                    value=view.page_size,
                    on_change=lambda e: choose(page_size=e.value),
                ).props("dense outlined").mark("ch-page-size")

            async def go_to(number: int) -> None:
                if number != view.page:
                    view.page = number
                    await reload()

            async def reload() -> None:
                view.loads += 1
                this_load = view.loads
                items, total = await off_loop(load, view)
                pages = max(1, -(-total // view.page_size))
                if view.page > pages:  # the last page emptied (deleted, filtered)
                    view.page = pages
                    items, total = await off_loop(load, view)
                if this_load != view.loads:  # a later search, filter or page has started: it wins
                    return
                shown[:] = items
                pager.max = pages
                pager.value = view.page
                summary.text = f"共 {total:,} 个渠道 · 第 {view.page} / {pages} 页"
                table.refresh()

            await reload()
