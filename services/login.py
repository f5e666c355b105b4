"""Signing in with throttling of failed attempts, shared by the REST API and the login pages."""

from __future__ import annotations

from datetime import timedelta

import anyio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Admin, User
from services import auth
from services.errors import AuthenticationFailed
from services.rate_limit import RateLimiter


def _authenticate_user(engine: Engine, email: str, password: str) -> User:
    with Session(engine, expire_on_commit=False) as session:
        return auth.authenticate_user(session=session, email=email, password=password)


def _authenticate_admin(engine: Engine, username: str, password: str) -> Admin:
    with Session(engine, expire_on_commit=False) as session:
        return auth.authenticate_admin(session=session, username=username, password=password)


async def sign_in_user(
    *,
    engine: Engine,
    limiter: RateLimiter,
    email: str,
    password: str,
    ip: str,
    secret: str,
    lifetime: timedelta,
) -> tuple[User, str]:
    """The user and a fresh token (bcrypt on a worker thread); raises InvalidInput, RateLimited or
    AuthenticationFailed."""
    auth.check_credential_text(email, "邮箱")
    auth.check_credential_text(password, "密码")
    await limiter.check_login_allowed(kind="user", account=email, ip=ip)
    try:
        user = await anyio.to_thread.run_sync(_authenticate_user, engine, email, password)
    except AuthenticationFailed:
        await limiter.record_login_failure(kind="user", account=email, ip=ip)
        raise
    return user, auth.issue_user_token(user, secret=secret, lifetime=lifetime)


async def sign_in_admin(
    *, engine: Engine, limiter: RateLimiter, username: str, password: str, ip: str, secret: str
) -> tuple[Admin, str]:
    auth.check_credential_text(username, "用户名")
    auth.check_credential_text(password, "密码")
    await limiter.check_login_allowed(kind="admin", account=username, ip=ip)
    try:
        admin = await anyio.to_thread.run_sync(_authenticate_admin, engine, username, password)
    except AuthenticationFailed:
        await limiter.record_login_failure(kind="admin", account=username, ip=ip)
        raise
    return admin, auth.issue_admin_token(admin, secret=secret)


def _register(engine: Engine, email: str, password: str) -> User:
    with Session(engine, expire_on_commit=False) as session:
        return auth.register_user(session=session, email=email, password=password)


async def register_user(*, engine: Engine, email: str, password: str) -> User:
    return await anyio.to_thread.run_sync(_register, engine, email, password)
