"""Look and feel shared by every page: colours, CSS (animations, bubbles), dark mode."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from nicegui import app, ui

from pages.i18n import t

PRIMARY = "#4f46e5"
POSITIVE = "#15803d"


TAILWIND_CSS = Path(__file__).with_name("tailwind.css")  # compiled ahead of time: tests/tailwind_build.py
ICON_FONT = Path(__file__).with_name("material-icons.woff2")  # cut down: tests/icon_font_build.py
YEAR_SECONDS = 365 * 24 * 3600

# The system's own UI font, as on the platform's native apps; Quasar's body font is Roboto, a 35 KB web
# font on every first load. Roboto is left out of the list on purpose: NiceGUI declares it as a web font,
# so naming it would fetch it (where it is the system font, on Android, ``system-ui`` is Roboto anyway).
FONT_STACK = (
    'system-ui, -apple-system, "Segoe UI", "Helvetica Neue", Arial, "Noto Sans", "PingFang SC", '
    '"Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif'
)

# The app's mark: a speech bubble on the primary colour, inline in every page (no favicon request).
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" '
    f'fill="{PRIMARY}"/><path d="M9 9h14a3 3 0 0 1 3 3v7a3 3 0 0 1-3 3h-7l-5 4v-4H9a3 3 0 0 1-3-3v-7a3 3 '
    '0 0 1 3-3z" fill="#fff"/></svg>'
)


@cache
def _css() -> str:
    return Path(__file__).with_name("theme.css").read_text(encoding="utf-8")


def _serve_for_a_year(path: Path) -> str:
    """Serve ``path`` under a name that changes with its content, so that browsers keep it for a year."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    url = f"/_pyaichat/static/{path.stem}-{digest}{path.suffix}"
    return app.add_static_file(local_file=path, url_path=url, max_cache_age=YEAR_SECONDS)


@cache
def tailwind_url() -> str:
    """The pages' Tailwind CSS (``ui.run`` turns NiceGUI's in-browser Tailwind compiler off)."""
    return _serve_for_a_year(TAILWIND_CSS)


@cache
def icon_font_face() -> str:
    """The Material Icons font cut down to the icons the pages use (tests/icon_font_build.py), declared
    in a ``<style>`` outside the cascade layers: it wins over NiceGUI's declaration of the whole font
    (in its ``base`` layer), which the browser then never fetches."""
    url = _serve_for_a_year(ICON_FONT)
    return (
        '<style>@font-face { font-display: block; font-family: "Material Icons"; font-style: normal; '
        f'font-weight: 400; src: url({url}) format("woff2"); }}</style>'
    )


def font_style() -> str:
    """The body's font, in the head (unlayered, so it wins over Quasar's, before anything is drawn)."""
    return f"<style>body {{ font-family: {FONT_STACK}; }}</style>"


def apply_theme() -> ui.dark_mode:
    """Colours, CSS and the visitor's dark-mode choice (kept across visits)."""
    # positive: green-700, 5:1 against white as the text or the background (Quasar's #21ba45: 2.6:1)
    ui.colors(primary=PRIMARY, positive=POSITIVE)
    ui.add_head_html(f'<link rel="stylesheet" href="{tailwind_url()}">{icon_font_face()}{font_style()}')
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
