"""The NiceGUI user interface: thin pages over ``services``, registered by :func:`register_pages`."""

from __future__ import annotations

from app.state import AppState


def register_pages(state: AppState) -> None:
    from nicegui import app

    from pages import admin, auth, chat
    from pages.theme import icon_font_face, tailwind_url

    # Quasar's loading bar runs along the top during every XHR (an image upload, a file download): an
    # unnamed progress bar to assistive technology, and noise on pages that show their own progress
    app.config.quasar_config["loadingBar"]["skipHijack"] = True
    tailwind_url()  # their routes, before the pages'
    icon_font_face()
    chat.register(state)
    auth.register(state)
    admin.register(state)
