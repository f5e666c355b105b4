"""The HTTP client for upstream channels: aiohttp, with its C parser and connection pool, plus
aiohttp-socks for SOCKS proxies. Every lower-layer failure is turned into :class:`UpstreamFailure` with
a reason code (services/reasons.py) in exactly one place, :func:`_reason_of`; the chat service never sees
a library's exception type.

Why aiohttp (docs/performance.md has the figures): the previous home-made transport under httpx was
written because httpx's own transport (httpcore + h11) cost about half of the gateway's CPU per call;
aiohttp is as lean, is maintained, already ships with NiceGUI, and offers proxies (HTTP CONNECT and
plain) and TLS contexts. Proxies per call: the environment's (``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``ALL_PROXY`` / ``NO_PROXY``, read once at start), a channel's own, or none.
"""

from __future__ import annotations

import os
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import certifi
import orjson
from aiohttp_socks import ProxyConnector, ProxyType
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError
from yarl import URL

from services.upstream_errors import AnswerTooLarge, UpstreamFailure, UpstreamTimeouts

MIB = 1024 * 1024
POOL_SIZE = 512
SOCKS_SCHEMES = ("socks5", "socks5h")


def build_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Public roots (certifi), plus the PEM file ``ca_bundle`` when given: a private CA is trusted in
    addition to, never instead of, the public ones."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def _reason_of(exc: BaseException, *, proxied: bool) -> str:
    """The one place where the libraries' exceptions become reason codes. Order matters: aiohttp's
    proxy, certificate and timeout errors are subclasses of its connection errors."""
    if isinstance(exc, (ProxyError, ProxyConnectionError, ProxyTimeoutError)):
        return "proxy"
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return "proxy"
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return "tls"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "proxy" if proxied else "timeout_connect"
    if isinstance(exc, (aiohttp.SocketTimeoutError, TimeoutError)):
        return "timeout_idle"
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, name not resolved, unreachable host
        return "proxy" if proxied else "timeout_connect"
    return "bad_stream"  # disconnected mid-answer, a malformed response, a payload error


def _failure(exc: BaseException, *, proxied: bool) -> UpstreamFailure:
    """``exc`` as the failure the chat service sees. A connection that could not be made without any
    deadline running out (refused, no such host) is ``timeout_connect`` as SPEC §5 names it, but its
    call is logged ``upstream_error``, not ``timeout`` (docs/api.md#reason-codes)."""
    reason = _reason_of(exc, proxied=proxied)
    timed_out = reason.startswith("timeout_") and isinstance(exc, TimeoutError)
    return UpstreamFailure(reason, type(exc).__name__, timed_out=timed_out)


class _Route:
    """Where a call goes: the session to use and the ``proxy`` arguments of an HTTP(S) proxy."""

    __slots__ = ("headers", "proxied", "proxy", "session")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        proxy: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        proxied: bool = False,
    ) -> None:
        self.session, self.proxy, self.headers, self.proxied = session, proxy, headers, proxied


