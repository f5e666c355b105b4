"""The HTTP API under ``/api``: one router per resource, assembled here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import admin_channels, admin_logs, admin_settings, auth, chat, health
from services.errors import NotFound


def build_api_router() -> APIRouter:
    router = APIRouter(prefix="/api")
    router.include_router(chat.completions_router)  # first: the hot path matches without walking the others
    router.include_router(chat.router)
    router.include_router(health.router)
    router.include_router(auth.router)
    router.include_router(admin_channels.router)
    router.include_router(admin_settings.router)
    router.include_router(admin_logs.router)

    # Last: any other /api path is a JSON 404, never the HTML page the UI shows for unknown pages.
    @router.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    def unknown_api_path(path: str) -> None:
        raise NotFound("接口不存在")

    return router
