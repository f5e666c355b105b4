"""Look and feel shared by every page: colours, CSS (animations, bubbles), dark mode."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from nicegui import app, ui

from pages.i18n import t

PRIMARY = "#4f46e5"
POSITIVE = "#15803d"


@cache
def _css() -> str:
    return Path(__file__).with_name("theme.css").read_text(encoding="utf-8")


def apply_theme() -> ui.dark_mode:
    """Colours, CSS and the visitor's dark-mode choice (kept across visits)."""
    # positive: green-700, 5:1 against white as the text or the background (Quasar's #21ba45: 2.6:1)
    ui.colors(primary=PRIMARY, positive=POSITIVE)
    ui.add_css(_css())
    return ui.dark_mode(value=app.storage.user.get("dark", False))


def _switch_props(on: bool) -> str:
    # a switch to assistive technology, named "Dark mode" (SPEC §5 UI names), its state in aria-checked
    return f"icon={'light_mode' if on else 'dark_mode'} role=switch aria-checked={'true' if on else 'false'}"


def dark_mode_button(dark: ui.dark_mode) -> ui.button:
    def toggle() -> None:
        dark.value = not dark.value
        app.storage.user["dark"] = dark.value
        button.props(_switch_props(bool(dark.value)))

    button = ui.button(on_click=toggle).props(_switch_props(bool(dark.value)))
    button.props(f'flat round dense aria-label="{t("common.dark_mode")}"')
    button.tooltip(t("common.dark_mode_tip")).mark("dark-mode")
    return button
