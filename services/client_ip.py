"""Which address a request comes from: the TCP peer, unless that peer is a trusted proxy.

The request gate (``app/api/gate.py``, in front of the API and the pages alike) decides it once per
request with :func:`decide_client_ip` and leaves it in the ASGI scope; everything after the gate reads it
with :func:`client_ip`. Both work on the plain ASGI scope, so this module knows no web framework.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SCOPE_KEY = "client_ip"  # in the scope's ``state`` (``request.state.client_ip`` in Starlette)
UNKNOWN = "unknown"


def parse_ip(text: str) -> Address | None:
    """The address in ``text`` (IPv4-mapped IPv6 as IPv4), or None when it is not one. An IPv6 zone id
    (``fe80::1%eth0``) is not accepted: it is free text a forwarded hop could fill with anything (a NUL,
    300 characters), and one address would get as many rate-limit keys as zone names."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def resolve_client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The peer, or, when the peer is a trusted proxy, the rightmost untrusted ``X-Forwarded-For`` hop.

    Hops are read right to left because only the ones appended by our own proxies can be believed; a
    malformed hop ends the walk at the last trusted address. The answer is always an address in its
    canonical text or ``unknown`` (a peer that is no address, e.g. a Unix socket): the call log, the
    limits and the CSV export rely on that.
    """
    peer_address = parse_ip(peer or "")
    if peer_address is None:
        return UNKNOWN
    if not trusted or not forwarded_for or not _trusted(peer_address, trusted):
        return str(peer_address)
    current = peer_address
    for hop in reversed(forwarded_for.split(",")):
        address = parse_ip(hop)
        if address is None:
            return str(current)
        current = address
        if not _trusted(address, trusted):
            return str(address)
    return str(current)


def decide_client_ip(scope: Mapping[str, Any], trusted: Sequence[Network]) -> str:
    """The gate's decision for a request: its TCP peer and ``X-Forwarded-For`` headers (all of them,
    joined in order) through :func:`resolve_client_ip`."""
    forwarded = [
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
    ]
    return resolve_client_ip(_peer(scope), ",".join(forwarded) or None, trusted)


def client_ip(scope: Mapping[str, Any]) -> str:
    """The address the gate decided for this request (the one every limit, block and log row uses); the
    TCP peer for a request that did not pass the gate."""
    decided = scope.get("state", {}).get(SCOPE_KEY)
    return decided if isinstance(decided, str) else resolve_client_ip(_peer(scope), None, ())


def _peer(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def peer_is_trusted_proxy(scope: Mapping[str, Any], trusted: Sequence[Network]) -> bool:
    """Whether the request's TCP peer is one of ``TRUSTED_PROXIES`` (whose forwarded headers count)."""
    peer = parse_ip(_peer(scope) or "")
    return peer is not None and _trusted(peer, trusted)
