"""/api/chat and /api/models: the OpenAI-compatible front door onto ``services.chat``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.api.deps import ClientIP, OptionalUser, StateDep
from app.schemas import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorBody,
    ModelSummary,
    OpenAIModel,
    OpenAIModelList,
)
from services.chat import Caller, ChatStream

router = APIRouter(tags=["chat"])
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


@router.get("/chat/models", response_model=list[ModelSummary])
def chat_models(state: StateDep) -> list[ModelSummary]:
    """One entry per distinct model of the enabled channels."""
    return [ModelSummary(id=model_id, name=name) for model_id, name in state.chat.model_names()]


@router.get("/models", response_model=OpenAIModelList)
def openai_models(state: StateDep) -> OpenAIModelList:
    """The same models in OpenAI's list form (``client.models.list()``)."""
    return OpenAIModelList(data=[OpenAIModel(id=model_id) for model_id, _ in state.chat.model_names()])


async def _relay(stream: ChatStream) -> AsyncIterator[bytes]:
    try:
        async for piece in stream.pieces():
            yield piece.sse
    finally:  # the client went away or the stream ended: make sure the upstream request is closed
        with anyio.CancelScope(shield=True):
            await stream.aclose()


@router.post(
    "/chat/completions",
    response_model=ChatCompletionResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "a chat.completion, or SSE chunks with stream=true",
        },
        401: {"model": ErrorBody, "description": "invalid token (no token = guest)"},
        403: {"model": ErrorBody, "description": "ip_blocked"},
        404: {"model": ErrorBody, "description": "model_not_found"},
        429: {"model": ErrorBody, "description": "rate_limit_exceeded, with Retry-After"},
        503: {"model": ErrorBody, "description": "upstream_error"},
    },
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, state: StateDep, user: OptionalUser, ip: ClientIP
) -> StreamingResponse | JSONResponse:
    caller = Caller(
        ip=ip, user_id=user.id if user else None, username=user.email if user else None, path=request.url.path
    )
    payload = body.upstream_body()
    if body.stream:
        stream = await state.chat.open_stream(body=payload, caller=caller)
        return StreamingResponse(_relay(stream), media_type="text/event-stream", headers=STREAM_HEADERS)
    answer = await state.chat.complete(body=payload, caller=caller)
    return JSONResponse(answer)
