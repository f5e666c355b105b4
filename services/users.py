"""The admin's user management: the list (search, pages, order), create, disable / enable, own RPM,
temporary password, delete.

Every committed change to a user passes through :meth:`UserAdmin._user_changed`, the one place that
tells whoever caches who a user is (after the merge with the personal API keys: the identity cache).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal, get_args

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import ApiKey, User, utcnow
from services import audit, auth
from services.audit import Actor, Secret
from services.errors import InvalidInput, NotFound
from services.identity import IdentityCache
from services.security import hash_password
from services.settings import MAX_VALUES
from services.text import has_control_characters

log = logging.getLogger("pyaichat.users")

UserSort = Literal["-created", "created", "-last_active", "last_active"]
SORTS: tuple[str, ...] = get_args(UserSort)
DEFAULT_SORT: UserSort = "-created"
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000_000
MAX_QUERY_CHARS = 254  # the longest e-mail
MIN_RPM, MAX_RPM = 1, MAX_VALUES["user_rpm"]  # a user's own RPM has the bounds of the setting
NOT_FOUND_MESSAGE = "errors.user_not_found"


class Keep(Enum):
    """A field of an update that was not sent (where None means something: "use the global RPM")."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class UserRow:
    """A user as the admin sees them: never the password hash."""

    id: int
    email: str
    created_at: datetime
    last_active_at: datetime | None
    disabled: bool
    rpm_limit: int | None

    @classmethod
    def of(cls, user: User) -> UserRow:
        assert user.id is not None
        return cls(
            id=user.id,
            email=user.email,
            created_at=user.created_at,
            last_active_at=user.last_active_at,
            disabled=user.disabled,
            rpm_limit=user.rpm_limit,
        )


@dataclass(frozen=True)
class UserPage:
    items: list[UserRow]
    total: int
    page: int
    page_size: int


def check_sort(sort: str) -> UserSort:
    if sort not in SORTS:
        raise InvalidInput("errors.sort_one_of", choices=", ".join(SORTS))
    return sort  # type: ignore[return-value]  # one of SORTS, checked above


def check_query(q: str | None) -> str | None:
    """The e-mail fragment searched for (trimmed, lower-case as e-mails are stored), or None."""
    text = (q or "").strip().lower()
    if not text:
        return None
    if has_control_characters(text):
        raise InvalidInput("errors.q_control")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput("errors.q_long", count=MAX_QUERY_CHARS)
    return text


def check_rpm(rpm_limit: int | None) -> int | None:
    if rpm_limit is None:
        return None
    if isinstance(rpm_limit, bool) or not isinstance(rpm_limit, int) or not MIN_RPM <= rpm_limit <= MAX_RPM:
        raise InvalidInput("errors.rpm_limit_range", low=MIN_RPM, high=MAX_RPM)
    return rpm_limit


def _order(sort: UserSort) -> list[Any]:
    if sort in ("created", "-created"):
        created = col(User.created_at)
        ident = col(User.id)
        return [created.desc(), ident.desc()] if sort == "-created" else [created.asc(), ident.asc()]
    active = col(User.last_active_at)
    if sort == "-last_active":  # the most recently active first; never active last
        return [active.desc().nulls_last(), col(User.id).desc()]
    return [active.asc().nulls_first(), col(User.id).asc()]  # the longest idle (or never active) first


