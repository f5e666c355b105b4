"""Who is calling: users' access state and personal API keys, cached so that a decision costs no
database round trip (docs/behaviour.md#shared-state), and fresh like the other caches.

What is held, and why it stays cheap at 100k users:

- **Active keys, all of them** (SHA-256 hex of the key → key id, user id, ``expires_at``): four short
  columns of the rows not revoked, reloaded with each period. All of them, because an unknown key must
  be refused from memory: looking it up in the database would let anyone with random ``sk-…`` strings
  make the gateway query (or, throttled, at least wait) per request. Keys are few next to users (at
  most 20 per user, and most users have none); 10k keys load in a few milliseconds.
- **Users, lazily**: only the users who call, in a bounded LRU (``MAX_CACHED_USERS``). A user met for
  the first time is read once (one primary-key query on a worker thread) and kept while they keep
  calling (``ACTIVE_SECONDS``); each reload re-reads exactly the cached users (``id IN (…)`` in chunks,
  plain driver SQL), so its cost follows the users active in the last minutes, not the table. Loading
  every user each period would cost 100k rows per second at 100k users; re-reading 5,000 active users
  took 100-120 ms on this shared, loaded 2-core machine (tests/services/test_identity.py prints it).

Freshness ("generation" invalidation): every entry remembers when the read that produced it started.
An entry counts only when that read started no earlier than the last reload, and ``until_fresh()``
holds decisions until a reload younger than the period has run, and after another instance's
announcement until a reload started after it. So a disable, a new token version or a revoked key made
anywhere is honoured everywhere within the period (2 s), and at once where it was made.

**Every change of a user's state** (password, disable, RPM, delete, token version) must end with
:meth:`IdentityCache.user_changed` after its commit; every change of keys with :meth:`keys_changed`.

Calls already running: each reload also re-reads the users who have a call open on this instance
(:meth:`IdentityCache.watch`) and hands a :class:`Verdicts` to the open calls, which end the calls
whose credential no longer holds (the user deleted or disabled, the token's version or password
outdated, the key revoked or expired) with the same error a new request would get.

``last_used_at`` / ``users.last_active_at`` are not written per call: a call notes the time (at most
once a minute per key and per user), and the reloader thread writes the notes in one batch
(``services/identity_notes.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from anyio import to_thread
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from app.models import ApiKey, utcnow
from services.errors import AccountDisabledCredential, AuthenticationFailed, DomainError, InvalidApiKey
from services.identity_notes import UseNotes
from services.refresh import PERIOD_SECONDS, Refresher, bounded_reads
from services.security import decode_token, password_fingerprint
from services.throttle import Throttle, bad_key_rules

log = logging.getLogger("pyaichat.identity")
KEY_PREFIX = "sk-"
MAX_CACHED_USERS = 20_000
ACTIVE_SECONDS = 120.0  # a cached user unused this long is dropped at the next reload (read again on use)
USER_GONE_MESSAGE = "errors.account_gone"  # catalogue keys (services/locales/errors.py)
LOGIN_OUTDATED_MESSAGE = "errors.session_ended"
RELOAD_CHUNK = 500  # ids per ``IN (…)`` of a reload
BAD_KEY_THROTTLED_MESSAGE = "errors.bad_key_throttled"


@dataclass(slots=True)
class UserState:
    """Not frozen: a reload that finds the row unchanged only moves ``read_at`` (a float store)."""

    id: int
    email: str
    disabled: bool
    token_version: int
    rpm_limit: int | None
    password_hash: str
    password_fingerprint: str
    read_at: float  # monotonic start of the read that found these values
    used_at: float = 0.0  # monotonic time of the last decision that used it

    def same_row(self, row: UserRow) -> bool:
        return (self.email, self.disabled, self.token_version, self.rpm_limit, self.password_hash) == (
            row[1],
            bool(row[2]),
            row[3],
            row[4],
            row[5],
        )


@dataclass(frozen=True, slots=True)
class KeyState:
    id: int
    user_id: int
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request proved: a login token (its version and password fingerprint) or a personal key.
    Open calls keep it, so that a later revocation can end them (:class:`Verdicts`)."""

    user_id: int
    token_version: int = 0
    password_fingerprint: str = ""
    api_key_id: int | None = None  # a key: the token fields are unused


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user, as the routes and the chat service see them."""

    id: int
    email: str
    rpm_limit: int | None = None  # None: the global user_rpm
    api_key_id: int | None = None  # set when the call came with a personal key
    credential: Credential | None = None


@dataclass(frozen=True, slots=True)
class Verdicts:
    """One reload's answer for the users with open calls: whether a credential still holds."""

    watched: frozenset[int]
    users: dict[int, UserState]  # the watched users that still exist
    key_ids: frozenset[int]  # keys neither revoked nor expired

    def refusal(self, credential: Credential) -> DomainError | None:
        """The error a new request with this credential would get now; None while it holds (or when
        this reload did not look at the user)."""
        if credential.user_id not in self.watched:
            return None
        user = self.users.get(credential.user_id)
        if credential.api_key_id is not None:
            if user is None or credential.api_key_id not in self.key_ids:
                return InvalidApiKey()
        elif user is None:
            return AuthenticationFailed(USER_GONE_MESSAGE)
        if user.disabled:
            return AccountDisabledCredential()
        if credential.api_key_id is None and not _token_holds(credential, user):
            return AuthenticationFailed(LOGIN_OUTDATED_MESSAGE)
        return None


