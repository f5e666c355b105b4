"""/api/chat and /api/models: the OpenAI-compatible front door onto ``services.chat``."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from app.api.deps import ChatUser, ClientIP, OptionalUser, StateDep, bearer_token, user_for_token
from app.api.errors import (
    domain_error_response,
    internal_error_response,
    request_language,
    validation_error_response,
)
from app.api.observe import note_user
from app.schemas import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorBody,
    ModelSummary,
    OpenAIModel,
    OpenAIModelList,
)
from app.state import AppState
from services.call_log import Caller
from services.chat_stream import ChatStream
from services.client_ip import client_ip
from services.errors import DomainError
from services.i18n import translate

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
_T = TypeVar("_T")
CLIENT_GONE = Response(status_code=499)  # never sent: nobody is there to read it


async def _read_body(request: Request) -> bytes:
    """The body, whose size the body cap in front of every route (``app.api.body_limit``) bounds."""
    return b"".join([chunk async for chunk in request.stream()])


async def _unless_client_leaves(receive: Receive, call: Awaitable[_T]) -> _T | None:
    """``call``'s result, or None once the client has disconnected: ``call`` is then cancelled, which
    closes the upstream request and logs the call ``client_aborted``.

    The body has been read, so the next ASGI message is the disconnect; a watcher task waits for it
    while the call waits for the upstream (a non-streamed answer, or a stream's first event). Without
    it the gateway would notice a client gone only when it answers, holding the upstream connection
    for as long as the upstream takes."""
    task = asyncio.current_task()
    assert task is not None
    left = False

    async def watch() -> None:
        nonlocal left
        try:
            while (await receive())["type"] != "http.disconnect":
                continue
        except Exception:  # a receive that fails tells nothing about the client: let the call run on
            return
        left = True
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await call
    except asyncio.CancelledError:
        if left and task.uncancel() == 0:
            return None
        raise
    finally:
        watcher.cancel()


# what the upstream call's JSON encoder (orjson) carries: a 64-bit integer, signed or not
_INTEGER_RANGE = (-(2**63), 2**64 - 1)
# a body can only hold an integer outside it where it has a run of 19 digits
_LONG_NUMBER = re.compile(rb"\d{19}")


Location = tuple[str | int, ...]


def _unsendable_at(value: Any, location: Location = ()) -> tuple[str, Location] | None:
    """Where ``value`` holds what the upstream call cannot carry, and which words say why: a NaN or an
    infinity (which pydantic's JSON parser accepts as ``NaN`` and ``Infinity`` but JSON cannot carry), or
    an integer beyond 64 bits (valid JSON, which passed-through parameters such as ``seed`` may hold)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else ("errors.non_finite", location)
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = _INTEGER_RANGE
        return None if low <= value <= high else ("errors.integer_range", location)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (found := _unsendable_at(item, (*location, key))) is not None:
            return found
    return None


async def serve_chat_completions(request: Request, state: AppState) -> Response:
    """``POST /api/chat/completions`` with its parameters resolved here rather than by FastAPI.

    This is the gateway's hot path. Profiling benchmark 1 showed FastAPI's generic route machinery
    (middleware layers, router walk, dependency solver, body parsing then validation) costing more per
    call than the whole hop to the upstream once the process idles between calls. So the same checks run
    directly: the body is validated from its bytes by pydantic-core, the token as ``get_optional_user``
    does, the client IP as the gate decided it; errors get the bodies of ``app.api.errors``.
    """
    try:
        raw = await _read_body(request)
        ip = client_ip(request.scope)
        user = await user_for_token(state, bearer_token(request.headers.get("authorization")), ip)
        if user is not None:
            note_user(request.scope, user.id)
        try:
            body = ChatCompletionRequest.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            return validation_error_response(
                [{**e, "loc": ("body", *e["loc"])} for e in errors], request_language(request)
            )
        # only a body that spells one out can hold one: the walk is skipped on the hot path
        suspect = b"NaN" in raw or b"Infinity" in raw or _LONG_NUMBER.search(raw) is not None
        if suspect and (found := _unsendable_at(body.upstream_body())) is not None:
            key, where = found
            words = translate(key, request_language(request))
            error = {"type": "value_error", "loc": ("body", *where), "msg": words}
            return validation_error_response([error], request_language(request))
        return await chat_completions(body, request, state, user, ip)
    except DomainError as exc:
        return domain_error_response(exc, request_language(request))
    except ClientDisconnect:  # gone while sending its body (or dropped for sending it too slowly)
        return CLIENT_GONE
    except Exception as exc:
        return internal_error_response(request.method, request.url.path, exc, request_language(request))


class DirectChatRoute(APIRoute):
    """Documented from the endpoint's signature like any route; served by :func:`serve_chat_completions`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handler(request: Request) -> Response:
            return await serve_chat_completions(request, request.app.state.pyaichat)

        return handler


class ChatCompletionsApp:
    """The same endpoint as a bare ASGI app, which the dispatcher calls ahead of the API app's stack."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await serve_chat_completions(Request(scope, receive), self.state)
        await response(scope, receive, send)


router = APIRouter(tags=["chat"])
completions_router = APIRouter(tags=["chat"], route_class=DirectChatRoute)


MODEL_LIST_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "invalid token, or no token while guests are switched off"}
}


