"""Assembles one instance: configuration, database, API routers, pages, and the server start."""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from nicegui import Client, core, ui
from nicegui import app as web_app
from nicegui.storage import Storage
from starlette.types import ASGIApp

from app import static_assets
from app.api import build_api_router
from app.api import chat as chat_routes
from app.api.body_limit import BodyLimit
from app.api.chat import ChatCompletionsApp
from app.api.dispatch import route_api_first
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.gate import RequestGate
from app.api.headers import SecurityHeaders
from app.api.metrics import router as metrics_router
from app.api.observe import RequestObserver
from app.api.origin import SocketOriginCheck
from app.cli import keep_files_private
from app.config import Settings, StartupInfo
from app.connections import raise_open_files_limit, server_options
from app.db import make_engine, session_scope
from app.log_format import configure_logging
from app.migrate import DATABASE_PROBLEMS, explain_database_problem, upgrade
from app.signals import drain_on_exit_signals
from app.state import AppState
from pages import register_pages
from pages.theme import FAVICON
from services import auth
from services.images import MAX_IMAGE_BYTES
from services.rollups import rebuild_in_background
from services.settings import seed_settings

log = logging.getLogger("pyaichat")
# uvicorn's own limit on waiting for open responses after SIGTERM: past the calls' grace, so that the
# calls are cut by pyaichat (logged server_shutdown, answered) and uvicorn only cancels what is not a call
UVICORN_MARGIN_SECONDS = 5
API_DESCRIPTION = (
    "OpenAI-compatible chat gateway. Point any OpenAI SDK at `base_url=http://HOST:8000/api`. "
    'Errors are JSON `{"error": {"type", "message"}}`.'
)


def build_state(settings: Settings) -> AppState:
    """Bring the schema to the newest revision, then seed the settings and the admin account (under
    the migration lock: instances starting together would both insert them), and open the database."""
    engine = make_engine(settings.sqlalchemy_url)
    state = AppState.build(settings, engine)

    def seed() -> None:
        with session_scope(engine) as session:
            seed_settings(session=session, defaults=state.setting_defaults)
            auth.ensure_admin(
                session=session, username=settings.admin_username, password=settings.secret("admin_password")
            )

    upgrade(settings.sqlalchemy_url, then=seed)
    state.log_writer.start()  # replays what earlier runs left in the journal, then logs this run's calls
    for cache in (
        state.directory,
        state.block_list,
        state.system_settings,
        state.identity,
        state.model_settings,
    ):
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
    api_app.include_router(chat_routes.v1_router, prefix="/v1")  # /v1/…, the OpenAI aliases
    api_app.include_router(metrics_router)  # /metrics, for Prometheus
    install_error_handlers(api_app)
    api_app.add_middleware(CORSMiddleware, **_cors_options(state))
    api_app.add_middleware(RequestGate, state=state)  # added last = runs first
    api_app.add_middleware(SecurityHeaders, allow_eval=False)  # also on the gate's refusals
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
    served = SecurityHeaders(chat, allow_eval=False)
    return {("POST", path): served for path in CHAT_PATHS}


UPLOAD_FORM_BYTES = 1024 * 1024  # room for a multipart form's headers and boundaries around one file
# the chat route and its OpenAI aliases (docs/api.md); they take MAX_CHAT_BODY_BYTES
CHAT_PATHS = ("/api/chat/completions", "/api/v1/chat/completions", "/v1/chat/completions")


def limit_bodies(app: ASGIApp, settings: Settings) -> BodyLimit:
    """Every request's body capped: MAX_BODY_BYTES, or MAX_CHAT_BODY_BYTES on the chat routes; an
    upload (one image attachment of the chat page, services/images.py) up to its size and its form."""
    chat = dict.fromkeys(CHAT_PATHS, settings.max_chat_body_bytes)
    upload = MAX_IMAGE_BYTES + UPLOAD_FORM_BYTES
    return BodyLimit(app, default=settings.max_body_bytes, limits=chat, upload_limit=upload)


def observe_requests(app: ASGIApp, state: AppState) -> RequestObserver:
    """Outermost: every HTTP response (the body cap's 413 too) gets its X-Request-ID and is counted."""
    log_access = state.settings.log_format == "json"
    return RequestObserver(app, metrics=state.metrics, fixed=CHAT_PATHS, log_access=log_access)


def configure_app(state: AppState) -> None:
    """The API app in front of NiceGUI's app, which serves the pages."""
    web_app.state.pyaichat = state
    route_api_first(
        web_app,
        build_api_app(state),
        build_direct_routes(state),
        outer=lambda app: observe_requests(limit_bodies(app, state.settings), state),
    )
    state.metrics.page_sessions.set_function(lambda: len(Client.instances))
    install_error_handlers(web_app)  # JSON errors for the UI app's own endpoints (e.g. the CSV download)
    # NiceGUI's scripts and styles, Brotli-compressed
    static_assets.install(web_app, static_assets.page_assets())
    web_app.add_middleware(RequestGate, state=state)  # the pages see the same client IP and block list
    install_page_security(state)
    register_pages(state)
    web_app.on_startup(state.start)
    web_app.on_startup(lambda: drain_on_exit_signals(state))
    web_app.on_shutdown(state.close)


