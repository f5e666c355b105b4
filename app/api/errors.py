"""One place that turns errors into the JSON bodies of docs/api.md#errors for every ``/api`` path."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import DomainError, InputRule
from services.i18n import FALLBACK, negotiate, translate

log = logging.getLogger("pyaichat.api")
Handler = Callable[[Request, Exception], Awaitable[Response]]
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]  # what FastAPI may hold already
_MARK = "_pyaichat_wrapped"


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path == "/api" or path.startswith(("/api/", "/v1/"))  # /v1: the OpenAI aliases


def request_language(request: Request) -> str:
    """The language of the API's messages for this request: its ``Accept-Language``, else zh-CN."""
    return negotiate(request.headers.get("accept-language"))


def scope_language(scope: Any) -> str:
    """``request_language`` for an ASGI layer that has only the scope."""
    for name, value in scope.get("headers", ()):
        if name == b"accept-language":
            return negotiate(value.decode("latin-1"))
    return FALLBACK


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message, **extra}}, status_code=status, headers=headers
    )


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc, request_language(request))


def _readable(error: dict[str, Any], language: str) -> str:
    if error.get("type") == "json_invalid":
        return translate("errors.json_invalid", language)
    location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
    rule = (error.get("ctx") or {}).get("error")
    if isinstance(rule, InputRule):  # our own rule's message, in the request's language
        message = rule.error.text(language)
    else:  # pydantic's own (English) words, or a validator's text
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if not location or message.startswith((f"{location}: ", f"{location}\uff1a")):
        return message  # a rule that names its field already (services/channel_fields.py)
    return f"{location}: {message}"


def validation_error_response(errors: Sequence[Any], language: str = FALLBACK) -> JSONResponse:
    """422 with a readable message; the rejected input is never echoed (it may be a password)."""
    details = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")} for e in errors
    ]
    message = _readable(errors[0], language) if errors else translate("errors.bad_format", language)
    return _error(422, "validation_error", message, details=details)


def domain_error_response(exc: DomainError, language: str = FALLBACK) -> JSONResponse:
    return JSONResponse(exc.body(language), status_code=exc.status, headers=exc.headers() or None)


def internal_error_response(
    method: str, path: str, exc: BaseException, language: str = FALLBACK
) -> JSONResponse:
    log.error("unhandled error on %s %s: %s", method, path, type(exc).__name__, exc_info=exc)
    return _error(500, "internal_error", translate("errors.internal", language))


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc.errors(), request_language(request))


_HTTP_MESSAGES = {
    400: ("bad_request", "errors.bad_format"),
    401: ("unauthorized", "errors.http_unauthorized"),
    403: ("forbidden", "errors.http_forbidden"),
    404: ("not_found", "errors.http_not_found"),
    405: ("method_not_allowed", "errors.http_method"),
    413: ("payload_too_large", "errors.http_too_large"),
}


def _wrap(previous: AnyHandler | None, api_handler: Handler) -> Handler:
    """A handler that answers ``/api`` paths itself and leaves the others to the UI's handler."""
    previous = getattr(previous, _MARK, previous)

    async def handler(request: Request, exc: Exception) -> Response:
        if _is_api(request) or previous is None:
            return await api_handler(request, exc)
        answer = previous(request, exc)  # Starlette allows plain and async handlers
        return await answer if inspect.isawaitable(answer) else answer

    setattr(handler, _MARK, previous)
    return handler


async def _api_http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    kind, key = _HTTP_MESSAGES.get(status, ("http_error", "errors.http_failed"))
    message = translate(key, request_language(request))
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:  # Starlette names the methods of the first route on the path; there may be more
        headers["Allow"] = ", ".join(documented_methods(request.app, request.url.path)) or headers.get(
            "Allow", ""
        )
    return _error(status, kind, message, headers=headers or None)


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def documented_methods(app: Any, path: str) -> list[str]:
    """The methods the app's OpenAPI document lists for ``path`` (its templates matched segment-wise)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "pyaichat_methods", None)
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                sorted(m.upper() for m in item if m.upper() in HTTP_METHODS),
            )
            for template, item in app.openapi().get("paths", {}).items()
        ]
        app.state.pyaichat_methods = table
    return sorted({method for pattern, methods in table if pattern.match(path) for method in methods})


async def _api_internal_error(request: Request, exc: Exception) -> Response:
    return internal_error_response(request.method, request.url.path, exc, request_language(request))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    handlers = app.exception_handlers
    for status in (404, 405):  # NiceGUI answers 404 with an HTML page; /api wants JSON
        handlers[status] = _wrap(handlers.get(status), _api_http_error)
    handlers[StarletteHTTPException] = _wrap(handlers.get(StarletteHTTPException), _api_http_error)
    handlers[Exception] = _wrap(handlers.get(Exception), _api_internal_error)
