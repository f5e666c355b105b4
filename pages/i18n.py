"""The page side of ``services.i18n``: the visitor's language and the header's language switch.

The language is the visitor's own choice from the switch (kept with their other page preferences in
``app.storage.user``), else the browser's ``Accept-Language`` of the request that opened the page, else
``zh-CN``. Every text a page shows goes through ``t()``."""

from __future__ import annotations

import copy
from weakref import WeakKeyDictionary

from fastapi import Request
from nicegui import Client, app, ui
from nicegui.language import Language

from services.i18n import FALLBACK, LANGUAGES, is_language, negotiate, translate

STORAGE_KEY = "lang"
# our language codes as the page's <html lang> and Quasar's own texts know them
HTML_LANGUAGES: dict[str, Language] = {"zh-CN": "zh-CN", "en": "en-US"}
_from_browser: WeakKeyDictionary[Client, str] = WeakKeyDictionary()


def _browser_language(client: Client) -> str:
    known = _from_browser.get(client)
    if known is None:
        try:
            header = client.request.headers.get("accept-language")
        except (AttributeError, RuntimeError):  # a client without a request (auto-index, tests)
            header = None
        known = _from_browser[client] = negotiate(header)
    return known


def language() -> str:
    """The language of the page being built or handled now."""
    try:
        chosen = app.storage.user.get(STORAGE_KEY)
    except RuntimeError:  # outside a page's context: no visitor storage
        chosen = None
    if is_language(chosen):
        return str(chosen)
    try:
        client = ui.context.client
    except RuntimeError:
        return FALLBACK
    return _browser_language(client)


def visitor_language(request: Request) -> str:
    """The language of a plain route the pages serve (a download): the visitor's choice, else the
    request's ``Accept-Language``."""
    try:
        chosen = app.storage.user.get(STORAGE_KEY)
    except RuntimeError:  # no visitor storage for this request
        chosen = None
    return str(chosen) if is_language(chosen) else negotiate(request.headers.get("accept-language"))


def t(key: str, /, **fields: object) -> str:
    """The text of ``key`` in the visitor's language."""
    return translate(key, language(), **fields)


def _declare_language(code: str) -> None:
    """The page's ``<html lang>`` (what screen readers and the browser's translation go by) and Quasar's
    own texts in the visitor's language. NiceGUI takes both from the shared page object: this client gets
    its own copy with the visitor's language."""
    try:
        client = ui.context.client
    except RuntimeError:
        return
    wanted = HTML_LANGUAGES.get(code)
    if wanted is not None and client.page.resolve_language() != wanted:
        client.page = copy.copy(client.page)
        client.page.language = wanted


def language_switch() -> ui.button:
    """A header button named "Language" with a menu of our languages, each in its own words
    ("English", "中文"); choosing one keeps it for the visitor and redraws the page in it. Every page has
    one in its header, which also declares the page's language (``<html lang>``)."""
    current = language()
    _declare_language(current)

    def choose(code: str) -> None:
        app.storage.user[STORAGE_KEY] = code
        ui.navigate.reload()

    button = ui.button(icon="translate").props(f'flat round dense aria-label="{t("common.language")}"')
    with button, ui.menu().mark("language-menu"):
        for code, name in LANGUAGES.items():
            item = ui.menu_item(name, on_click=lambda c=code: choose(c)).mark(f"language-{code}")
            if code == current:
                item.props("active")
            item.props(f'lang="{code}"')
    button.tooltip(t("common.language")).mark("language")
    return button


def named_dialog(title: str) -> ui.dialog:
    """A dialog named by its title: what assistive technology announces when it opens."""
    dialog = ui.dialog()
    dialog.props["aria-label"] = title
    return dialog


def named(element: ui.button, key: str) -> ui.button:
    """An icon button's accessible name and tooltip, in the page's language."""
    name = t(key)
    return element.props(f'aria-label="{name}"').tooltip(name)
