"""``/admin/channels``: the channel table in server-side pages (search, status filter, sort), add/edit dialog,
bulk enable/disable/delete, and connectivity tests whose results stay in the table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from app.models import ChannelListItem, ChannelPublic
from app.state import AppState
from pages.admin.channel_actions import ChannelActions, Tested, View
from pages.admin.channel_cells import (
    STATUS_WORDS,
    error_cell,
    last_test_cell,
    latency_cell,
    name_cell,
    status_cell,
)
from pages.admin.channel_form import ChannelForm, all_errors
from pages.admin.frame import admin_frame, page_actor
from pages.admin.widgets import page_heading
from pages.forms import FormError
from pages.i18n import language, named_dialog, t
from pages.threads import PAGE_BUILD_SECONDS, off_loop

COLUMNS = "40px minmax(150px,1.6fr) 96px minmax(130px,1fr) 76px minmax(170px,1.8fr) 72px 64px 150px"
STATUS_FILTER = {
    "": "admin.channels.all_statuses",
    **{status: STATUS_WORDS[status] for status in ("enabled", "auto_paused", "disabled")},
}
SORTS = {
    "id": "admin.channels.sort.id",
    "-id": "admin.channels.sort.desc_id",
    "name": "admin.channels.sort.name",
    "-priority": "admin.channels.sort.desc_priority",
    "status": "admin.channels.sort.status",
    "latency_ms": "admin.channels.sort.latency_ms",
    "-latency_ms": "admin.channels.sort.desc_latency_ms",
    "-last_error_at": "admin.channels.sort.desc_last_error_at",
    "-consecutive_failures": "admin.channels.sort.desc_consecutive_failures",
}
PAGE_SIZES = [20, 50, 100]
TEST_CONCURRENCY = 4  # "test all" probes this many channels at a time


def register(state: AppState) -> None:
    zone = state.settings.zone
    actions = ChannelActions(state)

    @ui.page("/admin/channels", title="pyaichat", response_timeout=PAGE_BUILD_SECONDS)
    async def channels_page() -> None:
        async with admin_frame(state, "admin.nav.channels", "/admin/channels") as content:
            if content is None:
                return
            view = View(language=language())
            shown: list[ChannelListItem] = []

            def open_editor(channel: ChannelPublic | None = None) -> None:
                title = t("admin.channels.edit" if channel else "admin.channels.add")
                with named_dialog(title) as dialog, ui.card().classes("w-[min(620px,96vw)] gap-2"):
                    ui.label(title).classes("text-lg font-semibold")
                    form = ChannelForm(channel)
                    form.build()
                    error = FormError("ch-error", classes="whitespace-pre-line")

                    async def submit() -> None:
                        form.clear_errors()
                        if (actor := await page_actor(state)) is None:
                            return
                        try:
                            if not await error.attempt(
                                lambda: off_loop(
                                    actions.save,
                                    form.data(),
                                    channel.id if channel else None,
                                    actor,
                                    view.language,
                                )
                            ):
                                return
                        except ValidationError as exc:
                            form.show_errors(exc)
                            error.say(all_errors(exc, form.missing()))
                            return
                        ui.notify(t("admin.saved"), type="positive")
                        dialog.delete()  # with its inputs: the plain key leaves the page once stored
                        await reload()

                    with ui.row().classes("w-full justify-end"):
                        ui.button(t("admin.cancel"), on_click=dialog.delete).props("flat")
                        ui.button(t("admin.save"), on_click=submit).props("unelevated").mark("ch-save")
                dialog.on("hide", dialog.delete)
                dialog.open()

            def confirm(title: str, note: str, action: Any, label: str = "admin.delete") -> None:
                with named_dialog(title) as dialog, ui.card():
                    ui.label(title).classes("text-lg font-semibold")
                    ui.label(note).classes("text-gray-500")

                    async def go() -> None:
                        dialog.close()  # deleted after the action, which runs in this dialog's context
                        try:
                            await action()
                        finally:
                            dialog.delete()

                    with ui.row().classes("w-full justify-end"):
                        ui.button(t("admin.cancel"), on_click=dialog.delete).props("flat")
                        ui.button(t(label), on_click=go).props("unelevated color=negative").mark(
                            "ch-confirm-delete"
                        )
                dialog.on("hide", dialog.delete)
                dialog.open()

            def confirm_delete(channel: ChannelPublic) -> None:
                async def do_delete() -> None:
                    if (actor := await page_actor(state)) is None:
                        return
                    await off_loop(actions.remove, channel.id, actor)
                    view.selected.discard(channel.id)
                    ui.notify(t("admin.channels.deleted"), type="positive")
                    await reload()

                confirm(
                    t("admin.channels.delete_question", name=channel.name),
                    t("admin.channels.delete_note"),
                    do_delete,
                )

            async def toggle(channel: ChannelPublic, value: bool) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                await off_loop(actions.save, {"is_enabled": value}, channel.id, actor, view.language)
                ui.notify(
                    t(
                        "admin.channels.now_enabled" if value else "admin.channels.now_disabled",
                        name=channel.name,
                    )
                )
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
                        view.tests[channel_id] = await actions.run_test(channel_id, actor)

                names = {channel.id: channel.name for channel in shown}
                await asyncio.gather(*(one(channel_id) for channel_id in channel_ids))
                for channel_id in channel_ids:  # a channel gone meanwhile leaves the table: said once here
                    if (failure := view.tests[channel_id].failure) is not None:
                        ui.notify(
                            t(
                                "admin.channels.test_failure",
                                name=names.get(channel_id, channel_id),
                                failure=failure,
                            ),
                            type="negative",
                        )
                await reload()  # a passing test resumes an auto-paused channel; latency and errors change

            async def test_all() -> None:
                ids = [channel.id for channel in shown]
                if ids:
                    await test(ids)
                    passed = sum(
                        1 for i in ids if (done := view.tests.get(i)) and done.result and done.result.ok
                    )
                    tests_done.text = t("admin.channels.tests_done", passed=passed, count=len(ids))

            async def resume(channel: ChannelPublic) -> None:
                if (actor := await page_actor(state)) is None:
                    return
                await off_loop(actions.resume_now, channel.id, actor)
                ui.notify(t("admin.channels.resumed", name=channel.name), type="positive")
                await reload()

            async def bulk_action(action: str) -> None:
                ids = sorted(view.selected)
                if not ids:
                    ui.notify(t("admin.channels.select_first"))
                    return

                async def go() -> None:
                    if (actor := await page_actor(state)) is None:
                        return
                    done = await off_loop(actions.bulk, ids, action, actor)
                    ui.notify(t(f"admin.channels.bulk.{action}", count=done), type="positive")
                    view.selected.clear()
                    selection.text = ""
                    await reload()

                if action == "delete":
                    confirm(
                        t("admin.channels.bulk_delete_question", count=len(ids)),
                        t("admin.channels.bulk_delete_note"),
                        go,
                    )
                else:
                    await go()

            with page_heading("channels"):
                ui.space()
                ui.button(t("admin.channels.add"), icon="add", on_click=lambda: open_editor()).props(
                    "unelevated"
                ).mark("add-channel")

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
                    ui.input(t("admin.channels.search"))
                    .props("dense outlined clearable debounce=400")
                    .classes("min-w-[200px] grow")
                    .mark("ch-search")
                )
                query.on("keydown.enter", search)
                query.on("clear", search)
                query.on_value_change(search)
                ui.select(
                    {status: t(key) for status, key in STATUS_FILTER.items()},
                    value="",
                    label=t("admin.channels.status_label"),
                    on_change=lambda e: choose(status=e.value),
                ).props("dense outlined").classes("min-w-[120px]").mark("ch-status-filter")
                ui.select(
                    {sort: t(key) for sort, key in SORTS.items()},
                    value="id",
                    label=t("admin.users.sort"),
                    on_change=lambda e: choose(sort=e.value),
                ).props("dense outlined").classes("min-w-[150px]").mark("ch-sort")
            with ui.row().classes("w-full items-center gap-2"):
                ui.button(
                    t("admin.channels.enable"), icon="check_circle", on_click=lambda: bulk_action("enable")
                ).props("outline dense").mark("ch-bulk-enable")
                ui.button(
                    t("admin.channels.disable"), icon="block", on_click=lambda: bulk_action("disable")
                ).props("outline dense").mark("ch-bulk-disable")
                ui.button(t("admin.delete"), icon="delete", on_click=lambda: bulk_action("delete")).props(
                    "outline dense color=negative"
                ).mark("ch-bulk-delete")
                selection = ui.label("").classes("text-sm text-gray-500").mark("ch-selected")
                ui.space()
                ui.button(t("admin.channels.test_all"), icon="network_check", on_click=test_all).props(
                    "outline dense"
                ).mark("ch-test-all")
            with ui.row().classes("w-full items-center gap-3"):
                summary = ui.label("").classes("text-sm text-gray-500").mark("ch-summary")
                tests_done = ui.label("").classes("text-sm").mark("ch-tests-done")

            def select_one(channel_id: int, on: bool) -> None:
                (view.selected.add if on else view.selected.discard)(channel_id)
                selection.text = (
                    t("admin.channels.selected", count=len(view.selected)) if view.selected else ""
                )

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
                            ui.label(t("admin.channels.none_match"))
                        else:
                            ui.label(t("admin.channels.none"))
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
                        ).props(f'dense aria-label="{t("admin.channels.select_all")}"').mark("ch-select-page")
                    for title in (
                        "name",
                        "status",
                        "checked",
                        "latency",
                        "error",
                        "calls",
                        "enabled",
                        "actions",
                    ):
                        ui.label(t(f"admin.channels.col.{title}")).classes(
                            "px-2 py-2 font-medium text-gray-500 border-b"
                        )
                    for channel in shown:
                        tested = view.tests.get(channel.id)
                        with ui.element("div").classes("px-1"):
                            ui.checkbox(
                                value=channel.id in view.selected,
                                on_change=lambda e, i=channel.id: select_one(i, e.value),
                            ).props(
                                f'dense aria-label="{t("admin.channels.select", name=channel.name)}"'
                            ).mark("ch-select")
                        name_cell(channel)
                        status_cell(channel)
                        last_test_cell(channel, tested, zone=zone)
                        latency_cell(channel, tested)
                        error_cell(channel, tested, zone=zone)
                        ui.label(f"{channel.calls_today:,}").classes("px-2 py-2 text-right").mark("ch-calls")
                        with ui.element("div").classes("px-2"):
                            ui.switch(
                                value=channel.is_enabled,
                                on_change=lambda e, c=channel: toggle(c, e.value),
                            ).props(
                                f'dense aria-label="{t("admin.channels.enabled_of", name=channel.name)}"'
                            ).mark("ch-toggle")
                        with ui.row().classes("px-1 gap-0 no-wrap"):
                            ui.button(icon="network_check", on_click=lambda c=channel: test([c.id])).props(
                                f'flat round dense aria-label="{t("admin.channels.test")}"'
                            ).tooltip(t("admin.channels.test")).mark("ch-test")
                            if channel.status == "auto_paused":
                                resume_words = t("admin.channels.resume")
                                ui.button(icon="play_arrow", on_click=lambda c=channel: resume(c)).props(
                                    f'flat round dense color=positive aria-label="{resume_words}"'
                                ).tooltip(resume_words).mark("ch-resume")
                            ui.button(icon="edit", on_click=lambda c=channel: open_editor(c)).props(
                                f'flat round dense aria-label="{t("admin.channels.edit_button")}"'
                            ).tooltip(t("admin.channels.edit_button")).mark("ch-edit")
                            ui.button(icon="delete", on_click=lambda c=channel: confirm_delete(c)).props(
                                f'flat round dense color=negative aria-label="{t("admin.delete")}"'
                            ).tooltip(t("admin.delete")).mark("ch-delete")

            table()
            with ui.row().classes("w-full items-center gap-3"):
                pager = (
                    ui.pagination(1, 1, direction_links=True, on_change=lambda e: go_to(e.value))
                    .props("max-pages=7 boundary-numbers")
                    .mark("ch-pager")
                )
                ui.space()
                ui.select(
                    {n: t("admin.logs.per_page", count=n) for n in PAGE_SIZES},
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
                items, total = await off_loop(actions.load, view)
                pages = max(1, -(-total // view.page_size))
                if view.page > pages:  # the last page emptied (deleted, filtered)
                    view.page = pages
                    items, total = await off_loop(actions.load, view)
                if this_load != view.loads:  # a later search, filter or page has started: it wins
                    return
                shown[:] = items
                pager.max = pages
                pager.value = view.page
                summary.text = t("admin.channels.total", count=f"{total:,}", page=view.page, pages=pages)
                table.refresh()

            await reload()
