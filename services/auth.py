"""Accounts: registration, login, tokens, and the admin account kept in step with the environment."""

from __future__ import annotations

import hmac
import re
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import Admin, User, utcnow
from services.errors import (
    AccountDisabled,
    AccountDisabledCredential,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    Word,
)
from services.security import (
    BCRYPT_MAX_BYTES,
    create_token,
    decode_token,
    hash_password,
    password_fingerprint,
    verify_password,
)
from services.text import has_control_characters

MIN_PASSWORD_LENGTH = 8
ADMIN_TOKEN_LIFETIME = timedelta(hours=24)
LOGIN_FAILED_MESSAGE = "errors.login_failed"
ADMIN_LOGIN_FAILED_MESSAGE = "errors.admin_login_failed"
WRONG_OLD_PASSWORD = "errors.wrong_old_password"  # noqa: S105 - a message
_EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def check_credential_text(value: str, what: str) -> str:
    """Raises InvalidInput (naming ``what``, never echoing the value) when ``value`` holds a control
    character (C0 with tab and newlines, DEL, C1): no credential has a use for one, and a NUL reached
    bcrypt, which raises on it (a 500 with a 14 KB traceback per request)."""
    if has_control_characters(value):
        raise InvalidInput("errors.control_characters", what=Word(what))
    return value


def normalize_email(email: str) -> str:
    """The stored form of an email (trimmed, lower-case); raises InvalidInput when it is not one."""
    check_credential_text(email, "errors.what.email")
    candidate = email.strip().lower()
    local, _, _domain = candidate.partition("@")
    if len(candidate) > 254 or len(local) > 64 or not _EMAIL_PATTERN.match(candidate) or ".." in candidate:
        raise InvalidInput("errors.email_format")
    return candidate


def check_password_rules(password: str) -> str:
    """Raises InvalidInput unless the password has 8+ characters, at most 72 bytes (bcrypt's limit) and
    no control character."""
    check_credential_text(password, "errors.what.password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("errors.password_short", count=MIN_PASSWORD_LENGTH)
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        raise InvalidInput("errors.password_long", count=BCRYPT_MAX_BYTES)
    return password


def register_user(*, session: Session, email: str, password: str) -> User:
    email = normalize_email(email)
    check_password_rules(password)
    if session.exec(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict("errors.email_taken")
    user = User(email=email, password_hash=hash_password(password))
    session.add(user)
    try:
        session.commit()
    except IntegrityError:  # a concurrent registration won the race
        session.rollback()
        raise Conflict("errors.email_taken") from None
    session.refresh(user)
    return user


def authenticate_user(*, session: Session, email: str, password: str) -> User:
    """The user whose credentials these are; the same error for an unknown email and a wrong password."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        verify_password(password, None)
        raise AuthenticationFailed(LOGIN_FAILED_MESSAGE) from None
    user = session.exec(select(User).where(User.email == email)).first()
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise AuthenticationFailed(LOGIN_FAILED_MESSAGE)
    if user.disabled:  # said only to whoever knows the password
        raise AccountDisabled()
    return user


def check_new_password(password: str) -> str:
    try:
        return check_password_rules(password)
    except InvalidInput as exc:
        raise InvalidInput(f"new_password：{exc.message}") from None


def change_password(*, session: Session, user_id: int, old_password: str, new_password: str) -> User:
    """Set a new password (the old one required) and raise ``token_version``, which ends every other
    session; the caller then issues this session a fresh token and calls
    ``IdentityCache.user_changed``. A wrong old password is refused (counted by the
    sign-in throttle) as InvalidInput naming ``old_password``; a new one that breaks the rules raises
    InvalidInput naming ``new_password``."""
    check_new_password(new_password)
    user = session.get(User, user_id)
    if user is None:
        raise AuthenticationFailed("errors.account_gone")
    if not verify_password(old_password, user.password_hash):
        raise InvalidInput(WRONG_OLD_PASSWORD)
    if user.disabled:
        raise AccountDisabledCredential()
    user.password_hash = hash_password(new_password)
    user.token_version += 1
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def authenticate_admin(*, session: Session, username: str, password: str) -> Admin:
    admin = session.exec(select(Admin).where(Admin.username == username)).first()
    if not verify_password(password, admin.password_hash if admin else None) or admin is None:
        raise AuthenticationFailed(ADMIN_LOGIN_FAILED_MESSAGE)
    return admin


def ensure_admin(*, session: Session, username: str, password: str) -> Admin:
    """Create the admin account, or update its password when the environment's one changed.

    Only one admin exists: renaming ``ADMIN_USERNAME`` renames the account rather than adding another.
    """
    admin = session.exec(select(Admin).where(Admin.username == username)).first()
    if admin is None:
        admin = session.exec(select(Admin).order_by(col(Admin.id))).first()
    if admin is None:
        admin = Admin(username=username, password_hash=hash_password(password))
    elif admin.username != username or not verify_password(password, admin.password_hash):
        admin.username = username
        admin.password_hash = hash_password(password)
        admin.updated_at = utcnow()
    else:
        return admin
    session.add(admin)
    session.commit()
    session.refresh(admin)
    return admin


def _fingerprint(account: User | Admin, secret: str) -> str:
    return password_fingerprint(account.password_hash, secret=secret)


def issue_user_token(user: User, *, secret: str, lifetime: timedelta) -> str:
    return create_token(
        subject=str(user.id),
        kind="user",
        secret=secret,
        lifetime=lifetime,
        password_fingerprint=_fingerprint(user, secret),
        version=user.token_version,
    )


def issue_admin_token(admin: Admin, *, secret: str) -> str:
    return create_token(
        subject=admin.username,
        kind="admin",
        secret=secret,
        lifetime=ADMIN_TOKEN_LIFETIME,
        password_fingerprint=_fingerprint(admin, secret),
    )


def _check_fingerprint(account: User | Admin, fingerprint: str, secret: str) -> None:
    """A token issued before the account's password changed is revoked."""
    if not hmac.compare_digest(fingerprint, _fingerprint(account, secret)):
        raise AuthenticationFailed("errors.password_changed")


def admin_from_token(*, session: Session, token: str, secret: str) -> Admin:
    claims = decode_token(token, secret=secret, kind="admin")
    admin = session.exec(select(Admin).where(Admin.username == claims.subject)).first()
    if admin is None:
        raise AuthenticationFailed("errors.admin_gone")
    _check_fingerprint(admin, claims.password_fingerprint, secret)
    return admin
