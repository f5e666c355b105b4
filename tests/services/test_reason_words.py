"""Reason codes in words, in both languages: Chinese by default, English for a viewer who reads English;
a channel's last error stored as a code (and the HTTP status) and put in words when read."""

from __future__ import annotations

import re

from services.channel_test import Words, stored_reason
from services.i18n import translate
from services.reasons import CHANNEL_REASONS, REASONS, WORDS, in_words, stored, stored_in_words

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_reason_has_words_in_both_languages() -> None:
    for reason in REASONS + CHANNEL_REASONS:
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


def test_a_stored_last_error_in_each_language() -> None:
    assert stored("http_5xx", 500) == "http_5xx:500" and stored("timeout_connect") == "timeout_connect"
    assert stored_in_words("http_5xx:500") == "HTTP 500: 上游服务器出错"
    assert stored_in_words("http_5xx:500", "en") == "HTTP 500: The upstream server failed"
    assert stored_in_words("timeout_idle", "en") == "timeout_idle: The upstream's answer stalled too long"
    assert stored_in_words("tls:x509", "en") == (
        "tls: TLS certificate check failed (UPSTREAM_CA_BUNDLE can trust a private CA) (x509)"
    )
    assert stored_in_words(None, "en") is None
    # what older versions stored (words in Chinese, a code followed by words, any text): as it is
    old_rows = ("HTTP 500: 上游服务器出错", "timeout_connect: 无法连接上游", "re-test failed", "not_a_code:1")
    for old in old_rows:
        assert stored_in_words(old, "en") == stored_in_words(old) == old


def test_what_a_channel_test_found_is_stored_as_a_code() -> None:
    http = Words("channel_test.plain_failed", {"error": Words("channel_test.http_detail", {"status": 503})})
    assert stored_reason(http) == "http_5xx:503"
    stream = Words("channel_test.stream_failed", {"error": Words("channel_test.no_events")})
    assert stored_reason(stream) == "bad_stream"
    unreachable = Words("channel_test.unreachable", {"reason": "timeout_idle"})
    assert stored_reason(Words("channel_test.plain_failed", {"error": unreachable})) == "timeout_idle"
    assert stored_reason(Words("channel_test.key_undecryptable")) == "key_undecryptable"
    assert stored_reason(Words("channel_test.tls")) == "tls"