class UpstreamClient:
    """The one client every upstream call shares. No cookie jar (an upstream's cookies are not replayed
    on later calls, which come from other users), no redirects, no decompression: answers are asked for
    uncompressed (``Accept-Encoding: identity``), since a compressed one could expand a thousandfold in a
    single read, past any cap checked after it. What an answer may make the process hold is bounded by
    ``max_answer_bytes``: a whole non-streamed answer (:meth:`read_answer`) or one line of a stream
    (:meth:`lines`).

    Sessions are made on first use (aiohttp binds them to the running loop): one for direct calls and
    HTTP(S) proxies, one per SOCKS proxy URL.
    """

    def __init__(
        self,
        timeouts: UpstreamTimeouts,
        *,
        max_answer_bytes: int = 16 * MIB,
        ca_bundle: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.max_answer_bytes = max_answer_bytes
        self._idle = timeouts.idle
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.idle
        )
        self._ssl = build_ssl_context(ca_bundle)
        self._env_proxies = _proxies_from(os.environ if environ is None else environ)
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        # parsed once per channel URL: a URL object keeps its derived parts (host, port, origin), which
        # aiohttp reads several times per request, while one made from a string each call recomputes them
        self._urls: dict[str, URL] = {}
        self.open_responses = 0  # answers handed out and not yet closed (the cancellation tests count it)

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def _session(self, key: str) -> aiohttp.ClientSession:
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector: aiohttp.BaseConnector
            if key:
                proxy_type, host, port, user, password, rdns = _socks(key)
                connector = ProxyConnector(
                    proxy_type=proxy_type,
                    host=host,
                    port=port,
                    username=user,
                    password=password,
                    rdns=rdns,
                    ssl=self._ssl,
                    limit=POOL_SIZE,
                    keepalive_timeout=30,
                )
            else:
                connector = aiohttp.TCPConnector(
                    ssl=self._ssl, limit=POOL_SIZE, limit_per_host=0, keepalive_timeout=30
                )
            session = self._sessions[key] = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                headers={"Accept-Encoding": "identity"},
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )
        return session

    def proxy_for(self, url: str, channel_proxy: str | None) -> str | None:
        """The proxy URL a call to ``url`` goes through: the channel's own ("" = none), else the
        environment's for the URL's scheme (or ``ALL_PROXY``) unless ``NO_PROXY`` names the host."""
        if channel_proxy is not None:
            return channel_proxy or None
        if not self._env_proxies:
            return None
        parts = urlsplit(url)
        if urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            parts.hostname or "", self._env_proxies
        ):
            return None
        return self._env_proxies.get(parts.scheme) or self._env_proxies.get("all")

    def _route(self, url: str, channel_proxy: str | None) -> _Route:
        proxy = self.proxy_for(url, channel_proxy)
        if proxy is None:
            return _Route(self._session(""))
        parts = urlsplit(proxy)
        if parts.scheme in SOCKS_SCHEMES:
            return _Route(self._session(proxy), proxied=True)
        headers = None
        if parts.username is not None:
            login, password = unquote(parts.username), unquote(parts.password or "")
            headers = {"Proxy-Authorization": aiohttp.encode_basic_auth(login, password)}
            proxy = proxy.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)
        return _Route(self._session(""), proxy, headers, proxied=True)

    async def post_json(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], *, proxy: str | None = None
    ) -> aiohttp.ClientResponse:
        """POST ``payload`` as JSON and return the response once its head has arrived; the caller reads
        the body (:meth:`read_answer`, :meth:`lines`) and :meth:`close`\\ s it. ``proxy``: the channel's
        own proxy URL, ``""`` for none, None for the environment's."""
        route = self._route(url, proxy)
        data = orjson.dumps(payload)
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 1024:  # channels come and go; keep the memory bounded
                self._urls.clear()
            parsed = self._urls[url] = URL(url)
        try:
            response = await route.session.post(
                parsed,
                data=data,
                headers={"Content-Type": "application/json", **headers},
                proxy=route.proxy,
                proxy_headers=route.headers,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError, ProxyError, TimeoutError) as exc:
            raise _failure(exc, proxied=route.proxied) from exc
        self.open_responses += 1
        response._pyaichat_counted = True  # type: ignore[attr-defined]
        return response

    def close(self, response: aiohttp.ClientResponse) -> None:
        """Idempotent. A response read to its end has given its connection back to the pool; one closed
        earlier (a client gone, a failure) closes its connection, which ends the upstream request."""
        if getattr(response, "_pyaichat_counted", False):
            response._pyaichat_counted = False  # type: ignore[attr-defined]
            self.open_responses -= 1
        response.close()

    async def read_answer(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body; :class:`AnswerTooLarge` as soon as it is known to be over the cap (from its
        ``Content-Length`` before a byte is read)."""
        limit = self.max_answer_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            raise AnswerTooLarge(f"an answer of {declared} bytes, over {limit}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise AnswerTooLarge(f"an answer over {limit} bytes")
                chunks.append(chunk)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _failure(exc, proxied=False) from exc
        return b"".join(chunks)

    async def lines(self, response: aiohttp.ClientResponse) -> AsyncIterator[str]:
        """The body's lines (an SSE stream), each at most ``max_answer_bytes`` (:class:`AnswerTooLarge`).

        A line still unfinished ``idle`` seconds after the previous one ended is a timeout even while
        bytes trickle in: the socket's read timeout only bounds each silence."""
        limit, idle = self.max_answer_bytes, self._idle
        partial = bytearray()
        line_ended = time.monotonic()
        chunks = response.content.iter_any()
        while True:
            try:
                chunk = await anext(chunks, None)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise _failure(exc, proxied=False) from exc
            if chunk is None:
                break
            if b"\n" not in chunk and b"\r" not in chunk:  # the middle of a line
                partial += chunk
                if len(partial) > limit:
                    raise AnswerTooLarge(f"a line over {limit} bytes")
                if time.monotonic() - line_ended > idle:
                    raise UpstreamFailure("timeout_idle", f"no line completed within {idle:g} s")
                continue
            if partial:
                partial += chunk
                chunk = bytes(partial)
                partial.clear()
            pieces = chunk.splitlines()
            if not chunk.endswith((b"\n", b"\r")):
                partial += pieces.pop()
            if (pieces and len(pieces[0]) > limit) or len(partial) > limit:
                raise AnswerTooLarge(f"a line over {limit} bytes")
            line_ended = time.monotonic()
            for piece in pieces:
                yield piece.decode("utf-8", "replace")
        if partial:
            yield partial.decode("utf-8", "replace")


def _proxies_from(env: Mapping[str, str]) -> dict[str, str]:
    """What ``urllib.request.getproxies_environment`` reads, from a given mapping (tests)."""
    proxies: dict[str, str] = {}
    for name, value in env.items():
        lower = name.lower()
        if value and lower.endswith("_proxy"):
            key = lower[: -len("_proxy")]
            if name == lower or key not in proxies:
                proxies[key] = value
    return proxies


def _socks(url: str) -> tuple[ProxyType, str, int, str | None, str | None, bool]:
    parts = urlsplit(url)
    return (
        ProxyType.SOCKS5,
        parts.hostname or "",
        parts.port or 1080,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        parts.scheme == "socks5h",  # the proxy resolves the host name
    )
