"""services.i18n: the catalogue is whole, and a browser's Accept-Language picks our language."""

from __future__ import annotations

import pytest

from services import i18n


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en-US,en;q=0.9", "en"),
        ("en", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
        ("fr", "zh-CN"),
        ("", "zh-CN"),
        (None, "zh-CN"),
        ("en;q=0.2,zh;q=0.8", "zh-CN"),
        ("en;q=0, zh", "zh-CN"),
        ("zh;q=0.5,en;q=0.5", "zh-CN"),  # equal weights: the browser's order
        ("en;q=0.5,zh;q=0.5", "en"),
        ("en;q=abc,zh;q=0.1", "zh-CN"),  # a broken weight counts as 0
        ("*", "zh-CN"),
        (";;;,,,", "zh-CN"),
    ],
)
def test_accept_language_picks_ours(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def test_every_key_has_every_language_and_formats() -> None:
    strings = i18n.catalogue()
    assert strings
    for key, texts in strings.items():
        assert set(texts) >= set(i18n.LANGUAGES), key
        assert all(text.strip() for text in texts.values()), key


def test_translate_falls_back_and_fills_fields() -> None:
    assert i18n.translate("common.dark_mode", "en") == "Dark mode"
    assert i18n.translate("common.dark_mode", "xx") == "深色模式"
    assert i18n.translate("common.dark_mode") == "深色模式"
    with pytest.raises(KeyError):
        i18n.translate("no.such.key", "en")


def test_every_audit_action_and_group_has_its_words() -> None:
    from services.audit import ACTIONS, GROUPS

    words = i18n.catalogue()
    missing = [f"admin.audit.action.{a}" for a in ACTIONS if f"admin.audit.action.{a}" not in words]
    missing += [f"admin.audit.group.{g}" for g in GROUPS if f"admin.audit.group.{g}" not in words]
    assert not missing