def install_page_security(state: AppState) -> None:
    """The pages' security headers and CSP (outside the gate, so its refusals get them too; inside
    NiceGUI's GZip, which ``ui.run`` adds later, so the HTML can take its nonce), and the WebSocket's
    origin check. socket.io's own CORS handling is turned off: it would answer any origin with
    ``Access-Control-Allow-Origin`` (NiceGUI configures ``'*'``), and a same-origin page needs none."""
    web_app.add_middleware(SecurityHeaders, allow_eval=True)
    settings = state.settings
    web_app.add_middleware(
        SocketOriginCheck, trusted=settings.trusted_proxy_networks, allowed=settings.ui_origin_list
    )
    core.sio.eio.cors_allowed_origins = []


# a wildcard address is where the server listens, not one to open: the banner links the loopback instead
_WILDCARDS = {"0.0.0.0": ("127.0.0.1", "all IPv4 interfaces"), "::": ("::1", "all interfaces")}  # noqa: S104


def _in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL and before a port


def banner(settings: Settings, info: StartupInfo) -> str:
    host, port = settings.app_host, settings.app_port
    local, reach = _WILDCARDS.get(host, (host, ""))
    base = f"http://{_in_url(local)}:{port}"
    mode = "production" if settings.is_production else "development"
    lines = [
        "",
        "=" * 64,
        f"  pyaichat is running ({mode} mode)",
        f"  Listening on {_in_url(host)}:{port}" + (f" ({reach})" if reach else ""),
        f"  Chat:      {base}/",
        f"  Admin:     {base}/admin   (user: {settings.admin_username})",
        f"  API docs:  {base}/docs",
        f"  OpenAI base_url: {base}/api",
        f"  (or {base}/v1 for clients that add /v1 themselves)",
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


def serve(settings: Settings, info: StartupInfo) -> None:
    """Run the server with configuration already read and checked (``app.cli``)."""
    logging_options = configure_logging(settings.log_format)
    try:
        state = build_state(settings)
    except DATABASE_PROBLEMS as exc:
        print(f"pyaichat: {explain_database_problem(exc, settings.sqlalchemy_url)}", file=sys.stderr)
        sys.exit(2)
    configure_app(state)
    if settings.log_format == "json":
        log.info(banner(settings, info).strip("\n"))  # one record, like every other line
    else:
        print(banner(settings, info), flush=True)
    run_server(state, **logging_options)


def prepare_session_storage(path: Path) -> None:
    """The browser-session folder 0700 and its files 0600, including those written before."""
    keep_files_private()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for file in path.glob("storage-*.json*"):
        file.chmod(0o600)


def dual_stack_listener(host: str, port: int) -> socket.socket | None:
    """For ``::`` (every interface), a socket that takes IPv6 and IPv4 alike. uvicorn binds ``::`` through
    asyncio, which turns dual stack off (IPV6_V6ONLY), so IPv4 clients were refused; other hosts are
    left to uvicorn."""
    if host != "::" or not socket.has_dualstack_ipv6():
        return None
    try:
        return socket.create_server(("::", port), family=socket.AF_INET6, backlog=2048, dualstack_ipv6=True)
    except OSError as exc:
        print(f"pyaichat: cannot listen on [::]:{port}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(1)


def run_server(state: AppState, **options: Any) -> None:
    """Serve the configured app (``configure_app`` first); ``options`` add to ``ui.run``'s (the
    benchmarks' server quiets uvicorn's log with them, and serves otherwise exactly this)."""
    settings = state.settings
    raise_open_files_limit()
    if "NICEGUI_STORAGE_PATH" not in os.environ:  # browser sessions live next to the database (the volume)
        Storage.path = settings.data_dir / ".nicegui"
    prepare_session_storage(Storage.path)
    listener = dual_stack_listener(settings.app_host, settings.app_port)
    if listener is not None:
        # uvicorn serves a duplicate of this socket; a stop closes this copy (AppState.shutdown_requested)
        options["fd"] = listener.fileno()
        state.listeners.append(listener)
    ui.run(
        host=settings.app_host,
        port=settings.app_port,
        title="pyaichat",
        favicon=FAVICON,
        storage_secret=settings.secret("secret_key"),
        reload=False,
        show=False,
        show_welcome_message=False,
        language="zh-CN",
        tailwind=False,  # the pages load Tailwind's CSS compiled ahead of time (pages/theme.py)
        proxy_headers=False,  # the client IP is decided by TRUSTED_PROXIES, not by uvicorn
        forwarded_allow_ips="",
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds) + UVICORN_MARGIN_SECONDS,
        **(server_options(settings) | options),
    )