@router.get("/chat/models", response_model=list[ModelSummary], responses=MODEL_LIST_ERRORS)
def chat_models(state: StateDep, _caller: ChatUser) -> list[ModelSummary]:
    """One entry per distinct model of the enabled channels."""
    return [ModelSummary(id=model_id, name=name) for model_id, name in state.chat.model_names()]


@router.get("/models", response_model=OpenAIModelList, responses=MODEL_LIST_ERRORS)
def openai_models(state: StateDep, _caller: ChatUser) -> OpenAIModelList:
    """The same models in OpenAI's list form (``client.models.list()``)."""
    settings = state.model_settings.all()
    return OpenAIModelList(
        data=[
            OpenAIModel(id=model_id, vision=model_id in settings and settings[model_id].vision)
            for model_id, _ in state.chat.model_names()
        ]
    )


# The OpenAI aliases (docs/api.md): clients configured with ``http://host:8000/v1`` (they append
# ``/models`` and ``/chat/completions`` themselves) reach the same endpoints, under ``/v1`` and ``/api/v1``.
v1_router = APIRouter(tags=["chat"], include_in_schema=False)
v1_router.add_api_route("/models", openai_models, methods=["GET"], response_model=OpenAIModelList)


async def _relay(stream: ChatStream) -> AsyncIterator[bytes]:
    async for piece in stream.pieces():
        yield piece.sse


class ChatStreamResponse(StreamingResponse):
    """Relays a chat stream and closes it however the response ends: finished, client gone mid-stream,
    or cancelled before the body began (Starlette then never starts the body's generator, so only this
    ``finally`` closes the upstream request and writes the call's row)."""

    def __init__(self, stream: ChatStream) -> None:
        super().__init__(_relay(stream), media_type="text/event-stream", headers=STREAM_HEADERS)
        self.chat_stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.chat_stream.aclose()


@completions_router.post(
    "/chat/completions",
    response_model=ChatCompletionResponse,
    # the token is optional: without one the caller is a guest (an empty requirement, added to the bearer one)
    openapi_extra={"security": [{}]},
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "a chat.completion, or SSE chunks with stream=true",
        },
        401: {
            "model": ErrorBody,
            "description": "invalid token (no token = guest); authentication_required while guests are off",
        },
        400: {
            "model": ErrorBody,
            "description": "images_not_supported: images for a model not marked vision",
        },
        403: {"model": ErrorBody, "description": "ip_blocked"},
        404: {"model": ErrorBody, "description": "model_not_found"},
        429: {"model": ErrorBody, "description": "rate_limit_exceeded, with Retry-After"},
        503: {"model": ErrorBody, "description": "upstream_error"},
    },
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, state: StateDep, user: OptionalUser, ip: ClientIP
) -> Response:
    caller = Caller(
        ip=ip,
        user_id=user.id if user else None,
        username=user.email if user else None,
        path=request.scope["path"],
        rpm_limit=user.rpm_limit if user else None,
        api_key_id=user.api_key_id if user else None,
        credential=user.credential if user else None,
    )
    payload = body.upstream_body()
    if body.stream:
        stream = await _unless_client_leaves(
            request.receive, state.chat.open_stream(body=payload, caller=caller)
        )
        return CLIENT_GONE if stream is None else ChatStreamResponse(stream)
    answer = await _unless_client_leaves(request.receive, state.chat.complete(body=payload, caller=caller))
    return CLIENT_GONE if answer is None else JSONResponse(answer)


v1_router.add_api_route(
    "/chat/completions",
    chat_completions,
    methods=["POST"],
    response_model=ChatCompletionResponse,
    route_class_override=DirectChatRoute,
)
