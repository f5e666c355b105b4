"""The HTTP API under ``/api``: one router per resource, assembled here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import (
    admin_audit,
    admin_channels,
    admin_logs,
    admin_models,
    admin_settings,
    admin_users,
    auth,
    chat,
    health,
    keys,
)
from app.schemas import ErrorBody


def build_api_router() -> APIRouter:
    """Every route may answer a malformed body with 400 and an invalid one with 422. Other paths under
    ``/api`` are the API app's own JSON 404, and a known path asked with another method its 405 with
    ``Allow`` (app/api/errors.py gives both the error body)."""
    router = APIRouter(prefix="/api", responses={400: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    router.include_router(chat.completions_router)  # first: the hot path matches without walking the others
    router.include_router(chat.router)
    router.include_router(chat.v1_router, prefix="/v1")  # /api/v1/…, the OpenAI aliases
    router.include_router(health.router)
    router.include_router(auth.router)
    router.include_router(admin_channels.router)
    router.include_router(admin_settings.router)
    router.include_router(admin_logs.router)
    router.include_router(admin_audit.router)
    router.include_router(admin_users.router)
    router.include_router(admin_models.router)
    router.include_router(keys.router)
    router.include_router(keys.admin_router)
    return router
