"""Who is using the page: the login kept in ``app.storage.user`` (survives a refresh)."""

from __future__ import annotations

from nicegui import app
from sqlmodel import Session

from app.models import User
from app.state import AppState
from pages.threads import off_loop
from services import auth
from services.errors import AuthenticationFailed


def _user_for_token(state: AppState, token: str) -> User:
    with Session(state.engine, expire_on_commit=False) as session:
        return auth.user_from_token(session=session, token=token, secret=state.secret_key)


async def current_user(state: AppState) -> User | None:
    """The signed-in user (read on a worker thread), or None for a guest (no database work) and for a
    login that is no longer valid (which is then dropped)."""
    token = app.storage.user.get("token")
    if not token:
        return None
    try:
        return await off_loop(_user_for_token, state, token)
    except AuthenticationFailed:
        sign_out()
        return None


def sign_in(token: str, email: str) -> None:
    app.storage.user["token"] = token
    app.storage.user["email"] = email


def sign_out() -> None:
    app.storage.user.pop("token", None)
    app.storage.user.pop("email", None)