def _token_holds(credential: Credential, user: UserState) -> bool:
    return credential.token_version >= user.token_version and hmac.compare_digest(
        credential.password_fingerprint, user.password_fingerprint
    )


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


UserRow = tuple[int, str, bool, int, "int | None", str]
_USER_SQL = "SELECT id, email, disabled, token_version, rpm_limit, password_hash FROM users WHERE id IN ({})"
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _select_users(connection: Connection, ids: Sequence[int]) -> list[UserRow]:
    """Plain driver SQL: through SQLAlchemy's expanding ``IN`` and row handling, re-reading 5,000 users
    took 185-270 ms on the loaded test machine, this way 100-120 ms."""
    mark = _MARKS.get(connection.dialect.paramstyle, "?")
    rows: list[UserRow] = []
    for chunk in _chunks(ids, RELOAD_CHUNK):
        sql = _USER_SQL.format(", ".join([mark] * len(chunk)))
        rows.extend(tuple(row) for row in connection.exec_driver_sql(sql, tuple(chunk)).fetchall())
    return rows


class IdentityCache:
    def __init__(
        self,
        engine: Engine,
        secret: str,
        throttle: Throttle,
        period: float = PERIOD_SECONDS,
        max_users: int = MAX_CACHED_USERS,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self._throttle = throttle
        self._max_users = max_users
        self._lock = threading.Lock()
        self._users: OrderedDict[int, UserState] = OrderedDict()
        self._keys: dict[str, KeyState] = {}
        self._load_started = -math.inf
        self._notes = UseNotes(engine)
        self._open_users: Callable[[], Collection[int]] = frozenset
        self._on_verdicts: Callable[[Verdicts], object] | None = None
        self.refresher = Refresher(self._load, "identity", period)

    def watch(
        self, open_users: Callable[[], Collection[int]], on_verdicts: Callable[[Verdicts], object]
    ) -> None:
        """Each reload re-reads the users ``open_users()`` names (those with calls open here) and
        passes the :class:`Verdicts` to ``on_verdicts`` (called on the reloading thread)."""
        self._open_users = open_users
        self._on_verdicts = on_verdicts

    # ---- changes (the one door for every state change) ------------------------------------------
    def user_changed(self, user_id: int) -> None:
        """Call after committing any change of a user's access state — password, ``disabled``,
        ``rpm_limit``, ``token_version``, deletion: reloads here at once and announces the change, so
        every instance honours it within the period. Blocking (a reload): call it off the event loop."""
        with self._lock:
            self._users.pop(user_id, None)
        self.refresher.changed()

    def keys_changed(self) -> None:
        """Call after committing a key's creation or revocation (same rules as :meth:`user_changed`)."""
        self.refresher.changed()

    def load(self) -> None:
        """The first load (at start)."""
        self.refresher.load_first()

    # ---- loading (on the reloader thread, or the thread of a change) ----------------------------
    def _entry(self, row: UserRow, read_at: float, used_at: float) -> UserState:
        user_id, email, disabled, version, rpm_limit, password = row
        previous = self._users.get(user_id)
        if previous is not None and previous.password_hash == password:
            fingerprint = previous.password_fingerprint  # an HMAC per cached user per reload saved
        else:
            fingerprint = password_fingerprint(password, secret=self._secret)
        return UserState(
            user_id, email, bool(disabled), version, rpm_limit, password, fingerprint, read_at, used_at
        )

    def _load(self) -> None:
        started = time.monotonic()
        with self._lock:  # users idle for a while leave: a reload re-reads only the recently active
            idle = [user_id for user_id, e in self._users.items() if e.used_at < started - ACTIVE_SECONDS]
            for user_id in idle:
                del self._users[user_id]
            watched = frozenset(self._open_users())
            ids = list(watched.union(self._users))
        with Session(self._engine) as session:
            bounded_reads(session)
            key_rows = session.exec(
                select(
                    col(ApiKey.key_hash), col(ApiKey.id), col(ApiKey.user_id), col(ApiKey.expires_at)
                ).where(col(ApiKey.revoked_at).is_(None))
            ).all()
            user_rows = _select_users(session.connection(), ids)
        keys = {
            digest: KeyState(key_id, user_id, _aware(ends))
            for digest, key_id, user_id, ends in key_rows
            if key_id is not None
        }
        found: set[int] = set()
        with self._lock:
            for row in user_rows:
                found.add(row[0])
                current = self._users.get(row[0])
                if current is None or current.read_at > started:
                    continue  # evicted meanwhile, or read again after this load began
                if current.same_row(row):
                    current.read_at = started
                else:  # replaced in place: keeps its place in the LRU order
                    self._users[row[0]] = self._entry(row, started, current.used_at)
            for user_id in ids:
                current = self._users.get(user_id)
                if user_id not in found and current is not None and current.read_at <= started:
                    del self._users[user_id]  # deleted since
            self._keys = keys
            self._load_started = started
        if watched and self._on_verdicts is not None:
            now = utcnow()
            self._on_verdicts(
                Verdicts(
                    watched=watched,
                    users={row[0]: self._entry(row, started, 0.0) for row in user_rows if row[0] in watched},
                    key_ids=frozenset(
                        k.id for k in keys.values() if k.expires_at is None or k.expires_at > now
                    ),
                )
            )
        self._notes.write()

    def _read_user(self, user_id: int) -> UserState | None:
        """A cache miss: one primary-key read (worker thread), kept in the LRU."""
        started = time.monotonic()
        with Session(self._engine) as session:
            bounded_reads(session)
            rows = _select_users(session.connection(), [user_id])
        if not rows:
            return None
        with self._lock:
            entry = self._entry(rows[0], started, started)
            current = self._users.get(user_id)
            if current is None or current.read_at <= started:
                self._users[user_id] = entry
                self._users.move_to_end(user_id)
                while len(self._users) > self._max_users:
                    self._users.popitem(last=False)
        return entry

    # ---- reading (event loop) -------------------------------------------------------------------
    def _cached_user(self, user_id: int) -> UserState | None:
        with self._lock:
            entry = self._users.get(user_id)
            if entry is None or entry.read_at < self._load_started:
                return None  # never read, or read before the last reload and missed by it
            self._users.move_to_end(user_id)
            entry.used_at = time.monotonic()
            return entry

    async def user(self, user_id: int) -> UserState | None:
        """The user's state, never older than the period; None for a user that does not exist."""
        await self.refresher.until_fresh()
        entry = self._cached_user(user_id)
        if entry is None:
            entry = await to_thread.run_sync(self._read_user, user_id)
        return entry

    async def authenticate(self, credential: str, *, ip: str) -> Identity:
        """The user behind a login token or a personal key (``sk-…``); raises AuthenticationFailed
        (``invalid_api_key`` for any bad key, ``account_disabled`` for a disabled user) or RateLimited
        (too many bad keys from this IP)."""
        if credential.startswith(KEY_PREFIX):
            return await self._by_key(credential, ip)
        return await self.by_token(credential)

    async def by_token(self, token: str) -> Identity:
        claims = decode_token(token, secret=self._secret, kind="user")  # no database: refused early
        user = await self.user(int(claims.subject)) if claims.subject.isdigit() else None
        if user is None:
            raise AuthenticationFailed(USER_GONE_MESSAGE)
        if user.disabled:
            raise AccountDisabledCredential()
        credential = Credential(user.id, claims.version, claims.password_fingerprint)
        if not _token_holds(credential, user):
            raise AuthenticationFailed(LOGIN_OUTDATED_MESSAGE)
        self.note_use(user.id)
        return Identity(id=user.id, email=user.email, rpm_limit=user.rpm_limit, credential=credential)

    async def _by_key(self, key: str, ip: str) -> Identity:
        """Revoked, expired, malformed and unknown keys take the same steps (a hash, a dictionary
        miss or an expiry test, the per-IP throttle) and get the same answer."""
        digest = key_hash(key)
        await self.refresher.until_fresh()
        entry = self._keys.get(digest)
        if entry is None or (entry.expires_at is not None and entry.expires_at <= utcnow()):
            await self._refuse_key(ip)
        assert entry is not None
        user = await self.user(entry.user_id)
        if user is None:  # the user was deleted (their keys with them)
            await self._refuse_key(ip)
        assert user is not None
        if user.disabled:
            raise AccountDisabledCredential()
        self.note_use(user.id, entry.id)
        return Identity(
            id=user.id,
            email=user.email,
            rpm_limit=user.rpm_limit,
            api_key_id=entry.id,
            credential=Credential(user.id, api_key_id=entry.id),
        )

    async def _refuse_key(self, ip: str) -> None:
        await self._throttle.reserve(bad_key_rules(ip), BAD_KEY_THROTTLED_MESSAGE)  # 429 past the limit
        raise InvalidApiKey()

    # ---- last used / last active ----------------------------------------------------------------
    def note_use(self, user_id: int, key_id: int | None = None) -> None:
        """Remember that the user (and key) were used now: at most once a minute each, written by the
        reloader thread in a batch (never a database write on the calling path)."""
        self._notes.note(user_id, key_id)

    def write_notes(self) -> None:
        """At shutdown: what the calls noted since the last reload."""
        self._notes.write()
