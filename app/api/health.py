"""/api/health: liveness that includes the database."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import StateDep
from app.api.errors import request_language
from app.schemas import ErrorBody, HealthResponse
from services.i18n import translate

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorBody}})
def health(state: StateDep, request: Request) -> HealthResponse | JSONResponse:
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        body = {
            "error": {
                "type": "database_unavailable",
                "message": translate("errors.database_unavailable", request_language(request)),
            }
        }
        return JSONResponse(body, status_code=503)
    return HealthResponse(status="ok")
