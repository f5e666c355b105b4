"""Rules for free text that people type in (names, reasons, filters)."""

from __future__ import annotations

import unicodedata


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character (NUL, escape, line breaks, DEL…): none belongs in a
    name, a model id, a reason or a filter, and some break logs, CSV cells or the databases' drivers."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)
