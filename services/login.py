"""Signing in and registering, with their throttles, shared by the REST API and the pages.

Each attempt reserves its throttle slots before any bcrypt work (``services.throttle``): a failed sign-in
keeps them, a successful one gives them back, so only failures count and N parallel guesses get at most
the limit's password checks. A registration keeps its slot whatever the outcome (a taken e-mail too: the
limit also bounds probing which e-mails exist).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

import anyio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Admin, User
from services import audit, auth
from services.audit import Actor
from services.errors import AuditUnavailable, AuthenticationFailed, InvalidInput, RegistrationClosed
from services.identity import IdentityCache
from services.settings import SystemSettings
from services.throttle import (
    LOGIN_THROTTLED_MESSAGE,
    REGISTER_THROTTLED_MESSAGE,
    Throttle,
    ThrottleRule,
    login_rules,
    register_rules,
)

T = TypeVar("T")


def _authenticate_user(engine: Engine, email: str, password: str) -> User:
    with Session(engine, expire_on_commit=False) as session:
        return auth.authenticate_user(session=session, email=email, password=password)


def _authenticate_admin(engine: Engine, username: str, password: str) -> Admin:
    with Session(engine, expire_on_commit=False) as session:
        return auth.authenticate_admin(session=session, username=username, password=password)


async def _password_check(throttle: Throttle, rules: list[ThrottleRule], check: Callable[[], T]) -> T:
    """``check`` (bcrypt, on a worker thread) once a throttle slot is reserved; only a failure keeps it."""
    reservation = await throttle.reserve(rules, LOGIN_THROTTLED_MESSAGE)
    try:
        result = await anyio.to_thread.run_sync(check)
    except AuthenticationFailed:
        raise  # a counted failure: the slot stays taken
    except Exception:
        await throttle.release(reservation)  # the database failed, not the guess
        raise
    await throttle.release(reservation)
    return result


async def sign_in_user(
    *,
    engine: Engine,
    throttle: Throttle,
    email: str,
    password: str,
    ip: str,
    secret: str,
    lifetime: timedelta,
) -> tuple[User, str]:
    """The user and a fresh token (bcrypt on a worker thread); raises InvalidInput, RateLimited or
    AuthenticationFailed."""
    auth.check_credential_text(email, "errors.what.email")
    auth.check_credential_text(password, "errors.what.password")
    user = await _password_check(
        throttle, login_rules("user", email, ip), partial(_authenticate_user, engine, email, password)
    )
    return user, auth.issue_user_token(user, secret=secret, lifetime=lifetime)


async def sign_in_admin(
    *, engine: Engine, throttle: Throttle, username: str, password: str, ip: str, secret: str
) -> tuple[Admin, str]:
    """The admin and a fresh token. Each password check is in the audit log: ``admin.login``, or
    ``admin.login_failed`` with the name tried (never the password). Attempts refused before the check
    (malformed, throttled) are not, so a flood of guesses cannot fill the table faster than the throttle
    lets guesses through. A sign-in whose row cannot be written is refused (AuditUnavailable)."""
    auth.check_credential_text(username, "errors.what.username")
    auth.check_credential_text(password, "errors.what.password")
    try:
        admin = await _password_check(
            throttle,
            login_rules("admin", username, ip),
            partial(_authenticate_admin, engine, username, password),
        )
    except AuthenticationFailed:
        try:
            tried = Actor(admin=username, ip_address=ip)
            await anyio.to_thread.run_sync(partial(audit.record, engine, tried, "admin.login_failed"))
        except AuditUnavailable:
            pass  # logged at ERROR by audit.record; the answer stays the failed sign-in's
        raise
    await anyio.to_thread.run_sync(
        partial(audit.record, engine, Actor(admin=admin.username, ip_address=ip), "admin.login")
    )
    return admin, auth.issue_admin_token(admin, secret=secret)


def _change_password(engine: Engine, user_id: int, old_password: str, new_password: str) -> User:
    with Session(engine, expire_on_commit=False) as session:
        return auth.change_password(
            session=session, user_id=user_id, old_password=old_password, new_password=new_password
        )


async def change_password(
    *,
    engine: Engine,
    throttle: Throttle,
    identity: IdentityCache,
    user_id: int,
    email: str,
    old_password: str,
    new_password: str,
    ip: str,
    secret: str,
    lifetime: timedelta,
) -> str:
    """A fresh token for this session once the password changed (every other session ends: the
    token version rose). A wrong old password counts as a failed sign-in of the account."""
    auth.check_credential_text(old_password, "errors.what.old_password")
    auth.check_new_password(new_password)
    reservation = await throttle.reserve(login_rules("user", email, ip), LOGIN_THROTTLED_MESSAGE)
    try:
        user = await anyio.to_thread.run_sync(_change_password, engine, user_id, old_password, new_password)
    except InvalidInput:
        raise  # the wrong old password: a counted failure
    except Exception:
        await throttle.release(reservation)
        raise
    await throttle.release(reservation)
    await anyio.to_thread.run_sync(identity.user_changed, user_id)
    return auth.issue_user_token(user, secret=secret, lifetime=lifetime)


def _register(engine: Engine, email: str, password: str) -> User:
    with Session(engine, expire_on_commit=False) as session:
        return auth.register_user(session=session, email=email, password=password)


async def register_user(
    *, engine: Engine, throttle: Throttle, email: str, password: str, ip: str, rules: SystemSettings
) -> User:
    """A new account; raises RegistrationClosed (the ``registration_enabled`` setting is off; before
    anything else), InvalidInput (before counting), RateLimited (``register_per_ip_per_hour``
    registrations per IP) or Conflict. Admins create accounts with ``services.users`` instead."""
    if not rules.registration_enabled:
        raise RegistrationClosed()
    per_hour = rules.register_per_ip_per_hour
    email = auth.normalize_email(email)
    auth.check_password_rules(password)
    await throttle.reserve(register_rules(ip, per_hour), REGISTER_THROTTLED_MESSAGE)
    return await anyio.to_thread.run_sync(_register, engine, email, password)
