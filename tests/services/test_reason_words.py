"""Reason codes in words, in both languages: Chinese by default (what the chat path stores as a channel's
last error), English for a viewer who reads English."""

from __future__ import annotations

import re

from services.i18n import translate
from services.reasons import REASONS, WORDS, in_words

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_reason_has_words_in_both_languages() -> None:
    for reason in REASONS:
        chinese, english = in_words(reason), in_words(reason, language="en")
        assert chinese.startswith(f"{reason}: ") and HAN.search(chinese), reason
        assert english.startswith(f"{reason}: ") and not HAN.search(english), reason
    for key in WORDS.values():
        assert HAN.search(translate(key)) and not HAN.search(translate(key, "en")), key


def test_the_status_leads_and_the_stored_chinese_is_unchanged() -> None:
    assert in_words("http_5xx", 500) == "HTTP 500: 上游服务器出错"
    assert in_words("http_5xx", 500, language="en") == "HTTP 500: The upstream server failed"
    assert (
        in_words("something_new")
        == in_words("something_new", language="en")
        == "something_new: something_new"
    )
