"""Pieces the console pages share: the heading row, a date range, and the query / reset buttons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from pages.i18n import t


def page_heading(area: str) -> ui.row:
    """The page's title and its one-line introduction (``admin.<area>.title`` / ``.intro``), in a row
    the page may add its buttons to."""
    with ui.row().classes("w-full items-center") as row:
        ui.label(t(f"admin.{area}.title")).classes("text-xl font-semibold")
        ui.label(t(f"admin.{area}.intro")).classes("text-sm text-gray-500")
    return row


def date_range(prefix: str) -> tuple[ui.input, ui.input]:
    """The start and end date of a filter (markers ``<prefix>-start`` / ``<prefix>-end``)."""
    start = (
        ui.input(t("admin.start_date")).props("type=date dense outlined stack-label").mark(f"{prefix}-start")
    )
    end = ui.input(t("admin.end_date")).props("type=date dense outlined stack-label").mark(f"{prefix}-end")
    return start, end


def query_buttons(prefix: str, apply: Callable[[], Any], reset: Callable[[], Any]) -> None:
    """Query and reset of a filter row (markers ``<prefix>-apply`` / ``<prefix>-reset``)."""
    ui.button(t("admin.query"), icon="search", on_click=apply).props("unelevated").mark(f"{prefix}-apply")
    ui.button(t("admin.reset"), on_click=reset).props("flat").mark(f"{prefix}-reset")
