"""The IP block list (addresses and CIDR ranges) and the record of blocked attempts.

The list is cached in memory (services/refresh.py): reloaded at once after a change on any instance,
and never used for a decision when older than its period. Attempts are aggregated in memory and
written once a second as one row per (ip, path, rule) with a hit count, and the table is capped, so a
flood cannot grow it without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import BlockedAttempt, BlockedIP, utcnow
from services import audit
from services.audit import Actor
from services.client_ip import Network, parse_ip
from services.errors import Conflict, InvalidInput, NotFound
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads
from services.stats_counters import BLOCKED, DailyCounters
from services.text import has_control_characters

log = logging.getLogger("pyaichat.ip_block")
MAX_ATTEMPT_ROWS = 10_000
FLUSH_INTERVAL_SECONDS = 1.0


def normalize_rule(text: str, *, confirm_all: bool = False) -> str:
    """The canonical form of an address or CIDR (``10.0.0.0/8``, ``2001:db8::/32``); raises InvalidInput.

    A range with host bits set (``127.0.0.1/0``, ``10.1.2.3/8``) is refused with the network it would
    have meant: taken as written it is often a typo that blocks far more than intended. A ``/0`` range
    (every IPv4 or every IPv6 user) needs ``confirm_all``.
    """
    candidate = text.strip()
    if not candidate:
        raise InvalidInput("errors.ip_empty")
    if "/" in candidate:
        try:
            network = ipaddress.ip_network(candidate, strict=False)
        except ValueError:
            raise InvalidInput("errors.cidr_invalid", value=candidate[:64]) from None
        try:
            ipaddress.ip_network(candidate, strict=True)
        except ValueError:
            raise InvalidInput("errors.cidr_host_bits", value=candidate[:64], network=network) from None
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{max(0, network.prefixlen - 96)}", strict=False)
        if network.prefixlen == 0 and not confirm_all:
            raise InvalidInput("errors.cidr_everyone", network=network, version=network.version)
        return str(network)
    address = parse_ip(candidate)
    if address is None:
        raise InvalidInput("errors.ip_invalid", value=candidate[:64])
    return str(address)


def list_rules(*, session: Session) -> list[BlockedIP]:
    return list(session.exec(select(BlockedIP).order_by(col(BlockedIP.id))).all())


def _rule_view(row: BlockedIP) -> dict[str, str | None]:
    return {"ip_address": row.ip_address, "reason": row.reason}


def add_rule(
    *,
    session: Session,
    ip_address: str,
    reason: str | None,
    confirm_all: bool = False,
    actor: Actor | None = None,
) -> BlockedIP:
    """``actor``: the admin, whose ``ip_rule.create`` row is committed with the rule."""
    rule = normalize_rule(ip_address, confirm_all=confirm_all)
    if reason and has_control_characters(reason.strip()):
        raise InvalidInput("errors.reason_control")
    if session.exec(select(BlockedIP.id).where(BlockedIP.ip_address == rule)).first() is not None:
        raise Conflict("errors.ip_rule_exists", rule=rule)
    row = BlockedIP(ip_address=rule, reason=(reason or "").strip()[:500] or None)
    session.add(row)
    if actor is not None:
        session.flush()  # the id, for the audit row's target
        target = audit.ip_rule_target(row.id, rule)
        audit.add(session, actor, "ip_rule.create", target=target, changes=audit.diff({}, _rule_view(row)))
    session.commit()
    session.refresh(row)
    return row


def delete_rule(*, session: Session, rule_id: int, actor: Actor | None = None) -> None:
    """``actor``: the admin, whose ``ip_rule.delete`` row is committed with the deletion."""
    row = session.get(BlockedIP, rule_id)
    if row is None:
        raise NotFound("errors.ip_rule_not_found")
    if actor is not None:
        target = audit.ip_rule_target(row.id, row.ip_address)
        audit.add(session, actor, "ip_rule.delete", target=target, changes=audit.diff(_rule_view(row), {}))
    session.delete(row)
    session.commit()


def list_attempts(*, session: Session, limit: int) -> list[BlockedAttempt]:
    query = (
        select(BlockedAttempt)
        .order_by(col(BlockedAttempt.last_seen_at).desc(), col(BlockedAttempt.id).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


@dataclass(frozen=True, slots=True)
class _Rule:
    text: str
    network: Network


@dataclass(slots=True)
class _Folded:
    """Blocked requests of one (ip, path, rule) waiting for the next flush."""

    first: datetime
    last: datetime
    hits: int = 1


class BlockList:
    def __init__(
        self, engine: Engine, period: float = PERIOD_SECONDS, counters: DailyCounters | None = None
    ) -> None:
        self._engine = engine
        self._counters = counters  # blocked requests per day for the dashboard
        self._rules: list[_Rule] = []
        self.refresher = Refresher(self._load, "block_list", period)
        self._pending: dict[tuple[str, str, str], _Folded] = {}
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._flush_loop, name="pyaichat-blocked-attempts", daemon=True
        )
        self._thread.start()

    def load(self) -> None:
        """The first load (at start, so that no reader on the event loop has to)."""
        self.refresher.load_first()

    # Rules changed through the block list apply at once, here and (announced) on every instance.
    # ``actor``: the admin making the change (its audit row is committed with it); None only for changes
    # that are no admin's (set-ups in tests).
    def add(
        self,
        *,
        session: Session,
        ip_address: str,
        reason: str | None,
        actor: Actor | None,
        confirm_all: bool = False,
    ) -> BlockedIP:
        result = add_rule(
            session=session, ip_address=ip_address, reason=reason, confirm_all=confirm_all, actor=actor
        )
        self.refresher.changed()  # only a change that was made is announced
        return result

    def remove(self, *, session: Session, rule_id: int, actor: Actor | None) -> None:
        delete_rule(session=session, rule_id=rule_id, actor=actor)
        self.refresher.changed()

    def _load(self) -> None:
        with Session(self._engine) as session:
            bounded_reads(session)
            texts = session.exec(select(BlockedIP.ip_address)).all()
        self._rules = [_Rule(t, ipaddress.ip_network(t, strict=False)) for t in texts]

    async def until_blocked(self, ip: str) -> str:
        """Wait until ``ip`` is blocked; the rule that blocks it. Rules are checked again after every
        load: at once for a change through this instance or announced by another, and at least every
        half period (the reloader's safety net)."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake() -> None:  # on the thread that loaded the rules
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(changed.set)

        self.refresher.listen(wake)
        try:
            while (rule := self.match(ip)) is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.refresher.period):
                        await changed.wait()
                changed.clear()
            return rule
        finally:
            self.refresher.unlisten(wake)

    def _fresh(self) -> list[_Rule]:
        self.refresher.ensure()
        return self._rules

    def match(self, ip: str) -> str | None:
        """The rule that blocks ``ip`` (IPv4-mapped IPv6 matched as IPv4), or None."""
        rules = self._fresh()
        if not rules:
            return None
        address = parse_ip(ip)
        if address is None:
            return None
        for rule in rules:
            if address.version == rule.network.version and address in rule.network:
                return rule.text
        return None

    def record_attempt(self, *, ip: str, path: str, rule: str) -> None:
        key = (ip[:64], path[:500], rule[:64])
        now = utcnow()
        if self._counters is not None:
            self._counters.add(BLOCKED, now)
        with self._pending_lock:
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = _Folded(first=now, last=now)
            else:
                entry.last = now
                entry.hits += 1

    def flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        rows = [
            {
                "ip_address": ip,
                "path": path,
                "matched_rule": rule,
                "created_at": folded.first,
                "last_seen_at": folded.last,
                "hits": folded.hits,
            }
            for (ip, path, rule), folded in pending.items()
        ]
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(BlockedAttempt), rows)
                newest = connection.execute(select(func.max(BlockedAttempt.id))).scalar() or 0
                connection.execute(
                    delete(BlockedAttempt).where(col(BlockedAttempt.id) <= newest - MAX_ATTEMPT_ROWS)
                )
        except Exception as exc:  # a failure to record must never break request handling
            log.error("could not record %d blocked attempts: %s", len(rows), type(exc).__name__)

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_SECONDS):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
