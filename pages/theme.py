"""Look and feel shared by every page: colours, CSS (animations, bubbles), dark mode."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from nicegui import app, ui

PRIMARY = "#4f46e5"


@cache
def _css() -> str:
    return Path(__file__).with_name("theme.css").read_text(encoding="utf-8")


def apply_theme() -> ui.dark_mode:
    """Colours, CSS and the visitor's dark-mode choice (kept across visits)."""
    ui.colors(primary=PRIMARY)
    ui.add_css(_css())
    return ui.dark_mode(value=app.storage.user.get("dark", False))


def dark_mode_button(dark: ui.dark_mode) -> ui.button:
    def toggle() -> None:
        dark.value = not dark.value
        app.storage.user["dark"] = dark.value
        button.props(f"icon={'light_mode' if dark.value else 'dark_mode'}")

    button = ui.button(icon="light_mode" if dark.value else "dark_mode", on_click=toggle)
    button.props("flat round dense").tooltip("切换深色模式")
    return button
