"""Assembles one instance: configuration, database, API routers, pages, and the server start."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from nicegui import app as web_app
from nicegui import ui
from nicegui.storage import Storage
from starlette.types import ASGIApp

from app.api import build_api_router
from app.api.chat import ChatCompletionsApp
from app.api.dispatch import route_api_first
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.gate import RequestGate
from app.config import ConfigError, Settings, StartupInfo, load_settings
from app.db import init_db, make_engine, session_scope
from app.state import AppState
from pages import register_pages
from services import auth
from services.settings import seed_settings
from services.stats import rebuild_in_background

log = logging.getLogger("pyaichat")
API_DESCRIPTION = (
    "OpenAI-compatible chat gateway. Point any OpenAI SDK at `base_url=http://HOST:8000/api`. "
    'Errors are JSON `{"error": {"type", "message"}}`.'
)


def build_state(settings: Settings) -> AppState:
    """Open the database, create the schema, seed settings and the admin account."""
    engine = make_engine(settings.sqlalchemy_url)
    init_db(engine)
    state = AppState.build(settings, engine)
    with session_scope(engine) as session:
        seed_settings(session=session, defaults=state.setting_defaults)
        auth.ensure_admin(
            session=session, username=settings.admin_username, password=settings.secret("admin_password")
        )
    for cache in (state.directory, state.block_list, state.system_settings):
        cache.load()  # now, rather than by the first request on the event loop
    rebuild_in_background(engine, settings.zone)  # only after a change of TZ
    state.retention.start()  # old logs are deleted now and daily
    return state


def build_api_app(state: AppState) -> FastAPI:
    """The REST API (and its docs) as its own FastAPI app, free of the UI's middleware."""
    api_app = FastAPI(
        title="pyaichat",
        description=API_DESCRIPTION,
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api_app.state.pyaichat = state
    install_docs(api_app, title="pyaichat")
    api_app.include_router(build_api_router())
    install_error_handlers(api_app)
    api_app.add_middleware(CORSMiddleware, **_cors_options(state))
    api_app.add_middleware(RequestGate, state=state)  # added last = runs first
    return api_app


def _cors_options(state: AppState) -> dict[str, Any]:
    return {
        "allow_origins": state.settings.cors_origin_list,
        "allow_methods": ["*"],
        "allow_headers": ["*"],
        "expose_headers": ["Retry-After"],
    }


def build_direct_routes(state: AppState) -> dict[tuple[str, str], ASGIApp]:
    """The hot path, served ahead of the API app's stack with the same gate and CORS headers."""
    chat = RequestGate(CORSMiddleware(ChatCompletionsApp(state), **_cors_options(state)), state=state)
    return {("POST", "/api/chat/completions"): chat}


def configure_app(state: AppState) -> None:
    """The API app in front of NiceGUI's app, which serves the pages."""
    web_app.state.pyaichat = state
    route_api_first(web_app, build_api_app(state), build_direct_routes(state))
    install_error_handlers(web_app)  # JSON errors for the UI app's own endpoints (e.g. the CSV download)
    web_app.add_middleware(RequestGate, state=state)  # the pages see the same client IP and block list
    register_pages(state)
    web_app.on_shutdown(state.close)


def banner(settings: Settings, info: StartupInfo) -> str:
    shown_host = "127.0.0.1" if settings.app_host in ("0.0.0.0", "::") else settings.app_host  # noqa: S104
    base = f"http://{shown_host}:{settings.app_port}"
    mode = "production" if settings.is_production else "development"
    lines = [
        "",
        "=" * 64,
        f"  pyaichat is running ({mode} mode)",
        f"  Chat:      {base}/",
        f"  Admin:     {base}/admin   (user: {settings.admin_username})",
        f"  API docs:  {base}/docs",
        f"  OpenAI base_url: {base}/api",
        f"  Database:  {_describe_database(settings)}",
    ]
    if info.generated:
        lines.append(f"  Generated {', '.join(info.generated)}; kept in {info.secrets_file}")
    if info.loaded_from_file:
        lines.append(f"  Using dev secrets from {info.secrets_file}")
    if info.generated_admin_password:
        lines.append(f"  Admin password (shown once): {info.generated_admin_password}")
    if not settings.is_production:
        lines.append("  Dev mode: set SECRET_KEY, ENCRYPTION_KEY and ADMIN_PASSWORD for production.")
    lines += ["=" * 64, ""]
    return "\n".join(lines)


def _describe_database(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url.split("://", 1)[0] + "://… (DATABASE_URL)"
    return str(settings.data_dir / (settings.database_path.rsplit("/", 1)[-1]))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings, info = load_settings()
        state = build_state(settings)
    except ConfigError as exc:
        print(f"pyaichat: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_app(state)
    print(banner(settings, info), flush=True)
    run_server(settings)


def run_server(settings: Settings, **options: Any) -> None:
    """Serve the configured app (``configure_app`` first); ``options`` add to ``ui.run``'s (the
    benchmarks' server quiets uvicorn's log with them, and serves otherwise exactly this)."""
    if "NICEGUI_STORAGE_PATH" not in os.environ:  # browser sessions live next to the database (the volume)
        Storage.path = settings.data_dir / ".nicegui"
    ui.run(
        host=settings.app_host,
        port=settings.app_port,
        title="pyaichat",
        storage_secret=settings.secret("secret_key"),
        reload=False,
        show=False,
        show_welcome_message=False,
        language="zh-CN",
        proxy_headers=False,  # the client IP is decided by TRUSTED_PROXIES, not by uvicorn
        forwarded_allow_ips="",
        **options,
    )
