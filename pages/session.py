"""Who is using the page: the login kept in ``app.storage.user`` (survives a refresh and a restart).

The browser-session store is NiceGUI's: a file per browser under ``.nicegui`` (or a Redis key with
``NICEGUI_REDIS_URL``). It keeps tokens only sealed (``services.security.SessionCipher``, a key derived
from ``SECRET_KEY``), so whoever reads those files gets nothing usable; a value that does not unseal (a
plain token written by an older version, or one sealed under another ``SECRET_KEY``) is dropped.
"""

from __future__ import annotations

from nicegui import app

from app.state import AppState
from services.errors import AuthenticationFailed, StateUnavailable
from services.identity import Identity
from services.settings import SystemSettings

USER_TOKEN_KEY = "token"  # noqa: S105 - the storage key, not a secret
ADMIN_TOKEN_KEY = "admin_token"  # noqa: S105
_RETIRED_KEYS = ("email",)  # kept in clear by older versions


def keep_token(state: AppState, key: str, token: str) -> None:
    app.storage.user[key] = state.session_cipher.seal(token)


def stored_token(state: AppState, key: str) -> str | None:
    sealed = app.storage.user.get(key)
    if not sealed:
        return None
    token = state.session_cipher.unseal(sealed)
    if token is None:
        forget_token(key)
    return token


def forget_token(key: str) -> None:
    app.storage.user.pop(key, None)


async def current_user(state: AppState) -> Identity | None:
    """The signed-in user (from the identity cache, as the API decides), or None for a guest and for a
    login that is no longer valid — password changed, signed out everywhere, account disabled — which
    is then dropped."""
    token = stored_token(state, USER_TOKEN_KEY)
    if not token:
        return None
    try:
        return await state.identity.by_token(token)
    except AuthenticationFailed:
        sign_out()
        return None


def sign_in(state: AppState, token: str) -> None:
    keep_token(state, USER_TOKEN_KEY, token)
    for key in _RETIRED_KEYS:
        app.storage.user.pop(key, None)


def sign_out() -> None:
    for key in (USER_TOKEN_KEY, *_RETIRED_KEYS):
        app.storage.user.pop(key, None)


async def rules_now(state: AppState) -> SystemSettings:
    """The settings for what a page shows: fresh when they can be read, else the last known ones (the
    action itself decides on fresh ones, or is refused)."""
    try:
        return await state.system_settings.for_decision()
    except StateUnavailable:
        return state.system_settings.current()
