"""One catalogue of every text a person reads (pages, dialogs, API error messages), in Chinese and
English. ``zh-CN`` is the fallback; a page follows the visitor's switch, else the browser's
``Accept-Language``; the API follows ``Accept-Language``.

Keys are dotted (``chat.send``); texts may hold ``str.format`` fields (``{count}``). The catalogue is
split by area in ``services/locales/`` (one module per area, each a ``STRINGS`` dict of
key → {language: text}); a key defined twice or a text missing a language fails at import.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

FALLBACK = "zh-CN"
# language → its own name, as the switch shows it
LANGUAGES = {"zh-CN": "中文", "en": "English"}


@cache
def catalogue() -> dict[str, dict[str, str]]:
    from services import locales

    merged: dict[str, dict[str, str]] = {}
    for module in pkgutil.iter_modules(locales.__path__):
        strings: dict[str, dict[str, str]] = importlib.import_module(
            f"{locales.__name__}.{module.name}"
        ).STRINGS
        for key, texts in strings.items():
            if key in merged:
                raise ValueError(f"i18n key {key!r} is defined twice (again in locales/{module.name}.py)")
            missing = set(LANGUAGES) - set(texts)
            if missing:
                raise ValueError(f"i18n key {key!r} has no text for {', '.join(sorted(missing))}")
            merged[key] = texts
    return merged


def translate(key: str, language: str = FALLBACK, /, **fields: object) -> str:
    """The text of ``key`` in ``language`` (the fallback's for a language we do not have)."""
    texts = catalogue()[key]
    text = texts.get(language) or texts[FALLBACK]
    return text.format(**fields) if fields else text


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 q-values), else the
    fallback: ``en-US,en;q=0.9`` → ``en``; ``zh-TW`` → ``zh-CN``; ``fr`` → ``zh-CN``."""
    best, best_q = FALLBACK, 0.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        language = _ours(tag)
        # the earlier of two equal q-values wins (the order the browser lists them in)
        if language is not None and q > 0 and q - position * 1e-6 > best_q:
            best, best_q = language, q - position * 1e-6
    return best


def _ours(tag: str) -> str | None:
    primary = tag.split("-")[0]
    if primary == "en":
        return "en"
    if primary == "zh":
        return "zh-CN"
    return None


def is_language(value: object) -> bool:
    return isinstance(value, str) and value in LANGUAGES
