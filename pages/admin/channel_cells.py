"""The channel table's cells that only show a row: name, status, last test, latency and last error."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from urllib.parse import urlsplit

from nicegui import ui

from app.models import ChannelListItem
from pages.admin.channel_actions import Tested
from pages.i18n import language, t

STATUS_WORDS = {
    status: f"admin.channels.status.{status}" for status in ("enabled", "disabled", "auto_paused")
}


def host(url: str) -> str:
    return urlsplit(url).netloc or url


def when(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(zone):%m-%d %H:%M}"


def name_cell(channel: ChannelListItem) -> None:
    with ui.column().classes("px-2 py-2 gap-0 min-w-0"):
        ui.label(channel.name).classes("font-medium break-all").mark("ch-row-name")
        ui.label(", ".join(channel.models)).classes("text-xs break-all")
        ui.label(f"{host(channel.base_url)} · {channel.api_key_masked}").classes(
            "text-xs text-gray-500 break-words"
        ).tooltip(t("admin.channels.call_url", url=channel.call_url))
        if not channel.api_key_readable:
            ui.label(t("admin.channels.key_unreadable")).classes("text-xs text-negative")


def status_cell(channel: ChannelListItem) -> None:
    color = {"enabled": "text-positive", "auto_paused": "text-negative"}.get(channel.status, "text-gray-500")
    with ui.column().classes("px-2 py-2 gap-0"):
        ui.label(t(STATUS_WORDS[channel.status])).classes(f"font-medium {color}").mark("ch-status")
        if channel.consecutive_failures:
            ui.label(t("admin.channels.failures_in_row", count=channel.consecutive_failures)).classes(
                "text-xs text-negative"
            )


def last_test_cell(channel: ChannelListItem, tested: Tested | None, *, zone: tzinfo) -> None:
    """This page's test of the channel if there was one, else the latest success or failure stored."""
    with ui.column().classes("px-2 py-2 gap-0").mark("ch-last-test"):
        if tested is not None:
            if tested.failure is not None:
                ui.label(tested.failure).classes("text-negative text-xs")
            elif tested.result is None:
                ui.spinner(size="sm")
                ui.label(t("admin.channels.testing")).classes("text-xs text-gray-500")
            elif tested.result.ok:
                ui.label(t("admin.channels.passed")).classes("text-positive font-medium").mark("ch-test-ok")
                ui.label(t("admin.channels.tested_here", when=when(tested.at, zone))).classes(
                    "text-xs text-gray-500"
                )
            else:
                ui.label(t("admin.channels.failed")).classes("text-negative font-medium").mark(
                    "ch-test-failed"
                )
                ui.label(t("admin.channels.tested_here", when=when(tested.at, zone))).classes(
                    "text-xs text-gray-500"
                )
            return
        success, error = channel.last_success_at, channel.last_error_at
        if success is None and error is None:
            ui.label(t("admin.channels.untested")).classes("text-gray-500")
            return
        failed = error is not None and (success is None or error > success)
        ui.label(t("admin.channels.failed" if failed else "admin.channels.succeeded")).classes(
            "text-negative font-medium" if failed else "text-positive font-medium"
        )
        ui.label(when(error if failed else success, zone)).classes("text-xs text-gray-500")


def latency_cell(channel: ChannelListItem, tested: Tested | None) -> None:
    """A passing test from this page wins over the stored latency."""
    latency = (
        tested.result.latency_ms if tested and tested.result and tested.result.ok else None
    ) or channel.latency_ms
    ui.label("—" if latency is None else f"{latency} ms").classes("px-2 py-2").mark("ch-latency")


def error_cell(channel: ChannelListItem, tested: Tested | None, *, zone: tzinfo) -> None:
    if tested is not None and tested.result is not None and not tested.result.ok:
        text = tested.result.error_text(language()) or t("admin.channels.failure")
    elif tested is not None and tested.result is not None:
        text = t("admin.channels.test_ok", ms=tested.result.latency_ms)
    else:
        text = channel.last_error or ""
    label = ui.label(text or "—").classes("px-2 py-2 text-xs break-words min-w-0").mark("ch-last-error")
    if text and not (tested is not None and tested.result is not None and tested.result.ok):
        label.classes("text-negative")
    if channel.last_error_at and not tested:
        label.tooltip(t("admin.channels.last_error_at", when=when(channel.last_error_at, zone)))
