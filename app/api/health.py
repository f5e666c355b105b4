"""/api/health: liveness that includes the database, and the state of the Redis the limits use.

200 ``{"status": "ok", "checks": {...}}`` when every dependency answers; ``degraded`` (still 200) while
Redis does not (its watchdog's verdict, no extra round trip: chat calls answer 503 meanwhile, pages and
the admin console work); 503 with the same body and an ``error`` while the database does not answer.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import StateDep
from app.api.errors import request_language
from app.schemas import HealthChecks, HealthResponse
from app.state import AppState
from services.i18n import translate

router = APIRouter(tags=["health"])
DATABASE_DOWN = {"type": "database_unavailable", "message": "数据库不可用"}


def _database(state: AppState) -> bool:
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def _redis(state: AppState) -> Literal["ok", "unavailable", "not_used"]:
    circuit = state.limiter.backend.circuit
    if circuit is None:  # RATE_LIMIT_STORAGE=memory://
        return "not_used"
    return "unavailable" if circuit.is_open else "ok"


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"description": "the database does not answer: the same body, with an `error`"}},
)
def health(state: StateDep, request: Request) -> HealthResponse | JSONResponse:
    checks = HealthChecks(database="ok" if _database(state) else "unavailable", redis=_redis(state))
    healthy = checks.database == "ok" and checks.redis != "unavailable"
    answer = HealthResponse(status="ok" if healthy else "degraded", checks=checks)
    if checks.database == "ok":
        return answer
    down = {**DATABASE_DOWN, "message": translate("errors.database_unavailable", request_language(request))}
    body: dict[str, Any] = {**answer.model_dump(), "error": down}
    return JSONResponse(body, status_code=503)
