from __future__ import annotations

import ipaddress

import pytest

from services.client_ip import SCOPE_KEY, client_ip, decide_client_ip, resolve_client_ip
from services.errors import InvalidInput
from services.ip_block import normalize_rule

TRUSTED = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        (
            "127.0.0.1",
            "203.0.113.9",
            [],
            "127.0.0.1",
        ),  # no trusted proxies: header ignored, even from loopback
        ("198.51.100.1", "203.0.113.9", TRUSTED, "198.51.100.1"),  # peer not trusted: header ignored
        ("127.0.0.1", "203.0.113.9", TRUSTED, "203.0.113.9"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.1.1", TRUSTED, "203.0.113.9"),  # rightmost untrusted hop
        ("127.0.0.1", "10.2.2.2, 10.1.1.1", TRUSTED, "10.2.2.2"),  # all trusted: the leftmost
        ("127.0.0.1", "garbage, 10.1.1.1", TRUSTED, "10.1.1.1"),  # a malformed hop stops the walk
        ("127.0.0.1", "::ffff:203.0.113.9", TRUSTED, "203.0.113.9"),  # IPv4-mapped IPv6 as IPv4
        ("::ffff:127.0.0.1", "2001:db8::1", TRUSTED, "2001:db8::1"),
        ("127.0.0.1", "", TRUSTED, "127.0.0.1"),
        ("2001:DB8:0:0::1", "", [], "2001:db8::1"),  # canonical text
        ("/run/pyaichat.sock", "203.0.113.9", TRUSTED, "unknown"),  # a peer that is no address
        ('=HYPERLINK("x")', "", [], "unknown"),  # whatever a server reports, the log holds no text
        (None, None, [], "unknown"),
        ("127.0.0.1", "fe80::1%\x00x, 10.1.1.1", TRUSTED, "10.1.1.1"),  # a zone id: not an address here
        ("127.0.0.1", "fe80::1%" + "a" * 300, TRUSTED, "127.0.0.1"),
        ("fe80::1%eth0", "", [], "unknown"),
    ],
)
def test_resolve_client_ip(peer: str | None, xff: str | None, trusted: list, expected: str) -> None:
    assert resolve_client_ip(peer, xff, trusted) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.0/24", "192.168.1.0/24"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
    ],
)
def test_normalize_rule(text: str, expected: str) -> None:
    assert normalize_rule(text) == expected


@pytest.mark.parametrize("text", ["10.0.0.0/33", "abc", "", "1.2.3", "300.1.1.1", "10.0.0.0/-1", "::/129"])
def test_invalid_rules(text: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_rule(text)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("192.168.1.77/24", "192.168.1.0/24"),
        ("127.0.0.1/0", "0.0.0.0/0"),
        ("2001:db8::1/32", "2001:db8::/32"),
    ],
)
def test_a_range_with_host_bits_is_refused_naming_the_network_meant(text: str, meant: str) -> None:
    with pytest.raises(InvalidInput, match=f"主机位不为零：是指 {meant} 吗"):
        normalize_rule(text)


@pytest.mark.parametrize("text", ["0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96"])
def test_a_range_of_everyone_needs_confirming(text: str) -> None:
    with pytest.raises(InvalidInput, match="confirm_all"):
        normalize_rule(text)
    assert normalize_rule(text, confirm_all=True).endswith("/0")


def test_the_gate_decides_from_the_scope_and_everyone_reads_that_decision() -> None:
    scope = {
        "type": "http",
        "client": ("127.0.0.1", 50000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9, 10.1.1.1")],
    }
    assert decide_client_ip(scope, TRUSTED) == "203.0.113.9"  # every header, joined in order
    assert decide_client_ip(scope, []) == "127.0.0.1"
    assert client_ip(scope) == "127.0.0.1"  # not through the gate: the TCP peer
    scope["state"] = {SCOPE_KEY: decide_client_ip(scope, TRUSTED)}
    assert client_ip(scope) == "203.0.113.9"
    assert client_ip({"type": "http"}) == "unknown"
