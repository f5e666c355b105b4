"""Personal API keys: creating (the key shown once, only its SHA-256 stored), listing, revoking.

The decisions on each call (is this key good, whose is it) are ``services.identity``'s, from memory;
every change here is followed by ``IdentityCache.keys_changed()`` once committed (the routes do it).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, update
from sqlmodel import Session, col, select

from app.models import ApiKey, User, utcnow
from services import audit
from services.audit import Actor
from services.auth import check_credential_text
from services.errors import Conflict, InvalidInput
from services.identity import KEY_PREFIX, key_hash

MAX_ACTIVE_KEYS = 20
KEY_BYTES = 32  # random bytes in a key (43 url-safe characters after ``sk-``)
PREFIX_LENGTH = 10  # ``sk-`` and 7 characters: enough to tell one's keys apart, useless for guessing
MAX_NAME_LENGTH = 100


def clean_name(name: str) -> str:
    check_credential_text(name, "errors.what.key_name")
    name = name.strip()
    if not name:
        raise InvalidInput("errors.key_name_empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("errors.key_name_long", count=MAX_NAME_LENGTH)
    return name


def clean_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    """An expiry in the future (a time without a zone is taken as UTC)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    expires_at = expires_at.astimezone(UTC)
    if expires_at <= now:
        raise InvalidInput("errors.key_expiry_past")
    return expires_at


def _active(now: datetime) -> list[ColumnElement[bool]]:
    return [
        col(ApiKey.revoked_at).is_(None),
        col(ApiKey.expires_at).is_(None) | (col(ApiKey.expires_at) > now),
    ]


def create_key(
    *, session: Session, user_id: int, name: str, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """The new key's row and the key itself (returned only here). At most ``MAX_ACTIVE_KEYS`` keys
    that are neither revoked nor expired per user: past that, Conflict."""
    now = utcnow()
    name = clean_name(name)
    expires_at = clean_expiry(expires_at, now)
    active = session.exec(
        select(func.count()).select_from(ApiKey).where(col(ApiKey.user_id) == user_id, *_active(now))
    ).one()
    if active >= MAX_ACTIVE_KEYS:
        raise Conflict("errors.too_many_keys", count=MAX_ACTIVE_KEYS)
    plain = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = ApiKey(
        user_id=user_id,
        name=name,
        prefix=plain[:PREFIX_LENGTH],
        key_hash=key_hash(plain),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, plain


def list_keys(*, session: Session, user_id: int) -> list[ApiKey]:
    """The user's keys not revoked (expired ones too, marked by their expiry), newest first."""
    query = select(ApiKey).where(col(ApiKey.user_id) == user_id, col(ApiKey.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(ApiKey.id).desc())).all())


def revoke_key(
    *, session: Session, key_id: int, user_id: int | None = None, actor: Actor | None = None
) -> bool:
    """Mark the key revoked; False when there is no such key not yet revoked (of ``user_id``, when
    given: another user's key is not found, exactly like an unknown one). ``actor``: an admin revoking
    it, audited (``key.revoke``) in the same transaction."""
    query = update(ApiKey).where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
    if user_id is not None:
        query = query.where(col(ApiKey.user_id) == user_id)
    result = session.exec(query.values(revoked_at=utcnow()))
    if not result.rowcount:
        session.rollback()
        return False
    if actor is not None:
        key = session.get(ApiKey, key_id)
        name = key.name if key is not None else ""
        audit.add(session, actor, "key.revoke", target=audit.key_target(key_id, name))
    session.commit()
    return True


def admin_list_keys(
    *, session: Session, user_id: int | None, page: int, page_size: int, include_revoked: bool = False
) -> tuple[list[tuple[ApiKey, str | None]], int]:
    """Every user's keys (or one user's) with the owner's e-mail, newest first, and their total."""
    conditions: list[ColumnElement[bool]] = []
    if user_id is not None:
        conditions.append(col(ApiKey.user_id) == user_id)
    if not include_revoked:
        conditions.append(col(ApiKey.revoked_at).is_(None))
    total = session.exec(select(func.count()).select_from(ApiKey).where(*conditions)).one()
    query = (
        select(ApiKey, User.email)
        .join(User, col(User.id) == col(ApiKey.user_id), isouter=True)
        .where(*conditions)
        .order_by(col(ApiKey.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return [(key, email) for key, email in session.exec(query).all()], total
