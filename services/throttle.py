"""Throttles for sign-ins and registrations: a slot is *reserved* before the work it guards.

The old throttle tested the failure counters, checked the password, and counted a failure afterwards:
60 parallel wrong passwords all passed the test before the first failure was counted, and all got a
password check. Now each attempt first takes a slot in every counter that applies (account, IP, …) with
the ``limits`` storage's ``incr``, which is atomic (one Lua ``INCRBY``/``EXPIRE`` in Redis; no ``await``
in ``EventLoopMemoryStorage``) and returns the new count: an attempt whose count passed a limit gives its
slots back and is refused with the wait until that counter's window ends, so of N parallel attempts at
most the limit get through. What the attempt turns out to be decides whether its slots stay: a failed
sign-in keeps them (a counted failure), a successful one gives them back (:meth:`Throttle.release`, an
``incr`` by −1). Counters are fixed windows that start with their first counted attempt.

Races can only refuse, never over-admit: a slot taken for a moment by an attempt about to be refused may
refuse another that would have fit. A release that lands after its window ended (the check outlived the
window) starts the next window at −1: one guess more, in that window only.

While Redis does not answer, the throttles count in this process instead (``StorageCircuit``), so an
outage neither opens the sign-in to unlimited guessing nor locks everybody out. Slots taken in Redis by an
attempt that then fell back stay counted there.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from limits.aio.storage import Storage

from services.errors import RateLimited
from services.limit_backend import LimitBackend, StorageCircuit, StorageUnavailable
from services.limit_storage import EventLoopMemoryStorage

T = TypeVar("T")

LOGIN_WINDOW_SECONDS = 15 * 60
LOGIN_FAILURES_PER_ACCOUNT = 10
LOGIN_FAILURES_PER_IP = 30
REGISTER_WINDOW_SECONDS = 3600
LOGIN_THROTTLED_MESSAGE = "errors.login_throttled"
REGISTER_THROTTLED_MESSAGE = "errors.register_throttled"


@dataclass(frozen=True)
class ThrottleRule:
    key: str
    limit: int
    window_seconds: int

    @property
    def storage_key(self) -> str:
        return f"throttle/{self.key}"


def client_bucket(ip: str) -> str:
    """The address a throttle counts: an IPv4 address, or an IPv6 address's /64 (one subscriber's
    network: counting single IPv6 addresses would give anyone 2^64 fresh ones)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def login_rules(kind: str, account: str, ip: str) -> list[ThrottleRule]:
    """User sign-ins: per account (lockable from anywhere, as any per-account limit) and per IP. The
    admin: per (account, IP), so guesses from elsewhere cannot lock the admin out, and per IP."""
    account = account.strip().lower()
    ip = client_bucket(ip)
    account_key = f"login/{kind}/account/{account}"
    if kind == "admin":
        account_key = f"login/admin/account-ip/{account}|{ip}"
    return [
        ThrottleRule(account_key, LOGIN_FAILURES_PER_ACCOUNT, LOGIN_WINDOW_SECONDS),
        ThrottleRule(f"login/{kind}/ip/{ip}", LOGIN_FAILURES_PER_IP, LOGIN_WINDOW_SECONDS),
    ]


BAD_KEY_WINDOW_SECONDS = 60
BAD_KEYS_PER_IP = 20


def bad_key_rules(ip: str) -> list[ThrottleRule]:
    """Bad personal API keys (``services.identity``): counted per IP (IPv6 per /64) like failed
    sign-ins; past the limit they are answered 429 instead of 401. None of them reaches the database."""
    return [ThrottleRule(f"bad-key/ip/{client_bucket(ip)}", BAD_KEYS_PER_IP, BAD_KEY_WINDOW_SECONDS)]


def register_rules(ip: str, per_hour: int) -> list[ThrottleRule]:
    return [ThrottleRule(f"register/ip/{client_bucket(ip)}", per_hour, REGISTER_WINDOW_SECONDS)]


async def _take(storage: Storage, rules: Sequence[ThrottleRule]) -> float:
    """0 when a slot was taken in every rule's counter, else (nothing kept) the seconds until the
    refusing counter's window ends."""
    taken: list[ThrottleRule] = []
    for rule in rules:
        count = await storage.incr(rule.storage_key, rule.window_seconds)
        taken.append(rule)
        if count > rule.limit:
            for done in taken:
                await storage.incr(done.storage_key, done.window_seconds, amount=-1)
            return max(0.001, await storage.get_expiry(rule.storage_key) - time.time())
    return 0.0


@dataclass(frozen=True)
class Reservation:
    """Slots taken by one attempt; :meth:`Throttle.release` gives them back."""

    storage: Storage
    rules: tuple[ThrottleRule, ...]


class Throttle:
    """Counts in ``shared`` (the Redis storage) while ``circuit`` lets it, else in this process."""

    def __init__(self, shared: Storage | None = None, circuit: StorageCircuit | None = None) -> None:
        self._memory = EventLoopMemoryStorage()
        self._shared = shared
        self._circuit = circuit

    @classmethod
    def for_backend(cls, backend: LimitBackend) -> Throttle:
        if backend.circuit is None:  # memory://: counted in this process anyway
            return cls()
        return cls(backend.storage, backend.circuit)

    async def reserve(self, rules: Sequence[ThrottleRule], message: str) -> Reservation:
        """Take a slot in every rule's counter, or raise RateLimited (with the wait) keeping none."""
        storage: Storage = self._memory
        wait: float | None = None
        if self._shared is not None:
            shared = self._shared
            try:
                wait = await self._shared_call(lambda: _take(shared, rules))
                storage = shared
            except StorageUnavailable:
                pass  # unreachable, frozen or refusing: counted here instead
        if wait is None:
            wait = await _take(self._memory, rules)
        if wait > 0:
            raise RateLimited(message, retry_after=max(1, math.ceil(wait)))
        return Reservation(storage, tuple(rules))

    async def release(self, reservation: Reservation) -> None:
        """Give the slots back (the attempt succeeded); a storage that fails now keeps them counted."""

        async def give_back() -> None:
            for rule in reservation.rules:
                await reservation.storage.incr(rule.storage_key, rule.window_seconds, amount=-1)

        if reservation.storage is self._memory:
            await give_back()
            return
        with contextlib.suppress(StorageUnavailable):
            await self._shared_call(give_back)

    async def _shared_call(self, call: Callable[[], Awaitable[T]]) -> T:
        if self._circuit is not None:
            return await self._circuit.run(call)
        try:
            return await call()
        except Exception:
            raise StorageUnavailable() from None