def list_users(
    *, session: Session, q: str | None = None, page: int = 1, page_size: int = 20, sort: str = DEFAULT_SORT
) -> UserPage:
    """One page of users whose e-mail contains ``q``, in ``sort`` order (``-`` = descending)."""
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("errors.page_range", high=MAX_PAGE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("errors.page_size_range", high=MAX_PAGE_SIZE)
    order = _order(check_sort(sort))
    text = check_query(q)
    count = select(func.count()).select_from(User)
    rows = select(User)
    if text is not None:
        match = col(User.email).contains(text, autoescape=True)  # % and _ are meant literally
        count, rows = count.where(match), rows.where(match)
    total = session.exec(count).one()
    found = session.exec(rows.order_by(*order).offset((page - 1) * page_size).limit(page_size)).all()
    return UserPage(items=[UserRow.of(user) for user in found], total=total, page=page, page_size=page_size)


def get_user(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return user


class UserAdmin:
    """The changes an admin makes to users (REST API and admin page alike). Each method commits, then
    calls :meth:`_user_changed`; bcrypt runs inside, so pages call these on a worker thread."""

    def __init__(self, engine: Engine, identity: IdentityCache) -> None:
        self._engine = engine
        self._identity = identity

    def _user_changed(self, user_id: int) -> None:
        """Every committed change to a user (created, disabled or enabled, own RPM, password, deleted)
        ends here, after its commit: the identity cache reloads at once and announces the change, so a
        disabled or deleted user, and the tokens older than a password reset (``token_version``), are
        refused on this instance now and on every other within the cache period."""
        log.info("user %d changed", user_id)
        self._identity.user_changed(user_id)  # (its reload also re-reads the keys: a deleted user's went)

    def create(self, *, session: Session, email: str, password: str, actor: Actor | None) -> UserRow:
        """A new account with the registration's rules (422 / 409), whether registration is open or not.
        (Registration commits the account itself; its audit row follows in a commit of its own.)"""
        user = auth.register_user(session=session, email=email, password=password)
        row = UserRow.of(user)
        if actor is not None:
            changes = {"email": user.email, "password": Secret.of(password)}
            audit.add(
                session,
                actor,
                "user.create",
                target=audit.user_target(user.id, user.email),
                changes=audit.diff({}, changes),
            )
            session.commit()
        self._user_changed(row.id)
        return row

    def update(
        self,
        *,
        session: Session,
        user_id: int,
        disabled: bool | None = None,
        rpm_limit: int | Literal[Keep.KEEP] | None = KEEP,
        actor: Actor | None,
    ) -> UserRow:
        """``disabled``: None keeps it; disabling raises the token version (every session ends).
        ``rpm_limit``: the user's own RPM, None for the global ``user_rpm``; ``KEEP`` keeps it."""
        if rpm_limit is not KEEP:
            check_rpm(rpm_limit)
        user = get_user(session=session, user_id=user_id)
        before = {"disabled": user.disabled, "rpm_limit": user.rpm_limit}
        if disabled is not None and disabled != user.disabled:
            user.disabled = disabled
            if disabled:
                user.token_version += 1
        if rpm_limit is not KEEP:
            user.rpm_limit = rpm_limit
        session.add(user)
        changes = audit.diff(before, {"disabled": user.disabled, "rpm_limit": user.rpm_limit})
        if actor is not None and changes:
            audit.add(
                session, actor, "user.update", target=audit.user_target(user.id, user.email), changes=changes
            )
        session.commit()
        session.refresh(user)
        self._user_changed(user_id)
        return UserRow.of(user)

    def set_password(self, *, session: Session, user_id: int, password: str, actor: Actor | None) -> UserRow:
        """A temporary password set by the admin; every token issued before stops working."""
        auth.check_password_rules(password)
        user = get_user(session=session, user_id=user_id)
        user.password_hash = hash_password(password)
        user.token_version += 1
        session.add(user)
        if actor is not None:
            target = audit.user_target(user.id, user.email)
            audit.add(session, actor, "user.password_reset", target=target, changes={"password": "changed"})
        session.commit()
        session.refresh(user)
        self._user_changed(user_id)
        return UserRow.of(user)

    def delete(self, *, session: Session, user_id: int, actor: Actor | None) -> None:
        """Removes the account and revokes its API keys (their rows stay, as the call log's rows do:
        the log then shows "已删除用户" for this user id)."""
        user = get_user(session=session, user_id=user_id)
        session.execute(
            update(ApiKey)
            .where(col(ApiKey.user_id) == user_id, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
        session.delete(user)
        if actor is not None:
            audit.add(session, actor, "user.delete", target=audit.user_target(user.id, user.email))
        session.commit()
        self._user_changed(user_id)


def new_temporary_password() -> str:
    """A password to hand to a user: 16 characters without look-alikes (about 90 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))
